"""RMSNorm with Gemma's zero-centred scale: ``x / rms(x) * (1 + scale)``."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class RMSNorm(nn.Module):
    """Normalises the last axis, whose logical name is ``axis_name``.

    The statistics are computed in float32 whatever the compute dtype: bf16 sums of
    squares lose too much precision over a 640-to-5376-wide row.
    """

    axis_name: str = "embed"
    eps: float = 1e-6
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param(
            "scale",
            nn.with_logical_partitioning(nn.initializers.zeros_init(), (self.axis_name,)),
            (x.shape[-1],), self.param_dtype)
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + self.eps)
        return (normed * (1.0 + scale.astype(jnp.float32))).astype(self.dtype)
