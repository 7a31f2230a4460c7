"""Rotary position embeddings in Gemma's split-half layout."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def apply_rope(x: jax.Array, positions: jax.Array, *, base: float, scale: float = 1.0) -> jax.Array:
    """Rotates ``x`` [batch, length, heads, head_dim] by its ``positions`` [batch, length].

    The first and second halves of ``head_dim`` form the (real, imaginary) pairs, as in
    Gemma and Hugging Face's ``rotate_half``. ``scale`` > 1 stretches positions linearly
    (the long-context global layers of Gemma 3 4B and larger use 8).
    """
    half = x.shape[-1] // 2
    fraction = 2.0 * jnp.arange(half, dtype=jnp.float32) / x.shape[-1]
    inverse_timescale = 1.0 / (base ** fraction)
    angles = (positions.astype(jnp.float32)[..., None] / scale) * inverse_timescale
    sin = jnp.sin(angles)[..., None, :]
    cos = jnp.cos(angles)[..., None, :]
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    rotated = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return rotated.astype(x.dtype)
