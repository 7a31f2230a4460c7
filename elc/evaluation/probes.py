"""Linear probes: how much of a fact an embedding space holds, read out linearly.

A probe is a ridge regression from an entity's vector to a fact about it, fitted on the
training entities and read out in the fact's own kind: a number, one label of a
vocabulary (the highest of one ridge output per label) or a set of labels (every label
whose output reaches 1/2, the highest alone if none does). Its penalty is chosen among
:data:`L2_GRID` by exact leave-one-out squared error, so that spaces of different scale
and dimension each get their own.

Beside the probe, :func:`commonest` is the answer that ignores the vector: the median of a
number, the most frequent label or set of labels.

An ELM's answers can only be judged against what its vectors hold: the probe's score on
held-out entities is that ceiling as far as a linear read-out reaches, and the commonest
answer's score is the floor.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np

from elc.evaluation.consistency import RidgeMap

FactKind = Literal["number", "label", "labels"]
FACT_KINDS: tuple[str, ...] = ("number", "label", "labels")
# Penalties tried, relative to the mean squared singular value of the centred vectors
# (so the grid fits any scale of vector).
L2_GRID: tuple[float, ...] = tuple(10.0 ** k for k in range(-4, 4))


def _check_kind(kind: str) -> None:
    if kind not in FACT_KINDS:
        raise ValueError(f"unknown fact kind {kind!r}; expected one of {FACT_KINDS}")


def _penalty_scale(xc: np.ndarray) -> float:
    """The mean squared singular value of centred vectors: what relative penalties scale."""
    return float(np.mean(np.linalg.svd(xc, compute_uv=False) ** 2)) or 1.0


def leave_one_out_errors(x: np.ndarray, y: np.ndarray, grid: Sequence[float] = L2_GRID
                         ) -> np.ndarray:
    """For each relative penalty of ``grid``, the summed squared error of predicting each
    row of ``y`` by the ridge fit (unpenalised intercept) on the other rows.

    Exact, from one fit on all rows: the left-out residual of row i is ``e_i / (1 - h_ii)``,
    with e the residual of the full fit and H = 11^T/n + X_c (X_c^T X_c + l2 I)^-1 X_c^T.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64).reshape(len(x), -1)
    xc, yc = x - x.mean(0), y - y.mean(0)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    scale = _penalty_scale(xc)
    projected = u.T @ yc
    errors = []
    for relative in grid:
        shrink = s ** 2 / (s ** 2 + relative * scale)
        residual = yc - u @ (shrink[:, None] * projected)
        leverage = 1.0 / len(x) + (u ** 2) @ shrink
        errors.append(float(np.sum((residual / (1.0 - leverage)[:, None]) ** 2)))
    return np.array(errors)


def leave_one_out_l2(x: np.ndarray, y: np.ndarray, grid: Sequence[float] = L2_GRID) -> float:
    """The absolute penalty of the relative one in ``grid`` with the least
    :func:`leave_one_out_errors`."""
    x = np.asarray(x, np.float64)
    relative = grid[int(np.argmin(leave_one_out_errors(x, y, grid)))]
    return relative * _penalty_scale(x - x.mean(0))


@dataclasses.dataclass(frozen=True)
class LinearProbe:
    """A ridge map from vectors to one fact, read out as the fact's kind.

    Attributes:
      kind: ``"number"``, ``"label"`` or ``"labels"`` (a set of labels).
      vocabulary: the labels, one ridge output each (empty for a number).
      ridge: the fitted map.
      l2: the penalty leave-one-out chose.
    """

    kind: str
    vocabulary: tuple[Hashable, ...]
    ridge: RidgeMap
    l2: float

    @classmethod
    def fit(cls, vectors: np.ndarray, facts: Sequence[object], kind: FactKind,
            grid: Sequence[float] = L2_GRID) -> LinearProbe:
        """Fits on the rows whose fact is known (not None).

        Args:
          vectors: [n, d] entity vectors.
          facts: n facts: numbers, hashable labels, or sets (frozensets) of labels.
          kind: how to read the facts.
          grid: relative penalties to choose from.

        Raises:
          ValueError: unknown kind, mismatched lengths, or fewer than 2 known facts.
        """
        _check_kind(kind)
        vectors = np.asarray(vectors, np.float64)
        if vectors.ndim != 2 or len(vectors) != len(facts):
            raise ValueError(f"vectors must be [n, d] with one row per fact, got shape "
                             f"{vectors.shape} for {len(facts)} facts")
        known = [i for i, fact in enumerate(facts) if fact is not None]
        if len(known) < 2:
            raise ValueError(f"a probe needs at least 2 known facts, got {len(known)}")
        x = vectors[known]
        facts = [facts[i] for i in known]
        if kind == "number":
            vocabulary: tuple[Hashable, ...] = ()
            y = np.array(facts, np.float64)[:, None]
        else:
            labels = facts if kind == "label" else [label for fact in facts for label in fact]
            vocabulary = tuple(sorted(set(labels), key=repr))
            column = {label: j for j, label in enumerate(vocabulary)}
            y = np.zeros((len(facts), len(vocabulary)))
            for row, fact in enumerate(facts):
                for label in ([fact] if kind == "label" else fact):
                    y[row, column[label]] = 1.0
        l2 = leave_one_out_l2(x, y, grid)
        return cls(kind, vocabulary, RidgeMap.fit(x, y, l2=l2), l2)

    def predict(self, vectors: np.ndarray) -> list[object]:
        """The fact of each row of ``vectors`` ([n, d])."""
        scores = self.ridge.predict(np.asarray(vectors, np.float64))
        if self.kind == "number":
            return [float(v) for v in scores[:, 0]]
        if self.kind == "label":
            return [self.vocabulary[j] for j in scores.argmax(1)]
        return [frozenset(self.vocabulary[j] for j in np.flatnonzero(row >= 0.5))
                or frozenset([self.vocabulary[int(row.argmax())]]) for row in scores]


def commonest(facts: Sequence[object], kind: FactKind) -> object:
    """The answer that ignores the vector: the median of known numbers, else the most
    frequent known label or set of labels (ties: the first in ``repr`` order). None if no
    fact is known."""
    _check_kind(kind)
    known = [fact for fact in facts if fact is not None]
    if not known:
        return None
    if kind == "number":
        return float(np.median(np.array(known, np.float64)))
    counts = collections.Counter(known)
    top = max(counts.values())
    return min((fact for fact, count in counts.items() if count == top),
               key=lambda fact: repr(sorted(fact, key=repr)) if kind == "labels" else repr(fact))
