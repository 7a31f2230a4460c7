"""Gemma's tied token embedding: lookup scaled by sqrt(d_model), and the output projection."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class Embedder(nn.Module):
    """One [vocab, embed] table serves as input embedding and output projection."""

    vocab_size: int
    embed_dim: int
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    def setup(self):
        # Rows of norm ~1: after the sqrt(d) input scaling embeddings have unit RMS, and
        # tied logits of a fresh model start near unit scale.
        self.embedding = self.param(
            "embedding",
            nn.with_logical_partitioning(nn.initializers.normal(stddev=self.embed_dim ** -0.5),
                                         ("vocab", "embed")),
            (self.vocab_size, self.embed_dim), self.param_dtype)

    def encode(self, tokens: jax.Array) -> jax.Array:
        """Token ids [batch, length] -> embeddings [batch, length, embed], times sqrt(embed)."""
        x = jnp.take(self.embedding, tokens, axis=0).astype(self.dtype)
        # Batch-sharded like every activation; otherwise the gather keeps the table's
        # embed-axis sharding and the partitioner replicates the result to reshard it.
        x = nn.with_logical_constraint(
            x, ("activation_batch", "activation_length", "activation_embed"))
        # The scale is rounded to the compute dtype first, as the reference models do.
        return x * jnp.sqrt(jnp.float32(self.embed_dim)).astype(self.dtype)

    def decode(self, x: jax.Array) -> jax.Array:
        """Hidden states [..., embed] -> float32 logits [..., vocab]."""
        return jnp.einsum("...d,vd->...v", x.astype(self.dtype), self.embedding.astype(self.dtype),
                          preferred_element_type=jnp.float32)
