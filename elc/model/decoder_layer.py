"""One Gemma 3 decoder layer, and a scanned group of layers following the attention pattern."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from elc.model.attention import Attention, LayerCache
from elc.model.config import AttentionType, GemmaConfig
from elc.model.mlp import FeedForward
from elc.model.norm import RMSNorm

_ACTIVATION_AXES = ("activation_batch", "activation_length", "activation_embed")


class DecoderLayer(nn.Module):
    """Pre- and post-normed attention, then pre- and post-normed GeGLU, each residual.

    Returns the output and the attention's updated KV cache (None without a cache; see
    ``Attention``).
    """

    config: GemmaConfig
    attention_type: AttentionType

    @nn.compact
    def __call__(self, x: jax.Array, positions: jax.Array, masks: dict[str, jax.Array],
                 cache: LayerCache | None = None, cache_index: jax.Array | None = None
                 ) -> tuple[jax.Array, LayerCache | None]:
        cfg = self.config
        norm = dict(eps=cfg.rms_norm_eps, dtype=jnp.dtype(cfg.dtype),
                    param_dtype=jnp.dtype(cfg.param_dtype))
        h = RMSNorm(name="pre_attention_norm", **norm)(x)
        h, cache = Attention(cfg, self.attention_type, name="attention")(
            h, positions, masks[self.attention_type], cache, cache_index)
        x = x + RMSNorm(name="post_attention_norm", **norm)(h)
        x = nn.with_logical_constraint(x, _ACTIVATION_AXES)
        h = RMSNorm(name="pre_ffw_norm", **norm)(x)
        h = FeedForward(cfg.mlp_dim, dtype=jnp.dtype(cfg.dtype),
                        param_dtype=jnp.dtype(cfg.param_dtype), name="mlp")(h)
        x = x + RMSNorm(name="post_ffw_norm", **norm)(h)
        return nn.with_logical_constraint(x, _ACTIVATION_AXES), cache


_REMAT_POLICIES = {
    "full": None,  # save nothing, recompute everything in the backward pass
    "dots_saveable": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


class LayerGroup(nn.Module):
    """Consecutive layers with the kinds in ``attention_types``, unrolled.

    The decoder scans this module over the depth, so that compile time depends on the
    pattern's length, not on the number of layers. Being a scan body it takes and
    returns ``(carry, ys)``: ``cache`` ({'layer_i': LayerCache}, or None without a
    cache) comes in as the scanned input and goes out, updated, as the scanned output.
    """

    config: GemmaConfig
    attention_types: tuple[AttentionType, ...]

    @nn.compact
    def __call__(self, x: jax.Array, positions: jax.Array, masks: dict[str, jax.Array],
                 cache: dict[str, LayerCache] | None = None, cache_index: jax.Array | None = None
                 ) -> tuple[jax.Array, dict[str, LayerCache] | None]:
        layer_cls = DecoderLayer
        if self.config.remat_policy != "none":
            layer_cls = nn.remat(DecoderLayer, prevent_cse=False,
                                 policy=_REMAT_POLICIES[self.config.remat_policy])
        new_cache = None if cache is None else {}
        for i, kind in enumerate(self.attention_types):
            name = f"layer_{i}"
            x, layer_cache = layer_cls(self.config, kind, name=name)(
                x, positions, masks, None if cache is None else cache[name], cache_index)
            if cache is not None:
                new_cache[name] = layer_cache
        return x, new_cache
