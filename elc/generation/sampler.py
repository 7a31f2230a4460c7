"""Autoregressive generation from a Gemma 3 decoder or an ELM, with a KV cache.

Prompts sit left-aligned in a block of ``P`` slots (``P`` rounded up to a bucket), and a
token's cache slot is also its RoPE position. Prefill runs the whole block once, writing
keys and values for every slot, and samples each row's first new token at its last
prompt position. Each decode step embeds every row's previous token, writes it at that
row's next slot ``filled[row]`` and samples the next one. Prefill leaves junk in the
slots past a short prompt; the cache mask hides every slot after the query's own, and
each of those slots is overwritten by a generated token before any query reaches it.

Prefill and a ``jax.lax.while_loop`` of decode steps, which ends once every row has
emitted a stop id, form one ``jit``; batch and prompt block are rounded up to buckets so
that compilations are reused. Under ``jax.set_mesh(mesh)`` and ``nn.logical_axis_rules``
with sharded params, generation runs sharded: the cache carries logical axis names.
"""

from __future__ import annotations

import functools
import math
from typing import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from elc.model.config import GemmaConfig
from elc.model.elm import ELM
from elc.model.gemma import Gemma3, init_cache, unstack_layer_groups

_LENGTH_BUCKET = 64  # prompt blocks are rounded up to a multiple of this
_STOP_BUCKET = 8  # stop-id lists are padded (with -1, never a token) to a multiple of this

Slots = Mapping[str, Mapping[str, np.ndarray]]


def _config(model: Gemma3 | ELM) -> GemmaConfig:
    return model.backbone_config if isinstance(model, ELM) else model.config


class GenerationLengthError(ValueError):
    """max_new_tokens below 1, or a prompt plus max_new_tokens beyond the backbone's context."""


def check_generation_length(model: Gemma3 | ELM, prompt_lengths: Sequence[int],
                            max_new_tokens: int) -> None:
    """Raises GenerationLengthError unless ``max_new_tokens`` >= 1 and each prompt of
    ``prompt_lengths`` tokens plus ``max_new_tokens`` fits the backbone's
    ``context_length``: a request beyond it would run (for minutes) out of what the model
    was trained on, so it fails before anything compiles."""
    if max_new_tokens < 1:
        raise GenerationLengthError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    limit = _config(model).context_length
    lengths = list(prompt_lengths)
    longest = max(lengths, default=0)
    if longest + max_new_tokens > limit:
        which = f" (prompt {lengths.index(longest)})" if lengths else ""
        room = (f"at most {limit - longest} new tokens fit" if longest < limit
                else "the prompt alone fills it")
        raise GenerationLengthError(
            f"max_new_tokens={max_new_tokens} after a prompt of {longest} tokens{which} needs "
            f"{longest + max_new_tokens} positions, beyond the backbone's context of {limit} "
            f"(its context_length); {room}")


def _embed(model: Gemma3 | ELM, params, tokens: jax.Array, slots) -> jax.Array:
    if isinstance(model, ELM):
        return model.apply(params, tokens, slots, method=ELM.embed)
    return model.apply(params, tokens, method=Gemma3.embed)


def _filter_logits(logits: jax.Array, top_k: jax.Array, top_p: jax.Array) -> jax.Array:
    """Keeps the ``top_k`` largest logits of each row (0: all), then the fewest most likely
    of those whose renormalised probabilities sum to at least ``top_p`` (1: all); the
    rest become -inf. Both limits are traced, so all settings share one compilation."""
    vocab = logits.shape[-1]
    descending = -jnp.sort(-logits, axis=-1)
    rank = jnp.arange(vocab)
    in_top_k = rank < jnp.where(top_k > 0, jnp.minimum(top_k, vocab), vocab)
    probs = jax.nn.softmax(jnp.where(in_top_k, descending, -jnp.inf), axis=-1)
    mass_before = jnp.cumsum(probs, axis=-1) - probs  # of the strictly more likely tokens
    # The most likely token has mass_before 0 < top_p, so at least it survives; top_p 1
    # keeps all, even where rounding lifts mass_before to 1.
    keep = in_top_k & ((mass_before < top_p) | (top_p >= 1))
    cutoff = jnp.min(jnp.where(keep, descending, jnp.inf), axis=-1, keepdims=True)
    return jnp.where(logits < cutoff, -jnp.inf, logits)


def _unscanned(model: Gemma3 | ELM, params) -> tuple[Gemma3 | ELM, dict]:
    """The model with ``scan_layers=False`` and its params unstacked to match.

    Inside the while_loop a scanned decoder would slice every weight out of the stack at
    each step (a copy per weight on XLA's CPU backend: two thirds of a 270M step); sliced
    once before the loop, the weights are loop invariants. The slices cost one extra copy
    of the layer weights for the duration of the call.
    """
    config = _config(model).replace(scan_layers=False)
    variables = dict(params)
    if isinstance(model, ELM):
        variables["params"] = {**variables["params"],
                               "backbone": unstack_layer_groups(variables["params"]["backbone"])}
        return model.clone(backbone_config=config), variables
    variables["params"] = unstack_layer_groups(variables["params"])
    return model.clone(config=config), variables


@functools.partial(jax.jit, static_argnames=("model", "max_new_tokens", "greedy", "filtered"))
def _generate(model: Gemma3 | ELM, params, tokens: jax.Array, lengths: jax.Array, slots,
              done: jax.Array, rng: jax.Array, temperature: jax.Array, top_k: jax.Array,
              top_p: jax.Array, stop_ids: jax.Array, *, max_new_tokens: int, greedy: bool,
              filtered: bool) -> jax.Array:
    """New tokens [batch, max_new_tokens]; a row is 0 after its stop id, and so is a row
    that starts ``done`` (a bucket's padding)."""
    batch, block = tokens.shape
    model, params = _unscanned(model, params)
    cache = init_cache(_config(model), batch, block + max_new_tokens)

    def next_token(logits, step, done, out):
        if greedy:
            new = jnp.argmax(logits, axis=-1)
        else:
            logits = logits / temperature
            if filtered:  # skips the sort over the vocabulary when nothing is filtered
                logits = _filter_logits(logits, top_k, top_p)
            new = jax.random.categorical(jax.random.fold_in(rng, step), logits, axis=-1)
        new = jnp.where(done, 0, new).astype(jnp.int32)
        return new, done | jnp.isin(new, stop_ids), out.at[:, step].set(new)

    # Prefill: the whole prompt block from slot 0; the first new token of each row comes
    # from its last prompt position.
    embeddings = _embed(model, params, tokens, slots)
    hidden, cache = model.apply(params, embeddings, jnp.zeros((batch,), jnp.int32), cache,
                                method="cached_hidden_states")
    logits = model.apply(params, hidden[jnp.arange(batch), lengths - 1], method="logits")
    out = jnp.zeros((batch, max_new_tokens), jnp.int32)
    new, done, out = next_token(logits, 0, done, out)

    def unfinished(carry):
        step, _, _, _, done, _ = carry
        return (step < max_new_tokens) & ~jnp.all(done)

    def decode(carry):
        step, last, filled, cache, done, out = carry
        embeddings = _embed(model, params, last[:, None], {})
        hidden, cache = model.apply(params, embeddings, filled, cache,
                                    method="cached_hidden_states")
        logits = model.apply(params, hidden[:, 0], method="logits")
        new, done, out = next_token(logits, step, done, out)
        return step + 1, new, filled + 1, cache, done, out

    carry = (jnp.int32(1), new, lengths, cache, done, out)
    return jax.lax.while_loop(unfinished, decode, carry)[-1]


def _batch_shards() -> int:
    """How many ways the current mesh and logical rules split the batch (1 without a mesh)."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return 1
    axes = nn.logical_to_mesh_axes(("activation_batch",))[0]
    if axes is None:
        return 1
    return int(np.prod([mesh.shape[a] for a in ((axes,) if isinstance(axes, str) else axes)]))


def _stack_slots(slots: Sequence[Slots], lengths: np.ndarray, batch: int,
                 block: int) -> dict[str, dict[str, np.ndarray]]:
    """Per-prompt slot dicts -> one batch (pad rows have every slot masked), validated."""
    spaces = sorted(slots[0])
    stacked = {}
    for space in spaces:
        parts = {}
        for key in ("vectors", "mask", "positions"):
            rows = []
            for row, prompt_slots in enumerate(slots):
                if sorted(prompt_slots) != spaces:
                    raise ValueError(f"slots[{row}] has spaces {sorted(prompt_slots)}, but "
                                     f"slots[0] has {spaces}; every prompt needs the same spaces")
                if key not in prompt_slots[space]:
                    raise ValueError(f"slots[{row}][{space!r}] has no {key!r}; expected "
                                     "'vectors', 'mask' and 'positions' as encode_prompt gives")
                rows.append(np.asarray(prompt_slots[space][key]))
            if len({r.shape for r in rows}) > 1:
                raise ValueError(f"slots[*][{space!r}][{key!r}] differ in shape across prompts: "
                                 f"{sorted({r.shape for r in rows})}")
            parts[key] = np.stack(rows)
        used_past_end = parts["mask"][..., None] & (parts["positions"] >= lengths[:, None, None])
        if used_past_end.any():
            row = int(np.argwhere(used_past_end)[0][0])
            raise ValueError(f"slots[{row}][{space!r}] places soft tokens at positions "
                             f"{parts['positions'][row][parts['mask'][row]].tolist()}, but "
                             f"prompt {row} has only {lengths[row]} tokens")
        pad = batch - len(slots)
        stacked[space] = {
            "vectors": np.pad(parts["vectors"].astype(np.float32),
                              [(0, pad)] + [(0, 0)] * (parts["vectors"].ndim - 1)),
            "mask": np.pad(parts["mask"].astype(bool), [(0, pad), (0, 0)]),
            "positions": np.pad(parts["positions"].astype(np.int32), [(0, pad), (0, 0), (0, 0)],
                                constant_values=block),
        }
    return stacked


def generate(model: Gemma3 | ELM, params, prompts: Sequence[Sequence[int]], *,
             max_new_tokens: int, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
             seed: int = 0, stop_ids: Sequence[int] = (),
             slots: Sequence[Slots] | None = None) -> list[list[int]]:
    """Continues each prompt by up to ``max_new_tokens`` tokens.

    Args:
      model: a Gemma3 decoder, or an ELM (whose prompts may hold soft tokens).
      params: the variables ``model.apply`` takes, e.g. ``{'params': ...}``.
      prompts: token ids per prompt, BOS included.
      max_new_tokens: most tokens generated per prompt; with the longest prompt it must
        fit the backbone's ``context_length`` (see :func:`check_generation_length`).
      temperature: 0 decodes greedily; above 0 samples from softmax(logits / T),
        restricted by ``top_k`` and ``top_p``, deterministically for a given ``seed``.
      top_k: sample among the k most likely tokens only; 0 (or >= vocabulary) is off.
      top_p: nucleus sampling: among the fewest most likely tokens whose probability
        reaches ``top_p`` (after ``top_k``); 1.0 is off.
      seed: seed of the sampling.
      stop_ids: a row stops after emitting any of these (the stop token is kept in its
        output); other rows go on.
      slots: ELM only: one slot dict per prompt, as ``ExampleEncoder.encode_prompt``
        gives it (space -> {'vectors' [S, d], 'mask' [S], 'positions' [S, k]}); slots
        with mask False are ignored. None for text-only prompts.
    Returns:
      The new token ids of each prompt.
    """
    if not isinstance(model, (Gemma3, ELM)):
        raise TypeError(f"model must be a Gemma3 or an ELM, got {type(model).__name__}")
    if not (math.isfinite(temperature) and temperature >= 0):  # NaN fails "< 0" checks
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
    if not isinstance(top_k, (int, np.integer)) or top_k < 0:
        raise ValueError(f"top_k must be an int >= 0 (0 is off), got {top_k!r}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (1 is off), got {top_p}")
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token (the BOS)")
    if slots is not None and not isinstance(model, ELM):
        raise ValueError("slots were given, but the model is a Gemma3, which has no soft "
                         "tokens; pass slots=None, or use an ELM")
    if slots is not None and len(slots) != len(prompts):
        raise ValueError(f"got {len(slots)} slot dicts for {len(prompts)} prompts; expected "
                         "one per prompt")
    check_generation_length(model, [len(p) for p in prompts], max_new_tokens)

    count = len(prompts)
    lengths = np.array([len(p) for p in prompts], np.int32)
    block = -(-int(lengths.max()) // _LENGTH_BUCKET) * _LENGTH_BUCKET
    shards = _batch_shards()
    batch = -(-(1 << (count - 1).bit_length()) // shards) * shards  # a power of two, split evenly
    tokens = np.zeros((batch, block), np.int32)
    for row, prompt in enumerate(prompts):
        tokens[row, :len(prompt)] = prompt
    # Pad rows: a one-token dummy prompt, done from the start so they never hold up the loop.
    lengths = np.pad(lengths, (0, batch - count), constant_values=1)
    done = np.arange(batch) >= count
    stacked = {} if slots is None else _stack_slots(slots, lengths[:count], batch, block)

    greedy = temperature == 0
    stops = list(stop_ids)
    stops += [-1] * (-(-max(len(stops), 1) // _STOP_BUCKET) * _STOP_BUCKET - len(stops))
    out = _generate(model, params, tokens, lengths, stacked, done, jax.random.key(seed),
                    np.float32(max(temperature, 1e-6)), np.int32(min(top_k, 2 ** 31 - 1)),
                    np.float32(top_p), np.asarray(stops, np.int32),
                    max_new_tokens=max_new_tokens, greedy=greedy,
                    filtered=not greedy and (top_k > 0 or top_p < 1))
    out = np.asarray(jax.device_get(out))
    stop_set = set(stop_ids)
    results = []
    for row in range(count):
        new = out[row].tolist()
        stops_at = [j for j, t in enumerate(new) if t in stop_set]
        results.append(new[:stops_at[0] + 1] if stops_at else new)
    return results
