"""Which project a config belongs to, for the launchers that differ by project
(prepare_data, eval, sample); training is generic and needs none."""

PROJECTS = ("movielens", "describe")


def config_project(config, launcher: str) -> str:
    """``config.project`` when set; a config with MovieLens' ``prepare`` and ``eval``
    sections but no ``project`` field is MovieLens. ValueError otherwise, naming the
    launcher and the configs it takes."""
    project = config.get("project", None)
    if project is None and "prepare" in config and "eval" in config:
        project = "movielens"
    if project not in PROJECTS:
        found = f"config.project is {project!r}" if project is not None else (
            "the config names no project (no config.project field and no MovieLens "
            "'prepare' and 'eval' sections)")
        raise ValueError(f"{launcher} needs a project config, e.g. configs/movielens_elm.py or "
                         f"configs/describe.py; {found}; known projects: {list(PROJECTS)}")
    return project
