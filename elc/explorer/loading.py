"""Loads what the explorer serves: the run's catalogue and maps first (the page can show
them at once), then its trained ELM in a background thread whose progress the page shows."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable

from absl import logging

from elc.explorer.catalog import Catalog
from elc.explorer.model import ExplorerModel, MissingCheckpointError
from elc.explorer.projection import PlaneProjection
from elc.generation.answering import GenerationConfig
from elc.projects.describe.evaluation import sentence_encoder
from elc.train.trainer import setup_run


@dataclasses.dataclass
class Explorer:
    """A run to explore; its model arrives while the page is already up.

    Attributes:
      catalog: its spaces, tasks and directions.
      stages: the stages whose parameters the model loads, in training order.
      maps: space name -> the projection that draws it in 2-D.
      settings: the page's first generation settings (the config's ``sample`` section).
      text_encoder: MiniLM, which embeds answers to score them.
      model: the trained ELM once loaded, else None.
      problem: '' or what keeps the model from answering (still loading, or a missing
        checkpoint with the command that trains one).
      log: the loading steps so far, each with the seconds since start.
    """

    catalog: Catalog
    stages: list[str]
    maps: dict[str, PlaneProjection]
    settings: GenerationConfig
    text_encoder: object
    model: ExplorerModel | None = None
    problem: str = "the model is loading"
    log: list[str] = dataclasses.field(default_factory=list)

    @property
    def loading(self) -> bool:
        return self.model is None and self.problem == "the model is loading"


class _Progress:
    """Logs loading steps with the seconds since start and keeps them for the page."""

    def __init__(self, lines: list[str]):
        self.lines, self.start = lines, time.time()

    def __call__(self, message: str) -> None:
        line = f"[{time.time() - self.start:5.1f}s] {message}"
        self.lines.append(line)
        logging.info("%s", line)


def _catalog(config, project: str, text_encoder, progress) -> Catalog:
    if project == "describe":
        from elc.projects.describe.explorer import describe_catalog
        return describe_catalog(config, text_encoder, progress)
    from elc.projects.movielens.explorer import movielens_catalog
    return movielens_catalog(config, progress)


def load_catalog(config, project: str, stages: list[str]) -> Explorer:
    """The catalogue and maps of the run ``config`` describes, without its model (whose
    parameters will be those of ``stages``)."""
    log: list[str] = []
    progress = _Progress(log)
    progress("loading the sentence encoder (all-MiniLM-L6-v2)")
    text_encoder = sentence_encoder(config.eval.get("sentence_encoder", ""))
    catalog = _catalog(config, project, text_encoder, progress)
    maps = {name: PlaneProjection.fit(space.vectors) for name, space in catalog.spaces.items()}
    settings = GenerationConfig.from_sample_config(config.sample, batch_size=1)
    return Explorer(catalog, list(stages), maps, settings, text_encoder, log=log)


def load_model(explorer: Explorer, config, workdir: str, train_command: str) -> None:
    """Sets ``explorer.model``: the ELM of ``config`` with the parameters of
    ``explorer.stages`` restored from ``workdir`` and its generation compiled; or
    ``explorer.problem`` to why not (a missing checkpoint names ``train_command``)."""
    progress = _Progress(explorer.log)
    try:
        progress(f"loading the backbone ({config.backbone.format}) and building the ELM")
        run = setup_run(config)
        model = ExplorerModel(config, workdir, run, explorer.catalog, explorer.stages,
                              explorer.text_encoder, train_command, progress)
        run.backbone = None  # its parameters were only the starting point of training
        model.warm_up(explorer.settings, progress)
    except MissingCheckpointError as error:
        progress(f"no model to ask: {error}")
        explorer.problem = str(error)
        return
    except Exception as error:  # shown on the page, which stays up for the maps
        logging.exception("loading the model failed")
        explorer.problem = f"loading the model failed: {type(error).__name__}: {error}"
        progress(explorer.problem)
        return
    explorer.model, explorer.problem = model, ""
    progress(f"ready: stages {', '.join(model.stages)}")


def load_model_in_background(explorer: Explorer, config, workdir: str,
                             train_command: str) -> threading.Thread:
    """Starts :func:`load_model` in a daemon thread and returns it."""
    thread = threading.Thread(target=load_model, daemon=True, name="explorer-model",
                              args=(explorer, config, workdir, train_command))
    thread.start()
    return thread
