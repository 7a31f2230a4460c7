"""Semantic and behavioural consistency of generated descriptions.

Semantic consistency: a generated text, embedded by a sentence encoder, should lie near the
semantic embedding of the entity it describes: its cosine with the target, and the rank of
the target among all catalogue entities by cosine with the text.

Behavioural consistency: a behavioural vector recovered from the text (e.g. by a
:class:`RidgeMap` from text embeddings to the behavioural space) should rank items as the
true vector does: the Spearman correlation of the two item score vectors, and whether the
true entity is among the catalogue entities nearest the recovered vector.

Ranks count ties against the target: rank = the number of catalogue rows scoring at least
as high as the target row, so a constant score (e.g. a zero vector) ranks it last.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import scipy.stats

# Query rows are processed in chunks so that a [rows, catalogue] float64 block stays
# around 64 MiB even against ml-25m's 62k movies.
_BLOCK_ELEMENTS = 1 << 23


def _matrix(name: str, x: np.ndarray, columns: int | None = None) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or (columns is not None and x.shape[1] != columns):
        width = "d" if columns is None else columns
        raise ValueError(f"{name} must be a [n, {width}] matrix, got shape {x.shape}")
    return x


def _same_shape(names: tuple[str, str], a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} must be [n, d] matrices of one shape, got "
                         f"{a.shape} and {b.shape}")
    return a, b


def _unit_rows(x: np.ndarray) -> np.ndarray:
    # A zero row stays zero (cosine 0 with everything) rather than becoming NaN.
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(ks)
    if not ks or not all(isinstance(k, (int, np.integer)) and k >= 1 for k in ks):
        raise ValueError(f"ks must be a non-empty sequence of ints >= 1, got {ks!r}")
    return ks


def _check_index(target_index: np.ndarray, n: int, m: int) -> np.ndarray:
    index = np.asarray(target_index)
    if index.shape != (n,) or not np.issubdtype(index.dtype, np.integer):
        raise ValueError(f"target_index must be an int array of shape ({n},), got dtype "
                         f"{index.dtype} and shape {index.shape}")
    bad = (index < -1) | (index >= m)
    if bad.any():
        raise ValueError(f"target_index values must be -1 (not in the catalogue) or in "
                         f"[0, {m}), got {index[bad][0]}")
    return index


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two [n, d] matrices; 0 where a row is zero."""
    a, b = _same_shape(("a", "b"), a, b)
    return np.sum(_unit_rows(a) * _unit_rows(b), axis=1)


def _target_ranks(queries: np.ndarray, catalogue: np.ndarray,
                  target_index: np.ndarray) -> np.ndarray:
    """1-based rank of each query's target row among catalogue rows by cosine; NaN where
    the target index is -1."""
    queries, catalogue = _unit_rows(queries), _unit_rows(catalogue)
    ranks = np.full(len(queries), np.nan)
    known = np.flatnonzero(target_index >= 0)
    chunk = max(1, _BLOCK_ELEMENTS // max(1, len(catalogue)))
    for start in range(0, len(known), chunk):
        rows = known[start:start + chunk]
        scores = queries[rows] @ catalogue.T
        target = scores[np.arange(len(rows)), target_index[rows]]
        ranks[rows] = np.sum(scores >= target[:, None], axis=1)
    return ranks


def _recalls(ranks: np.ndarray, ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    return {f"recall@{k}": np.where(np.isnan(ranks), np.nan, (ranks <= k).astype(np.float64))
            for k in ks}


def semantic_consistency(text_vectors: np.ndarray, target_vectors: np.ndarray,
                         catalogue: np.ndarray, target_index: np.ndarray,
                         ks: Sequence[int] = (1, 10)) -> dict[str, np.ndarray]:
    """How close each generated text's embedding is to its entity's semantic embedding.

    Args:
      text_vectors: [n, d] embeddings of the generated texts.
      target_vectors: [n, d] semantic embeddings of the described entities.
      catalogue: [m, d] semantic embeddings of all candidate entities.
      target_index: [n] row of each entity in ``catalogue``; -1 if it has none.
      ks: recall cutoffs.

    Returns:
      Per example [n] arrays: ``"cosine"`` (text vs target), ``"rank"`` (1-based rank of
      the target row among catalogue rows by cosine with the text; NaN for index -1) and
      ``"recall@k"`` for each k (1.0 if rank <= k, else 0.0; NaN for index -1).
    """
    ks = _check_ks(ks)
    text, target = _same_shape(("text_vectors", "target_vectors"), text_vectors,
                               target_vectors)
    catalogue = _matrix("catalogue", catalogue, text.shape[1])
    index = _check_index(target_index, len(text), len(catalogue))
    ranks = _target_ranks(text, catalogue, index)
    return {"cosine": cosine_rows(text, target), "rank": ranks, **_recalls(ranks, ks)}


@dataclasses.dataclass(frozen=True)
class RidgeMap:
    """An affine map ``x @ weights + bias`` fitted by ridge regression.

    Attributes:
      weights: [p, q].
      bias: [q].
    """

    weights: np.ndarray
    bias: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, l2: float = 1.0) -> RidgeMap:
        """Minimises ``|x W + b - y|^2 + l2 |W|^2`` in closed form; the intercept ``b`` is
        not penalised.

        Args:
          x: [n, p] inputs.
          y: [n, q] targets.
          l2: penalty >= 0; 0 gives least squares (minimum-norm ``W`` if x is rank deficient).
        """
        x = _matrix("x", x)
        y = _matrix("y", y)
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"x and y must have the same number of rows (at least 1), got "
                             f"shapes {x.shape} and {y.shape}")
        if not (np.isfinite(l2) and l2 >= 0):
            raise ValueError(f"l2 must be a finite number >= 0, got {l2!r}")
        # Centring removes the intercept from the problem, so only W is penalised.
        x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
        xc, yc = x - x_mean, y - y_mean
        p = x.shape[1]
        # The penalty as extra rows [sqrt(l2) I | 0]: least squares on the stacked system
        # avoids forming x^T x, whose condition number is the square of x's.
        stacked_x = np.vstack([xc, np.sqrt(l2) * np.eye(p)])
        stacked_y = np.vstack([yc, np.zeros((p, y.shape[1]))])
        weights = np.linalg.lstsq(stacked_x, stacked_y, rcond=None)[0]
        return cls(weights, y_mean - x_mean @ weights)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """[n, p] -> [n, q]."""
        return _matrix("x", x, self.weights.shape[0]) @ self.weights + self.bias


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Spearman correlation of two [n, m] matrices, ties given their average rank;
    NaN for a row where either side is constant."""
    a, b = _same_shape(("a", "b"), a, b)
    ranks_a = scipy.stats.rankdata(a, method="average", axis=1)
    ranks_b = scipy.stats.rankdata(b, method="average", axis=1)
    ranks_a -= ranks_a.mean(axis=1, keepdims=True)
    ranks_b -= ranks_b.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(ranks_a, axis=1) * np.linalg.norm(ranks_b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, np.sum(ranks_a * ranks_b, axis=1) / norms, np.nan)


def behavioural_consistency(recovered: np.ndarray, true: np.ndarray, item_vectors: np.ndarray,
                            catalogue: np.ndarray, target_index: np.ndarray,
                            ks: Sequence[int] = (10,)) -> dict[str, np.ndarray]:
    """How well behavioural vectors recovered from text reproduce the true ones.

    Args:
      recovered: [n, d] vectors recovered from generated texts.
      true: [n, d] the entities' true behavioural vectors.
      item_vectors: [m, d] vectors the entities score (e.g. movie vectors for users).
      catalogue: [p, d] behavioural vectors of all candidate entities.
      target_index: [n] row of each entity in ``catalogue``; -1 if it has none.
      ks: recall cutoffs.

    Returns:
      Per example [n] arrays: ``"spearman"``, the rank correlation of the item scores
      ``item_vectors @ true`` and ``item_vectors @ recovered`` (how alike the two rank the
      items; NaN if either scores all items alike); ``"rank"``, the 1-based rank of the
      true entity among catalogue rows by cosine with the recovered vector (cosine, so the
      catalogue rows' norms, which in a factorisation grow with popularity, do not decide);
      and ``"recall@k"``, 1.0 if rank <= k. Rank and recall are NaN for index -1.
    """
    ks = _check_ks(ks)
    recovered, true = _same_shape(("recovered", "true"), recovered, true)
    d = recovered.shape[1]
    items = _matrix("item_vectors", item_vectors, d)
    catalogue = _matrix("catalogue", catalogue, d)
    index = _check_index(target_index, len(recovered), len(catalogue))
    spearman = np.empty(len(recovered))
    chunk = max(1, _BLOCK_ELEMENTS // max(1, len(items)))
    for start in range(0, len(recovered), chunk):
        rows = slice(start, start + chunk)
        spearman[rows] = spearman_rows(true[rows] @ items.T, recovered[rows] @ items.T)
    ranks = _target_ranks(recovered, catalogue, index)
    return {"spearman": spearman, "rank": ranks, **_recalls(ranks, ks)}
