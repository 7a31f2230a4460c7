"""What the explorer shows of a trained run: its spaces, the tasks that ask about them, the
concept directions to steer along, and the texts that answers are compared with.

A project builds a :class:`Catalog` from its config and prepared data
(``elc.projects.<project>.explorer``); the page and the model code read only this.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Space:
    """An embedding space whose points the ELM can be asked about.

    Attributes:
      name: the space's name in ``data.spaces`` and in prompt slots (``<name>``).
      kind: what its entities are (``movie``, ``user``, ``entity``); tasks of that kind
        ask about them.
      ids: entity ids, one per row of ``vectors``.
      labels: display names, one per id (e.g. ``"Toy Story (1995)"``).
      vectors: float32 [N, d], the vectors the ELM reads.
      facts: fact name -> one value per entity, to colour the map by (e.g. ``genre``).
      texts: MiniLM vectors [N, 384] of each entity's text, the target of semantic
        consistency and the catalogue of nearest entities; None where entities have no
        text (users).
    """

    name: str
    kind: str
    ids: list[str]
    labels: list[str]
    vectors: np.ndarray
    facts: dict[str, list[str]]
    texts: np.ndarray | None = None

    def __post_init__(self):
        rows = len(self.ids)
        if len(self.labels) != rows or self.vectors.shape[0] != rows:
            raise ValueError(f"space {self.name!r}: {rows} ids, {len(self.labels)} labels, "
                             f"{self.vectors.shape[0]} vectors; expected one of each per entity")
        for fact, values in self.facts.items():
            if len(values) != rows:
                raise ValueError(f"space {self.name!r}: fact {fact!r} has {len(values)} values "
                                 f"for {rows} entities")
        if self.texts is not None and self.texts.shape[0] != rows:
            raise ValueError(f"space {self.name!r}: {self.texts.shape[0]} text vectors for "
                             f"{rows} entities")

    def index(self, entity: str) -> int:
        """The row of ``entity``, given by id or by label; ValueError naming it otherwise."""
        row = self._rows.get(entity)
        if row is None:
            raise ValueError(f"{entity!r} is not an entity of space {self.name!r} (give an id "
                             f"such as {self.ids[0]!r} or a name such as {self.labels[0]!r})")
        return row

    @functools.cached_property
    def _rows(self) -> dict[str, int]:
        """Label or id -> row; an id wins over a label that reads the same."""
        rows = {label: i for i, label in enumerate(self.labels)}
        rows.update({entity: i for i, entity in enumerate(self.ids)})
        return rows


@dataclasses.dataclass(frozen=True)
class Task:
    """A task the run trained on: the kind of entity it asks about and its prompt for a
    space (the task's first phrasing, with that space's slot)."""

    name: str
    kind: str
    prompt: Callable[[str], str]


@dataclasses.dataclass(frozen=True)
class Catalog:
    """Everything the explorer shows of one run.

    Attributes:
      project: the run's project (``movielens``, ``describe``).
      spaces: by name, in the order the page lists them.
      tasks: by name: the run's tasks.
      directions: space name -> direction name -> unit vector to steer along (for
        MovieLens users, each genre's concept activation vector).
    """

    project: str
    spaces: dict[str, Space]
    tasks: dict[str, Task]
    directions: dict[str, dict[str, np.ndarray]]

    def space(self, name: str) -> Space:
        if name not in self.spaces:
            raise ValueError(f"{name!r} is not a space of this run; expected one of "
                             f"{list(self.spaces)}")
        return self.spaces[name]

    def tasks_for(self, space: str) -> list[str]:
        """The run's tasks that ask about the entities of ``space``."""
        kind = self.space(space).kind
        return [name for name, task in self.tasks.items() if task.kind == kind]

    def task(self, name: str, space: str) -> Task:
        """Task ``name``, checked to ask about ``space``'s entities."""
        if name not in self.tasks_for(space):
            raise ValueError(f"{name!r} is not a task of this run about space {space!r}; "
                             f"expected one of {self.tasks_for(space)}")
        return self.tasks[name]

    def direction(self, space: str, name: str) -> np.ndarray:
        known = self.directions.get(space, {})
        if name not in known:
            raise ValueError(f"{name!r} is not a direction of space {space!r}; expected one "
                             f"of {sorted(known)}")
        return known[name]
