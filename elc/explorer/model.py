"""The trained ELM behind the explorer: loaded once, asked about one point at a time.

A point is a vector of one space (an entity's own, a mix of two, a user moved along a
direction), with the MiniLM vector of the text it should match where there is one. Each
answer comes with its semantic consistency (cosine between the answer's MiniLM vector
and the point's text vector) and the entities whose texts lie nearest the answer.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable

import flax.linen as nn
import jax
import numpy as np
from absl import logging

from elc.evaluation import concepts
from elc.explorer.catalog import Catalog
from elc.generation.answering import GenerationConfig, Request, answer
from elc.train.trainer import Run, restore_stage_params

NEAREST = 5  # entities listed as nearest an answer


@dataclasses.dataclass(frozen=True)
class Point:
    """Where in ``space`` to ask: ``vector`` [d], and ``text`` [384], the unit MiniLM
    vector its answer should match (None where the space's entities have no texts)."""

    space: str
    vector: np.ndarray
    text: np.ndarray | None
    label: str


@dataclasses.dataclass(frozen=True)
class Reply:
    """One answer: its text, the seconds generation took, its semantic consistency (None
    without a text vector) and (label, cosine) of the entities whose texts are nearest it."""

    text: str
    seconds: float
    consistency: float | None
    nearest: list[tuple[str, float]]


class MissingCheckpointError(FileNotFoundError):
    """The workdir has no checkpoint of a stage the explorer was asked to load."""


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x)
    return x / norm if norm > 0 else x


class ExplorerModel:
    """The run's ELM with the parameters of each requested stage, and MiniLM.

    Generation is serialised by a lock: one request at a time uses the device, and the
    page queues at most one more behind it.
    """

    def __init__(self, config, workdir: str, run: Run, catalog: Catalog, stages: list[str],
                 text_encoder, train_command: str,
                 progress: Callable[[str], None] = logging.info):
        self.run, self.catalog, self.text_encoder = run, catalog, text_encoder
        self.params: dict[str, dict] = {}
        for stage in stages:
            progress(f"restoring the parameters of stage {stage!r} from {workdir}")
            try:
                with jax.set_mesh(run.mesh), nn.logical_axis_rules(run.rules):
                    self.params[stage] = restore_stage_params(config, workdir, run, stage)
            except FileNotFoundError as error:
                raise MissingCheckpointError(
                    f"{workdir} has no trained checkpoint of stage {stage!r}: train one with "
                    f"{train_command} ({error})") from None
        self._lock = threading.Lock()

    @property
    def stages(self) -> list[str]:
        return list(self.params)

    def warm_up(self, settings: GenerationConfig,
                progress: Callable[[str], None] = logging.info) -> None:
        """Compiles generation for one prompt of each space (every task of a space fills
        the same prompt bucket), so that the first click answers at full speed."""
        stage = self.stages[-1]
        for name, space in self.catalog.spaces.items():
            tasks = self.catalog.tasks_for(name)
            if not tasks:
                continue
            start = time.time()
            point = Point(name, space.vectors[0], None, space.labels[0])
            self.ask(point, tasks[0], stage, settings)
            progress(f"compiled generation for {name} in {time.time() - start:.1f}s")

    def ask(self, point: Point, task: str, stage: str, settings: GenerationConfig) -> Reply:
        """The answer of ``stage`` to ``task`` about ``point``."""
        if stage not in self.params:
            raise ValueError(f"stage {stage!r} is not loaded; loaded: {self.stages}")
        prompt = self.catalog.task(task, point.space).prompt(point.space)
        request = Request(prompt, {point.space: np.asarray(point.vector, np.float32).tolist()})
        with self._lock:
            start = time.time()
            with jax.set_mesh(self.run.mesh), nn.logical_axis_rules(self.run.rules):
                text = answer(self.run.elm, self.params[stage], self.run.pipeline.encoder,
                              [request], settings,
                              label=f"{stage} {task} about {point.label}")[0]
            seconds = time.time() - start
        return self._scored(point, text, seconds)

    def _scored(self, point: Point, text: str, seconds: float) -> Reply:
        space = self.catalog.space(point.space)
        if space.texts is None:
            return Reply(text, seconds, None, [])
        answer_vector = self.text_encoder.encode([text])[0]
        consistency = (float(answer_vector @ _unit(point.text)) if point.text is not None
                       else None)
        cosines = space.texts @ answer_vector
        nearest = np.argsort(-cosines)[:NEAREST]
        return Reply(text, seconds, consistency,
                     [(space.labels[i], float(cosines[i])) for i in nearest])

    def entity_point(self, space: str, entity: str) -> Point:
        """The point of ``entity`` (id or label) in ``space``."""
        table = self.catalog.space(space)
        row = table.index(entity)
        text = table.texts[row] if table.texts is not None else None
        return Point(space, table.vectors[row], text, table.labels[row])

    def mixed_point(self, space: str, a: str, b: str, weight: float) -> Point:
        """``(1 - weight) * a + weight * b`` in ``space``; its text vector mixes theirs."""
        pa, pb = self.entity_point(space, a), self.entity_point(space, b)
        vector = concepts.interpolate(pa.vector[None], pb.vector[None], [weight])[0, 0]
        text = (None if pa.text is None else
                _unit(concepts.interpolate(pa.text[None], pb.text[None], [weight])[0, 0]))
        return Point(space, vector, text, f"{pa.label} -> {pb.label} at {weight:g}")

    def steered_point(self, space: str, entity: str, direction: str, amount: float) -> Point:
        """``entity`` moved ``amount`` x its own norm along ``direction``, as
        ``launch.sample --cav`` moves a user."""
        start = self.entity_point(space, entity)
        vector = concepts.shift(start.vector[None], self.catalog.direction(space, direction),
                                [amount])[0, 0]
        return Point(space, vector, None, f"{start.label} + {amount:g} x {direction}")
