"""Which entities are held out whole for evaluation."""

from __future__ import annotations

import dataclasses
import numpy as np


@dataclasses.dataclass(frozen=True)
class Split:
    """Entity ids seen in training and held out for evaluation (each in a seeded order)."""

    train: list[str]
    eval: list[str]


def hold_out(ids, fraction: float, seed: int) -> Split:
    """Holds out ``round(fraction * N)`` of the N ids (at least one), chosen with ``seed``."""
    ids = [str(i) for i in ids]
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"prepare.holdout is {fraction}; expected a fraction in (0, 1)")
    count = min(max(1, int(round(fraction * len(ids)))), len(ids) - 1)
    if count < 1:
        raise ValueError(f"{len(ids)} entities cannot be split into training and held-out "
                         "ones; at least 2 are needed")
    order = np.random.default_rng(seed).permutation(len(ids))
    held = [ids[i] for i in order[:count]]
    return Split(train=[ids[i] for i in order[count:]], eval=held)

