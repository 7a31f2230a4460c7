"""The training state: one pytree that a checkpoint saves and restores whole."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import optax

from elc.train.partition import merge_params, split_params


@flax.struct.dataclass
class TrainState:
    """Global step, parameters split into trainable and frozen, optimizer state of the
    trainable part only, and the RNG (as raw key data, so that it checkpoints)."""

    step: jax.Array
    trainable: dict
    frozen: dict
    opt_state: Any
    rng: jax.Array

    @property
    def params(self) -> dict:
        return merge_params(self.trainable, self.frozen)


def create_state(params: dict, trainable: list[str], optimizer: optax.GradientTransformation,
                 step: int, rng_data: jax.Array) -> TrainState:
    """A state whose trainable part is the leaves matching ``trainable`` regexes.

    ``rng_data`` is raw key data (``jax.random.key_data``). Works on parameters boxed
    with logical axis names too, whose optimizer state then carries the same names.
    """
    train_part, frozen_part = split_params(params, trainable)
    return TrainState(step=jax.numpy.asarray(step, jax.numpy.int32), trainable=train_part,
                      frozen=frozen_part, opt_state=optimizer.init(train_part), rng=rng_data)
