"""Cross-entropy from hidden states through the tied output projection, its gradient
taken in the same pass as the loss.

The logits of a chunk of positions are ``[chunk, vocab]`` float32; the loss needs their
log-sum-exp and the target's logit, and the gradient needs ``softmax - onehot``, which
depends on nothing the backward pass brings but one scalar (the cotangent of the summed
loss). So the forward pass computes each chunk's logits once and, while they exist,
its contribution to the gradients of the hidden states and of the projection table;
the backward pass only scales them. Against differentiating the chunked loss under
``jax.checkpoint`` this saves recomputing every chunk's logits: one of the four
``[positions, vocab, embed]`` matmuls of a step that trains the table, one of three when
the table is frozen (its gradient is then skipped altogether). Without
differentiation only the loss and the argmax are computed.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp

LogitsFn = Callable[[jax.Array, jax.Array], jax.Array]  # (hidden, table) -> f32 logits


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def chunked_cross_entropy(logits_fn: LogitsFn, hidden: jax.Array, table: jax.Array,
                          targets: jax.Array, weights: jax.Array
                          ) -> tuple[jax.Array, jax.Array]:
    """Σ weights × cross-entropy, and the argmax of every position.

    Args:
      logits_fn: ``(hidden [..., embed], table) -> float32 logits [..., vocab]``.
      hidden: [chunks, ..., embed]; chunk by chunk, the logits exist one chunk at a time.
      table: the projection's parameters (the only ones ``logits_fn`` reads).
      targets: int [chunks, ...] target token ids.
      weights: float [chunks, ...] loss weights (0 for positions without a target).

    Returns:
      The weighted sum of cross-entropies (a scalar) and int32 argmax [chunks, ...].
    """
    def chunk(_, xs):
        h, t, w = xs
        ce, predicted, _ = _cross_entropy(logits_fn(h, table), t)
        return None, (jnp.sum(ce * w), predicted)

    _, (sums, predicted) = jax.lax.scan(chunk, None, (hidden, targets, weights))
    return jnp.sum(sums), predicted


def _cross_entropy(logits: jax.Array, targets: jax.Array
                   ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per-position cross-entropy, argmax and log-sum-exp of ``logits``."""
    label = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    lse = jax.nn.logsumexp(logits, axis=-1)
    return lse - label, jnp.argmax(logits, axis=-1), lse


def _forward(logits_fn, hidden, table, targets, weights):
    # With symbolic zeros each argument says whether it is being differentiated.
    with_table = table.perturbed
    hidden, table, targets, weights = hidden.value, table.value, targets.value, weights.value

    def chunk(table_grad, xs):
        h, t, w = xs
        if with_table:
            logits, pullback = jax.vjp(logits_fn, h, table)
        else:
            logits, pullback = jax.vjp(lambda x: logits_fn(x, table), h)
        ce, predicted, lse = _cross_entropy(logits, t)
        # d(Σ w ce) / d logits = w (softmax - onehot)
        softmax = jnp.exp(logits - lse[..., None])
        onehot = jnp.arange(logits.shape[-1]) == t[..., None]
        grads = pullback((softmax - onehot) * w[..., None].astype(logits.dtype))
        if with_table:
            table_grad = table_grad + grads[1].astype(table_grad.dtype)
        return table_grad, (jnp.sum(ce * w), predicted, grads[0])

    zero = jnp.zeros(table.shape, jnp.float32) if with_table else None
    table_grad, (sums, predicted, hidden_grad) = jax.lax.scan(
        chunk, zero, (hidden, targets, weights))
    residuals = (hidden_grad.astype(hidden.dtype),
                 None if table_grad is None else table_grad.astype(table.dtype))
    return (jnp.sum(sums), predicted), residuals


def _backward(logits_fn, residuals, cotangents):
    del logits_fn
    hidden_grad, table_grad = residuals
    scale = cotangents[0]
    if isinstance(scale, jax.custom_derivatives.SymbolicZero):
        scale = jnp.zeros((), hidden_grad.dtype)
    return (hidden_grad * scale.astype(hidden_grad.dtype),
            None if table_grad is None else table_grad * scale.astype(table_grad.dtype),
            None, None)


chunked_cross_entropy.defvjp(_forward, _backward, symbolic_zeros=True)
