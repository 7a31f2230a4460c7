"""A batch whose examples are given each other's vectors: the control that shows how
much of the model's held-out loss comes from reading its vectors at all.

A model that ignores its soft tokens has the same loss either way; one that reads them
is surprised by another example's vector. The difference (nats per target token) is the
trainer's ``eval/vector_gain``.
"""

from __future__ import annotations

import numpy as np


def with_swapped_vectors(batch: dict) -> dict:
    """``batch`` (host arrays, as a BatchIterator yields them) with every filled slot of a
    space holding the vector of the previous filled slot of that space, in row-major
    order (the first takes the last's). Spaces with fewer than two filled slots keep
    their vectors. Nothing else changes; ``batch`` is not modified."""
    slots = {}
    for space, slot in batch["slots"].items():
        filled = np.asarray(slot["mask"], bool)
        vectors = np.asarray(slot["vectors"])
        if filled.sum() >= 2:
            vectors = vectors.copy()
            vectors[filled] = np.roll(vectors[filled], 1, axis=0)
        slots[space] = {**slot, "vectors": vectors}
    return {**batch, "slots": slots}
