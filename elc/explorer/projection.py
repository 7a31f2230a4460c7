"""A 2-D map of a space: its vectors projected on their top two principal components."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class PlaneProjection:
    """x -> (x - mean) @ axes, with ``axes`` [d, 2] the top two principal directions."""

    mean: np.ndarray
    axes: np.ndarray

    @classmethod
    def fit(cls, vectors: np.ndarray) -> PlaneProjection:
        """The projection of ``vectors`` [N, d] (N >= 2, d >= 2) on their top two
        principal components, each signed so that its largest loading is positive (the
        same map on every start)."""
        x = np.asarray(vectors, np.float64)
        if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
            raise ValueError(f"a map needs at least 2 vectors of at least 2 dimensions, got "
                             f"shape {x.shape}")
        mean = x.mean(axis=0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        axes = vt[:2].T
        signs = np.sign(axes[np.argmax(np.abs(axes), axis=0), [0, 1]])
        return cls(mean, axes * np.where(signs == 0, 1.0, signs))

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        """[N, 2] map coordinates of ``vectors`` [N, d] (or [2] of one vector [d])."""
        return (np.asarray(vectors, np.float64) - self.mean) @ self.axes
