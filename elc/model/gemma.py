"""The Gemma 3 text decoder.

Layers are scanned in groups that follow the attention pattern (5 local, 1 global), so
parameters of group member ``layer_i`` are stacked along a leading ``layers`` axis; the
depth left over after the last whole group (e.g. 2 layers of the 26-layer 1B) sits
unstacked under ``tail``. See :mod:`elc.model.layer_stack` for the mapping to layer indices.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from elc.model.attention import attention_mask
from elc.model.config import GemmaConfig
from elc.model.decoder_layer import LayerGroup
from elc.model.embedding import Embedder
from elc.model.norm import RMSNorm


def positions_from_mask(input_mask: jax.Array) -> jax.Array:
    """Positions 0, 1, 2, ... over the real tokens; padding gets the position before it."""
    return jnp.maximum(jnp.cumsum(input_mask.astype(jnp.int32), axis=-1) - 1, 0)


class Gemma3(nn.Module):
    """Gemma 3 decoder. ``embed`` -> ``hidden_states`` -> ``logits``, or all at once via call.

    Soft tokens are spliced between ``embed`` and ``hidden_states``: like the gemma
    library's multimodal tokens, they replace embeddings *after* the sqrt(d) scaling.
    """

    config: GemmaConfig

    def setup(self):
        cfg = self.config
        dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
        self.embedder = Embedder(cfg.vocab_size, cfg.embed_dim, dtype=dtype, param_dtype=param_dtype)
        if cfg.num_scanned_groups:
            scanned = nn.scan(
                LayerGroup, variable_axes={"params": 0}, split_rngs={"params": True},
                in_axes=(nn.broadcast, nn.broadcast), length=cfg.num_scanned_groups,
                metadata_params={nn.PARTITION_NAME: "layers"})
            self.groups = scanned(cfg, cfg.attention_pattern)
        if cfg.num_tail_layers:
            self.tail = LayerGroup(cfg, cfg.attention_pattern[:cfg.num_tail_layers])
        self.final_norm = RMSNorm(eps=cfg.rms_norm_eps, dtype=dtype, param_dtype=param_dtype)

    def embed(self, tokens: jax.Array) -> jax.Array:
        """Token ids [batch, length] -> scaled input embeddings [batch, length, embed]."""
        return self.embedder.encode(tokens)

    def hidden_states(self, embeddings: jax.Array, positions: jax.Array, input_mask: jax.Array,
                      segment_ids: jax.Array | None = None) -> jax.Array:
        """Runs the layers and the final norm.

        Args:
          embeddings: [batch, length, embed] input embeddings (from ``embed``, possibly
            with soft tokens spliced in).
          positions: [batch, length] int RoPE positions.
          input_mask: [batch, length] bool, False at padding.
          segment_ids: optional [batch, length] ints; tokens attend only within their
            segment (packed sequences).
        Returns:
          [batch, length, embed] final hidden states.
        """
        cfg = self.config
        masks = {"global": attention_mask(positions, input_mask, segment_ids, None),
                 "local": attention_mask(positions, input_mask, segment_ids, cfg.sliding_window)}
        x = nn.with_logical_constraint(
            embeddings.astype(jnp.dtype(cfg.dtype)),
            ("activation_batch", "activation_length", "activation_embed"))
        if cfg.num_scanned_groups:
            x, _ = self.groups(x, positions, masks)
        if cfg.num_tail_layers:
            x, _ = self.tail(x, positions, masks)
        return self.final_norm(x)

    def logits(self, hidden: jax.Array) -> jax.Array:
        """Hidden states [..., embed] -> float32 next-token logits [..., vocab]."""
        return self.embedder.decode(hidden)

    def __call__(self, tokens: jax.Array, input_mask: jax.Array | None = None) -> jax.Array:
        """Token ids [batch, length] -> float32 logits [batch, length, vocab]."""
        if input_mask is None:
            input_mask = jnp.ones(tokens.shape, bool)
        positions = positions_from_mask(input_mask)
        return self.logits(self.hidden_states(self.embed(tokens), positions, input_mask))
