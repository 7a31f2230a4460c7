"""The train and eval steps: next-token cross-entropy on target tokens only (see
elc/train/token_statistics.py)."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from elc.model.elm import ELM
from elc.train.lora import LoraConfig, merge_lora
from elc.train.partition import merge_params
from elc.train.state import TrainState
from elc.train.token_statistics import STATISTICS, StatisticsFn, target_statistics


def _split_microbatches(batch: dict, count: int) -> dict:
    def split(x):
        if x.shape[0] % count:
            raise ValueError(f"batch of {x.shape[0]} rows does not split into "
                             f"{count} gradient-accumulation micro-batches")
        return x.reshape(count, x.shape[0] // count, *x.shape[1:])
    return jax.tree_util.tree_map(split, batch)


def make_train_step(elm: ELM, optimizer: optax.GradientTransformation,
                    schedule: optax.Schedule, stage_start: int,
                    grad_accum_steps: int = 1, statistics: StatisticsFn = target_statistics,
                    lora: LoraConfig | None = None, skip_nonfinite: bool = False
                    ) -> Callable[[TrainState, dict], tuple]:
    """Returns ``train_step(state, batch) -> (state, metrics)`` (not yet jitted).

    With ``grad_accum_steps`` > 1 the batch is cut into that many micro-batches whose
    gradients are summed in a scan; one optimizer update follows. The loss is the mean
    over all target tokens of the whole batch either way. ``statistics`` computes the
    loss (see elc/train/token_statistics.py). With ``lora`` the state's LoRA pairs are
    merged into their kernels for the forward pass, with dropout drawn from the state's
    RNG. With ``skip_nonfinite`` a step whose loss or gradient norm is NaN or infinite
    leaves the parameters and optimizer state as they were (metric ``skipped_update``).
    """

    def loss_fn(trainable, frozen, batch, dropout_rng):
        params = merge_params(trainable, frozen)
        if lora:
            params = merge_lora(params, lora, dropout_rng)
        stats = statistics(elm, params, batch)
        return stats["loss_sum"], stats

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def train_step(state: TrainState, batch: dict):
        next_rng, dropout_rng = jax.random.split(jax.random.wrap_key_data(state.rng))
        if grad_accum_steps == 1:
            (_, stats), grads = grad_fn(state.trainable, state.frozen, batch, dropout_rng)
        else:
            def accumulate(carry, micro):
                (_, micro_stats), micro_grads = grad_fn(state.trainable, state.frozen, micro,
                                                        dropout_rng)
                return jax.tree_util.tree_map(jnp.add, carry, (micro_grads, micro_stats)), None

            zeros = jax.tree_util.tree_map(jnp.zeros_like, state.trainable)
            zero_stats = {key: jnp.zeros((), jnp.float32) for key in STATISTICS}
            (grads, stats), _ = jax.lax.scan(accumulate, (zeros, zero_stats),
                                             _split_microbatches(batch, grad_accum_steps))
        tokens = jnp.maximum(stats["tokens"], 1.0)
        grads = jax.tree_util.tree_map(lambda g: g / tokens, grads)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.trainable)
        trainable = optax.apply_updates(state.trainable, updates)
        grad_norm = optax.tree.norm(grads)
        metrics = {"loss": stats["loss_sum"] / tokens,
                   "token_accuracy": stats["correct"] / tokens,
                   "grad_norm": grad_norm,
                   "learning_rate": schedule(state.step - stage_start),
                   "target_tokens": stats["tokens"]}
        if skip_nonfinite:
            finite = jnp.isfinite(stats["loss_sum"]) & jnp.isfinite(grad_norm)
            keep_if_bad = lambda new, old: jnp.where(finite, new, old)
            trainable = jax.tree_util.tree_map(keep_if_bad, trainable, state.trainable)
            opt_state = jax.tree_util.tree_map(keep_if_bad, opt_state, state.opt_state)
            metrics["skipped_update"] = 1.0 - finite.astype(jnp.float32)
        new_state = state.replace(step=state.step + 1, trainable=trainable, opt_state=opt_state,
                                  rng=jax.random.key_data(next_rng))
        return new_state, metrics

    return train_step


def make_eval_step(elm: ELM, statistics: StatisticsFn = target_statistics
                   ) -> Callable[[dict, dict], dict]:
    """Returns ``eval_step(params, batch) -> sums`` (see elc/train/token_statistics.py)."""
    return lambda params, batch: statistics(elm, params, batch)
