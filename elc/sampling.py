"""Autoregressive generation from a Gemma 3 decoder, compiled as one loop.

Each step re-runs the decoder over the fixed-size token buffer (no KV cache yet) and
reads the hidden state at every row's last filled position, so the whole generation is
one ``jax.lax.fori_loop`` inside one ``jit`` with static shapes.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from elc.model.gemma import Gemma3, positions_from_mask

_LENGTH_BUCKET = 64  # buffer lengths are rounded up to a multiple of this to reuse compilations


@functools.partial(jax.jit, static_argnames=("model", "max_new_tokens", "greedy"))
def _generate(model: Gemma3, params, tokens: jax.Array, lengths: jax.Array, rng: jax.Array,
              temperature: jax.Array, stop_ids: jax.Array, *, max_new_tokens: int, greedy: bool):
    batch, buffer_len = tokens.shape
    rows = jnp.arange(batch)

    def step(i, carry):
        tokens, done, rng = carry
        filled = lengths + i  # tokens present in each row
        mask = jnp.arange(buffer_len)[None, :] < filled[:, None]
        hidden = model.apply(params, model.apply(params, tokens, method=Gemma3.embed),
                             positions_from_mask(mask), mask, method=Gemma3.hidden_states)
        logits = model.apply(params, hidden[rows, filled - 1], method=Gemma3.logits)
        rng, key = jax.random.split(rng)
        if greedy:
            new = jnp.argmax(logits, axis=-1)
        else:
            new = jax.random.categorical(key, logits / temperature, axis=-1)
        new = jnp.where(done, 0, new).astype(tokens.dtype)
        tokens = tokens.at[rows, filled].set(new)
        done = done | jnp.isin(new, stop_ids)
        return tokens, done, rng

    done = jnp.zeros((batch,), bool)
    tokens, done, _ = jax.lax.fori_loop(0, max_new_tokens, step, (tokens, done, rng))
    return tokens


def generate(model: Gemma3, params, prompts: Sequence[Sequence[int]], *, max_new_tokens: int,
             temperature: float = 0.0, seed: int = 0,
             stop_ids: Sequence[int] = ()) -> list[list[int]]:
    """Continues each prompt (token ids, BOS included) by up to ``max_new_tokens`` tokens.

    ``temperature`` 0 is greedy decoding; above 0 samples from softmax(logits / T),
    deterministically for a given ``seed``. A row stops after emitting any of
    ``stop_ids`` (the stop token is kept in its output). Returns the new ids per prompt.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token (the BOS)")
    lengths = np.array([len(p) for p in prompts], np.int32)
    needed = int(lengths.max()) + max_new_tokens
    buffer_len = -(-needed // _LENGTH_BUCKET) * _LENGTH_BUCKET
    tokens = np.zeros((len(prompts), buffer_len), np.int32)
    for row, prompt in enumerate(prompts):
        tokens[row, :len(prompt)] = prompt
    out = _generate(model, params, jnp.asarray(tokens), jnp.asarray(lengths),
                    jax.random.key(seed), jnp.float32(max(temperature, 1e-6)),
                    jnp.asarray(list(stop_ids) or [-1], jnp.int32),
                    max_new_tokens=max_new_tokens, greedy=temperature == 0)
    out = np.asarray(out)
    results = []
    for row, length in enumerate(lengths):
        new = out[row, length:length + max_new_tokens].tolist()
        stops = [j for j, t in enumerate(new) if t in set(stop_ids)]
        results.append(new[:stops[0] + 1] if stops else new)
    return results
