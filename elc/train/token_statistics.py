"""Next-token statistics of a batch: loss, token accuracy and exact matches over targets.

``target_statistics`` is what training and evaluation run: the final hidden states are
gathered at the batch's ``target_positions`` only, and projected to the vocabulary a
chunk of positions at a time under ``jax.checkpoint``, so the float32
``[positions, vocab]`` logits never exist whole, forward or backward.
``full_logits_statistics`` takes logits at every position and masks them: the reference
the tests compare with, and the old path the benchmark measures against.

Both return sums over the batch (``STATISTICS``): the cross-entropy of target tokens,
their count, how many are the argmax, how many examples have every target token as the
argmax (greedy decoding reproduces the target exactly, EOS included), and how many
examples have targets. An example is a segment of a row (``segment_ids``), so packed
rows count each of their examples.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp

from elc.model.elm import ELM

STATISTICS = ("loss_sum", "tokens", "correct", "exact", "examples")
StatisticsFn = Callable[[ELM, dict, dict], dict]


def config_statistics(train_config) -> StatisticsFn:
    """``target_statistics`` with the chunk size of a config's ``train`` section."""
    return functools.partial(target_statistics, chunk_size=train_config.logits_chunk_size)


def target_statistics(elm: ELM, params: dict, batch: dict, chunk_size: int = 128
                      ) -> dict[str, jax.Array]:
    """The statistics from logits at ``batch['target_positions']`` [rows, K] only.

    Positions equal to the row length mark unused entries. ``chunk_size`` target
    positions per row are projected at once (K is padded up to a multiple of it).
    """
    if chunk_size < 1:
        raise ValueError(f"the logits chunk size must be >= 1, got {chunk_size}")
    hidden = elm.apply({"params": params}, batch, method=ELM.hidden_states)
    length = hidden.shape[1]
    positions = batch["target_positions"]
    valid = positions < length
    index = jnp.minimum(positions, length - 1)
    pick = lambda x: jnp.take_along_axis(x, index, axis=1)
    weights = pick(batch["loss_mask"]).astype(jnp.float32) * valid
    targets, segments = pick(batch["targets"]), pick(batch["segment_ids"])
    gathered = jnp.take_along_axis(hidden, index[..., None], axis=1)  # [rows, K, embed]

    rows, count = positions.shape
    chunk = min(chunk_size, count)
    chunks = -(-count // chunk)
    pad = chunks * chunk - count
    # [chunks, rows, chunk, ...]: every chunk keeps the batch axis (and its sharding).
    split = lambda x: jnp.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2)).reshape(
        (rows, chunks, chunk) + x.shape[2:]).swapaxes(0, 1)

    @jax.checkpoint  # the backward recomputes a chunk's logits instead of keeping them
    def chunk_losses(args):
        chunk_hidden, chunk_targets = args
        logits = elm.apply({"params": params}, chunk_hidden, method=ELM.logits)
        label = jnp.take_along_axis(logits, chunk_targets[..., None], axis=-1)[..., 0]
        return jax.nn.logsumexp(logits, axis=-1) - label, jnp.argmax(logits, axis=-1)

    ce, predicted = jax.lax.map(chunk_losses, (split(gathered), split(targets)))
    merge = lambda x: x.swapaxes(0, 1).reshape(rows, chunks * chunk)[:, :count]
    return _sums(merge(ce), merge(predicted) == targets, weights, segments)


def full_logits_statistics(elm: ELM, params: dict, batch: dict) -> dict[str, jax.Array]:
    """The statistics from float32 logits [rows, T, vocab] at every position, masked by
    ``loss_mask``."""
    logits = elm.apply({"params": params}, batch)
    label = jnp.take_along_axis(logits, batch["targets"][..., None], axis=-1)[..., 0]
    ce = jax.nn.logsumexp(logits, axis=-1) - label
    correct = jnp.argmax(logits, axis=-1) == batch["targets"]
    return _sums(ce, correct, batch["loss_mask"].astype(jnp.float32), batch["segment_ids"])


def _sums(ce: jax.Array, correct: jax.Array, weights: jax.Array, segments: jax.Array
          ) -> dict[str, jax.Array]:
    """Batch sums from per-entry cross-entropy, argmax hits, loss weights and segment ids
    [rows, n]; an example's target entries are consecutive along n."""
    is_target = weights > 0
    wrong = is_target & ~correct
    # An example's run of target entries ends where the next entry is no target of it.
    following = jnp.pad(segments[:, 1:], [(0, 0), (0, 1)])
    following_is_target = jnp.pad(is_target[:, 1:], [(0, 0), (0, 1)])
    last = is_target & ~(following_is_target & (following == segments))
    preceding = jnp.pad(segments[:, :-1], [(0, 0), (1, 0)])
    preceding_is_target = jnp.pad(is_target[:, :-1], [(0, 0), (1, 0)])
    first = is_target & ~(preceding_is_target & (preceding == segments))
    # Wrong entries of a run = wrong up to its last entry minus wrong before its first.
    wrong_through = jnp.cumsum(wrong.astype(jnp.int32), axis=1)
    entries = jnp.arange(is_target.shape[1])
    run_start = jax.lax.cummax(jnp.where(first, entries, 0), axis=1)
    wrong_before = jnp.take_along_axis(wrong_through - wrong, run_start, axis=1)
    exact = last & (wrong_through == wrong_before)
    return {"loss_sum": jnp.sum(ce * weights), "tokens": jnp.sum(weights),
            "correct": jnp.sum(correct * weights),
            "exact": jnp.sum(exact.astype(jnp.float32)),
            "examples": jnp.sum(last.astype(jnp.float32))}
