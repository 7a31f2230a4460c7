"""Gemma's GeGLU feed-forward block."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class FeedForward(nn.Module):
    """``down(gelu_tanh(gate(x)) * up(x))``."""

    mlp_dim: int
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        embed_dim = x.shape[-1]
        init = nn.initializers.lecun_normal()

        def kernel(name, shape, axes):
            return self.param(name, nn.with_logical_partitioning(init, axes), shape,
                              self.param_dtype).astype(self.dtype)

        gate = kernel("gate_proj", (embed_dim, self.mlp_dim), ("embed", "mlp"))
        up = kernel("up_proj", (embed_dim, self.mlp_dim), ("embed", "mlp"))
        down = kernel("down_proj", (self.mlp_dim, embed_dim), ("mlp", "embed"))
        x = x.astype(self.dtype)
        hidden = jax.nn.gelu(x @ gate, approximate=True) * (x @ up)
        hidden = nn.with_logical_constraint(
            hidden, ("activation_batch", "activation_length", "activation_mlp"))
        return hidden @ down
