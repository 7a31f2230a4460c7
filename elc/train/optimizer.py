"""AdamW with linear warmup, cosine decay, global-norm clipping and per-parameter
learning-rate multipliers."""

from __future__ import annotations

import dataclasses
import math
import re

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
      lr_multipliers: ``(regex, factor)`` pairs: the parameters whose path (e.g.
        ``adapters/movie_semantic/hidden_0/kernel``) fully matches ``regex`` learn at
        ``factor`` times the schedule's rate; the first matching pair applies. For
        example adapters that keep learning fast while the backbone is fine-tuned gently.
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
    lr_multipliers: tuple[tuple[str, float], ...] = ()

    def __post_init__(self):
        for pair in self.lr_multipliers:
            if (len(pair) != 2 or not isinstance(pair[0], str)
                    or not isinstance(pair[1], (int, float)) or not math.isfinite(pair[1])
                    or pair[1] <= 0):
                raise ValueError(f"lr_multipliers must be (regex, factor > 0) pairs, got "
                                 f"{pair!r}")
            try:
                re.compile(pair[0])
            except re.error as error:
                raise ValueError(f"lr_multipliers regex {pair[0]!r} is invalid: {error}") from None
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a finite number > 0, got {self.learning_rate}")
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


def _path(keys) -> str:
    # Dict keys only: boxed parameters (logical axis names) add attribute steps.
    return "/".join(str(k.key) for k in keys if isinstance(k, jax.tree_util.DictKey))


def scale_by_path(pairs: tuple[tuple[str, float], ...]) -> optax.GradientTransformation:
    """Multiplies each update by the factor of the first ``(regex, factor)`` pair whose
    regex fully matches its parameter's path (1 where none does). Stateless: the factors
    follow from the tree's paths, so the optimizer state (and checkpoints) do not change."""
    compiled = [(re.compile(pattern), factor) for pattern, factor in pairs]

    def factor(path: str) -> float:
        return next((f for r, f in compiled if r.fullmatch(path)), 1.0)

    def init(params):
        paths = [_path(keys) for keys, _ in jax.tree_util.tree_leaves_with_path(params)]
        unused = [r.pattern for r, _ in compiled if not any(r.fullmatch(p) for p in paths)]
        if unused:
            raise ValueError(f"lr_multipliers regexes {unused} match no trained parameter; "
                             f"paths look like {paths[:3]}")
        return optax.EmptyState()

    def scaled(keys, update):
        f = factor(_path(keys))
        return update if f == 1.0 else update * f

    def update(updates, state, params=None):
        del params
        return jax.tree_util.tree_map_with_path(scaled, updates), state
    return optax.GradientTransformation(init, update)


def make_optimizer(config: OptimizerConfig) -> optax.GradientTransformation:
    parts = []
    if config.clip_norm > 0:
        parts.append(optax.clip_by_global_norm(config.clip_norm))
    parts.append(optax.adamw(learning_rate_schedule(config), b1=config.b1, b2=config.b2,
                             eps=config.eps, weight_decay=config.weight_decay, mask=_decay_mask))
    if config.lr_multipliers:
        parts.append(scale_by_path(config.lr_multipliers))
    return optax.chain(*parts)
