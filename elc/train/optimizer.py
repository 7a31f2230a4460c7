"""AdamW with linear warmup, cosine decay and global-norm clipping."""

from __future__ import annotations

import dataclasses

import jax
import optax


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Per-stage optimizer settings.

    Attributes:
      learning_rate: peak learning rate, reached after ``warmup_steps``.
      warmup_steps: linear warmup from 0.
      decay_steps: steps of the cosine decay that follows (the stage's length).
      final_lr_ratio: learning rate at the end of the decay, as a fraction of the peak.
      weight_decay: decoupled weight decay on matrices (not on norms, biases, scales).
      clip_norm: global gradient norm clip; 0 disables it.
      b1, b2, eps: Adam moments.
    """

    learning_rate: float
    warmup_steps: int
    decay_steps: int
    final_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    clip_norm: float = 1.0
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self):
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.warmup_steps < self.decay_steps:
            raise ValueError(f"warmup_steps must be in [0, steps={self.decay_steps}), "
                             f"got {self.warmup_steps}")


def learning_rate_schedule(config: OptimizerConfig) -> optax.Schedule:
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=config.learning_rate, warmup_steps=config.warmup_steps,
        decay_steps=max(config.decay_steps, 1),
        end_value=config.learning_rate * config.final_lr_ratio)


def _decay_mask(params):
    # Matrices decay; vectors and scalars (norm scales, biases, the adapter scale) do not.
    return jax.tree_util.tree_map(lambda p: p.ndim >= 2, params)


def make_optimizer(config: OptimizerConfig) -> optax.GradientTransformation:
    parts = []
    if config.clip_norm > 0:
        parts.append(optax.clip_by_global_norm(config.clip_norm))
    parts.append(optax.adamw(learning_rate_schedule(config), b1=config.b1, b2=config.b2,
                             eps=config.eps, weight_decay=config.weight_decay, mask=_decay_mask))
    return optax.chain(*parts)
