"""Next-token statistics of a batch: loss, token accuracy and exact matches over targets.

``target_statistics`` is what training and evaluation run: the final hidden states are
gathered at the batch's ``target_positions`` only, and projected to the vocabulary a
chunk of positions at a time, the gradient taken in the same pass
(elc/train/fused_cross_entropy.py), so the float32 ``[positions, vocab]`` logits never
exist whole, forward or backward, and are computed once.
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
from elc.train.fused_cross_entropy import chunked_cross_entropy

STATISTICS = ("loss_sum", "tokens", "correct", "exact", "examples")
StatisticsFn = Callable[[ELM, dict, dict], dict]


def config_statistics(train_config) -> StatisticsFn:
    """``target_statistics`` with the chunk size of a config's ``train`` section."""
    return functools.partial(target_statistics, chunk_size=train_config.logits_chunk_size)


def target_statistics(elm: ELM, params: dict, batch: dict, chunk_size: int = 128
                      ) -> dict[str, jax.Array]:
    """The statistics from logits at ``batch['target_positions']`` only.

    ``target_positions`` [groups, K] lists, for each group of rows / groups consecutive
    rows, positions along the group's rows laid end to end (see
    :func:`elc.data.packing.target_positions`); the group's length marks unused entries.
    ``chunk_size`` target positions per row of a group are projected at once (K is padded
    up to a multiple of that).
    """
    if chunk_size < 1:
        raise ValueError(f"the logits chunk size must be >= 1, got {chunk_size}")
    hidden = elm.apply({"params": params}, batch, method=ELM.hidden_states)
    rows, length = hidden.shape[:2]
    positions = batch["target_positions"]
    groups, count = positions.shape
    if rows % groups:
        raise ValueError(f"target_positions has {groups} groups, which do not divide the "
                         f"batch's {rows} rows")
    span = rows // groups * length
    group = lambda x: x.reshape((groups, span) + x.shape[2:])
    valid = positions < span
    index = jnp.minimum(positions, span - 1)
    pick = lambda x: jnp.take_along_axis(group(x), index, axis=1)
    weights = pick(batch["loss_mask"]).astype(jnp.float32) * valid
    targets = pick(batch["targets"])
    # Segment ids restart in every row: the row within the group tells examples apart.
    examples = pick(batch["segment_ids"]) + (index // length) * (length + 1)
    gathered = jnp.take_along_axis(group(hidden), index[..., None], axis=1)  # [groups, K, embed]

    chunk = min(chunk_size * (rows // groups), count)  # chunk_size positions per row
    chunks = -(-count // chunk)
    pad = chunks * chunk - count
    # [chunks, groups, chunk, ...]: every chunk keeps the batch axis (and its sharding).
    split = lambda x: jnp.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2)).reshape(
        (groups, chunks, chunk) + x.shape[2:]).swapaxes(0, 1)
    table = params["backbone"]["embedder"]["embedding"]
    loss_sum, predicted = chunked_cross_entropy(
        functools.partial(_logits, elm), split(gathered), table, split(targets), split(weights))
    predicted = predicted.swapaxes(0, 1).reshape(groups, chunks * chunk)[:, :count]
    return _sums(loss_sum, predicted == targets, weights, examples)


def _logits(elm: ELM, hidden: jax.Array, table: jax.Array) -> jax.Array:
    """The ELM's logits from the output projection's table alone."""
    return elm.apply({"params": {"backbone": {"embedder": {"embedding": table}}}}, hidden,
                     method=ELM.logits)


def full_logits_statistics(elm: ELM, params: dict, batch: dict) -> dict[str, jax.Array]:
    """The statistics from float32 logits [rows, T, vocab] at every position, masked by
    ``loss_mask``."""
    logits = elm.apply({"params": params}, batch)
    label = jnp.take_along_axis(logits, batch["targets"][..., None], axis=-1)[..., 0]
    weights = batch["loss_mask"].astype(jnp.float32)
    loss_sum = jnp.sum((jax.nn.logsumexp(logits, axis=-1) - label) * weights)
    correct = jnp.argmax(logits, axis=-1) == batch["targets"]
    return _sums(loss_sum, correct, weights, batch["segment_ids"])


def _sums(loss_sum: jax.Array, correct: jax.Array, weights: jax.Array, segments: jax.Array
          ) -> dict[str, jax.Array]:
    """Batch sums from the weighted cross-entropy sum, and from argmax hits, loss weights
    and example ids [rows, n] (segment ids, or keys unique within a group); an example's
    target entries are consecutive along n."""
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
    return {"loss_sum": loss_sum, "tokens": jnp.sum(weights),
            "correct": jnp.sum(correct * weights),
            "exact": jnp.sum(exact.astype(jnp.float32)),
            "examples": jnp.sum(last.astype(jnp.float32))}
