"""The embedding adapter: a dense vector from some embedding space -> k soft tokens."""

from __future__ import annotations

from typing import Literal, Sequence, get_args

import flax.linen as nn
import jax
import jax.numpy as jnp

InputNorm = Literal["none", "l2", "rms"]
INPUT_NORMS = get_args(InputNorm)
ACTIVATIONS = {"gelu": jax.nn.gelu, "relu": jax.nn.relu, "silu": jax.nn.silu, "tanh": jnp.tanh}


class EmbeddingAdapter(nn.Module):
    """MLP from a d_e vector to ``num_soft_tokens`` vectors of width ``embed_dim``.

    The paper's adapter is a 2-layer MLP; here ``hidden_dims`` sets the hidden layers
    (default one hidden layer, i.e. 2 dense layers). Each soft token is RMS-normalised
    and multiplied by a learned scale that starts at ``output_scale``: set it to the
    typical norm / sqrt(d) of real token embeddings after Gemma's sqrt(d) scaling, so
    that soft tokens enter the decoder at the magnitude it was trained on.

    Attributes:
      embed_dim: the decoder width d_model.
      num_soft_tokens: k, soft tokens produced per vector.
      hidden_dims: widths of the hidden layers.
      activation: one of gelu, relu, silu, tanh.
      input_norm: ``l2`` scales input vectors to unit norm, ``rms`` to unit RMS,
        ``none`` leaves them.
      output_scale: initial RMS of each soft token.
    """

    embed_dim: int
    num_soft_tokens: int = 1
    hidden_dims: Sequence[int] = (1024,)
    activation: str = "gelu"
    input_norm: InputNorm = "none"
    output_scale: float = 1.0
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, vectors: jax.Array) -> jax.Array:
        """vectors [..., d_e] -> soft tokens [..., num_soft_tokens, embed_dim]."""
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"adapter activation {self.activation!r} is not one of "
                             f"{sorted(ACTIVATIONS)}")
        x = vectors.astype(jnp.float32)
        if self.input_norm == "l2":
            x = x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
        elif self.input_norm == "rms":
            x = x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + 1e-12)
        elif self.input_norm != "none":
            raise ValueError(f"adapter input_norm {self.input_norm!r} is not one of {INPUT_NORMS}")
        act = ACTIVATIONS[self.activation]
        axes_in = "adapter_input"
        for i, width in enumerate(self.hidden_dims):
            # A hidden-to-hidden kernel names its input axis apart from its output axis:
            # one logical name may not appear twice in a parameter.
            kernel_in = axes_in if i == 0 else "adapter_hidden_in"
            x = nn.Dense(width, dtype=self.dtype, param_dtype=self.param_dtype,
                         kernel_init=nn.with_logical_partitioning(
                             nn.initializers.lecun_normal(), (kernel_in, "adapter_hidden")),
                         bias_init=nn.with_logical_partitioning(
                             nn.initializers.zeros_init(), ("adapter_hidden",)),
                         name=f"hidden_{i}")(x)
            x = act(x)
            axes_in = "adapter_hidden"
        # The output layer's input, for fitting it in closed form (elc/train/adapter_alignment.py).
        self.sow("intermediates", "features", x)
        # An explicit [in, k, embed] kernel: DenseGeneral stores it flattened, which its
        # logical axis names would not fit.
        kernel = self.param("output_kernel", nn.with_logical_partitioning(
            nn.initializers.lecun_normal(), (axes_in, "soft_tokens", "embed")),
            (x.shape[-1], self.num_soft_tokens, self.embed_dim), self.param_dtype)
        bias = self.param("output_bias", nn.with_logical_partitioning(
            nn.initializers.zeros_init(), ("soft_tokens", "embed")),
            (self.num_soft_tokens, self.embed_dim), self.param_dtype)
        out = jnp.einsum("...h,hke->...ke", x.astype(self.dtype), kernel.astype(self.dtype)) + bias
        out = out.astype(jnp.float32)
        out = out * jax.lax.rsqrt(jnp.mean(jnp.square(out), axis=-1, keepdims=True) + 1e-6)
        scale = self.param("output_scale", nn.with_logical_partitioning(
            nn.initializers.constant(self.output_scale), ()), (), self.param_dtype)
        return (out * scale).astype(self.dtype)
