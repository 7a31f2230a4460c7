"""Per-token negative log-likelihood of a text under a Gemma 3 decoder."""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from elc.model.gemma import Gemma3


@functools.partial(jax.jit, static_argnames=("model",))
def _window_nll(model: Gemma3, params, tokens: jax.Array, mask: jax.Array) -> jax.Array:
    """NLL of tokens[t+1] given tokens[..t], for each t; [batch, length-1]."""
    logits = model.apply(params, tokens, mask)[:, :-1]
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(log_probs, tokens[:, 1:, None], axis=-1)[..., 0]


def token_nll(model: Gemma3, params, ids: Sequence[int], window: int) -> np.ndarray:
    """NLL (nats) of ids[1:], each predicted from the ids before it.

    Texts longer than ``window`` tokens are cut into windows that overlap by one token,
    so every token is predicted exactly once; context restarts at each window, which
    raises the NLL slightly for the first tokens of later windows.
    """
    if len(ids) < 2:
        raise ValueError(f"need at least 2 tokens to score, got {len(ids)}")
    if window < 2:
        raise ValueError(f"the scoring window must be >= 2 tokens, got {window}")
    ids = np.asarray(ids, np.int32)
    pieces = []
    for start in range(0, len(ids) - 1, window - 1):
        chunk = ids[start:start + window]
        tokens = np.zeros((1, window), np.int32)
        tokens[0, :len(chunk)] = chunk
        mask = np.arange(window)[None] < len(chunk)
        nll = _window_nll(model, params, jnp.asarray(tokens), jnp.asarray(mask))
        pieces.append(np.asarray(nll[0, :len(chunk) - 1]))
    return np.concatenate(pieces)
