"""Loads what the explorer serves: the run's catalogue and maps, then its trained ELM."""

from __future__ import annotations

import dataclasses
from typing import Callable

from elc.explorer.catalog import Catalog
from elc.explorer.model import ExplorerModel, MissingCheckpointError
from elc.explorer.projection import PlaneProjection
from elc.generation.answering import GenerationConfig
from elc.projects.describe.evaluation import sentence_encoder
from elc.train.trainer import setup_run


@dataclasses.dataclass
class Explorer:
    """A run, ready to explore.

    Attributes:
      catalog: its spaces, tasks and directions.
      maps: space name -> the projection that draws it in 2-D.
      model: the trained ELM, or None when ``problem`` says why it could not load (the
        page then shows the maps and that message).
      problem: '' or what keeps the model from answering, with the command that fixes it.
      settings: the page's first generation settings (the config's ``sample`` section).
    """

    catalog: Catalog
    maps: dict[str, PlaneProjection]
    model: ExplorerModel | None
    problem: str
    settings: GenerationConfig


def _catalog(config, project: str, text_encoder, progress) -> Catalog:
    if project == "describe":
        from elc.projects.describe.explorer import describe_catalog
        return describe_catalog(config, text_encoder, progress)
    from elc.projects.movielens.explorer import movielens_catalog
    return movielens_catalog(config, progress)


def load_explorer(config, workdir: str, project: str, stages: list[str], train_command: str,
                  progress: Callable[[str], None]) -> Explorer:
    """The catalogue and maps of the run ``config`` describes, and its ELM with the
    parameters of ``stages`` (default: every stage) restored from ``workdir`` and its
    generation compiled. A workdir without the checkpoints gives an Explorer without a
    model whose ``problem`` names ``train_command``."""
    progress("loading the sentence encoder (all-MiniLM-L6-v2)")
    text_encoder = sentence_encoder(config.eval.get("sentence_encoder", ""))
    catalog = _catalog(config, project, text_encoder, progress)
    maps = {name: PlaneProjection.fit(space.vectors) for name, space in catalog.spaces.items()}
    sample = config.sample
    settings = GenerationConfig(max_new_tokens=sample.max_new_tokens, batch_size=1,
                                temperature=sample.temperature, top_k=sample.top_k,
                                top_p=sample.top_p, seed=sample.seed)
    progress(f"loading the backbone ({config.backbone.format}) and building the ELM")
    run = setup_run(config)
    try:
        model = ExplorerModel(config, workdir, run, catalog,
                              list(stages) or [s.name for s in run.stages], text_encoder,
                              train_command, progress)
    except MissingCheckpointError as error:
        progress(f"no model to ask: {error}")
        return Explorer(catalog, maps, None, str(error), settings)
    run.backbone = None  # its parameters were only the starting point of training
    model.warm_up(settings, progress)
    return Explorer(catalog, maps, model, "", settings)
