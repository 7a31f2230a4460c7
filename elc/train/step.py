"""The jitted train and eval steps: next-token cross-entropy on target tokens only."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from elc.model.elm import ELM
from elc.train.partition import merge_params
from elc.train.state import TrainState


STATISTICS = ("loss_sum", "tokens", "correct", "exact", "examples")


def token_statistics(elm: ELM, params: dict, batch: dict) -> dict[str, jax.Array]:
    """Sums over the batch: loss over target tokens, their count, correct argmaxes, and
    examples whose every target token is the argmax (= greedy decoding reproduces the
    target exactly, EOS included)."""
    logits = elm.apply({"params": params}, batch)
    mask = batch["loss_mask"].astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"])
    correct = (jnp.argmax(logits, axis=-1) == batch["targets"]).astype(jnp.float32) * mask
    has_target = mask.sum(-1) > 0
    exact = jnp.all((correct > 0) | (mask == 0), axis=-1) & has_target
    return {"loss_sum": jnp.sum(ce * mask), "tokens": jnp.sum(mask),
            "correct": jnp.sum(correct), "exact": jnp.sum(exact.astype(jnp.float32)),
            "examples": jnp.sum(has_target.astype(jnp.float32))}


def _split_microbatches(batch: dict, count: int) -> dict:
    def split(x):
        if x.shape[0] % count:
            raise ValueError(f"batch of {x.shape[0]} rows does not split into "
                             f"{count} gradient-accumulation micro-batches")
        return x.reshape(count, x.shape[0] // count, *x.shape[1:])
    return jax.tree_util.tree_map(split, batch)


def make_train_step(elm: ELM, optimizer: optax.GradientTransformation,
                    schedule: optax.Schedule, stage_start: int,
                    grad_accum_steps: int = 1) -> Callable[[TrainState, dict], tuple]:
    """Returns ``train_step(state, batch) -> (state, metrics)`` (not yet jitted).

    With ``grad_accum_steps`` > 1 the batch is cut into that many micro-batches whose
    gradients are summed in a scan; one optimizer update follows. The loss is the mean
    over all target tokens of the whole batch either way.
    """

    def loss_fn(trainable, frozen, batch):
        stats = token_statistics(elm, merge_params(trainable, frozen), batch)
        return stats["loss_sum"], stats

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def train_step(state: TrainState, batch: dict):
        if grad_accum_steps == 1:
            (_, stats), grads = grad_fn(state.trainable, state.frozen, batch)
        else:
            def accumulate(carry, micro):
                (_, micro_stats), micro_grads = grad_fn(state.trainable, state.frozen, micro)
                return jax.tree_util.tree_map(jnp.add, carry, (micro_grads, micro_stats)), None

            zeros = jax.tree_util.tree_map(jnp.zeros_like, state.trainable)
            zero_stats = {key: jnp.zeros((), jnp.float32) for key in STATISTICS}
            (grads, stats), _ = jax.lax.scan(accumulate, (zeros, zero_stats),
                                             _split_microbatches(batch, grad_accum_steps))
        tokens = jnp.maximum(stats["tokens"], 1.0)
        grads = jax.tree_util.tree_map(lambda g: g / tokens, grads)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.trainable)
        rng = jax.random.key_data(jax.random.split(jax.random.wrap_key_data(state.rng))[0])
        new_state = state.replace(step=state.step + 1,
                                  trainable=optax.apply_updates(state.trainable, updates),
                                  opt_state=opt_state, rng=rng)
        metrics = {"loss": stats["loss_sum"] / tokens,
                   "token_accuracy": stats["correct"] / tokens,
                   "grad_norm": optax.tree.norm(grads),
                   "learning_rate": schedule(state.step - stage_start),
                   "target_tokens": stats["tokens"]}
        return new_state, metrics

    return train_step


def make_eval_step(elm: ELM) -> Callable[[dict, dict], dict]:
    """Returns ``eval_step(params, batch) -> sums`` (see token_statistics)."""
    return lambda params, batch: token_statistics(elm, params, batch)
