"""The Gemma 3 text decoder.

Layers are scanned in groups that follow the attention pattern (5 local, 1 global), so
parameters of group member ``layer_i`` are stacked along a leading ``layers`` axis; the
depth left over after the last whole group (e.g. 2 layers of the 26-layer 1B) sits
unstacked under ``tail``. See :mod:`elc.checkpoints.layer_stack` for the mapping to layer indices.

With ``scan_layers=False`` the groups are separate modules ``group_0``, ``group_1``, ...
whose parameters are the slices of the stack (``unstack_layer_groups``); generation runs
so, since a scan slices (on XLA's CPU backend, copies) every weight out of the stack each
time it runs, that is at every decode step.

For generation, ``cached_hidden_states`` runs new tokens against a KV cache (made by
``init_cache``) that mirrors the parameter layout: ``{'groups': {'layer_i': {'k', 'v'}}}``
with a leading groups axis (or ``{'group_g': {'layer_i': ...}}`` unstacked), and
``{'tail': {'layer_i': {'k', 'v'}}}``.
"""

from __future__ import annotations

from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from elc.model.attention import CACHE_AXES, attention_mask, cache_attention_mask
from elc.model.config import GemmaConfig
from elc.model.decoder_layer import LayerGroup
from elc.model.token_embedding import Embedder
from elc.model.norm import RMSNorm

Cache = dict  # {'groups': {'layer_i': LayerCache (stacked)}, 'tail': {'layer_i': LayerCache}}


def init_cache(config: GemmaConfig, batch: int, length: int) -> Cache:
    """An empty (zero) KV cache of ``length`` slots per row for a decoder of ``config``,
    constrained to the logical axes ``CACHE_AXES`` (after ``layers`` where stacked)."""
    shape = (batch, length, config.num_kv_heads, config.head_dim)

    def layers(count, stacked):
        lead, axes = ((config.num_scanned_groups,), ("layers",)) if stacked else ((), ())
        zeros = lambda: nn.with_logical_constraint(
            jnp.zeros(lead + shape, jnp.dtype(config.dtype)), axes + CACHE_AXES)
        return {f"layer_{i}": {"k": zeros(), "v": zeros()} for i in range(count)}

    cache = {}
    if config.num_scanned_groups and config.scan_layers:
        cache["groups"] = layers(len(config.attention_pattern), stacked=True)
    elif config.num_scanned_groups:
        for group in range(config.num_scanned_groups):
            cache[f"group_{group}"] = layers(len(config.attention_pattern), stacked=False)
    if config.num_tail_layers:
        cache["tail"] = layers(config.num_tail_layers, stacked=False)
    return cache


def unstack_layer_groups(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params of a scanned Gemma3 -> those of the same decoder with ``scan_layers=False``:
    the stack under ``groups`` becomes ``group_0``, ``group_1``, ... (one slice each)."""
    unstacked = {name: value for name, value in params.items() if name != "groups"}
    if "groups" in params:
        count = jax.tree_util.tree_leaves(params["groups"])[0].shape[0]
        for group in range(count):
            unstacked[f"group_{group}"] = jax.tree.map(lambda stacked: stacked[group],
                                                       params["groups"])
    return unstacked


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
        if cfg.num_scanned_groups and not cfg.scan_layers:
            self.group = [LayerGroup(cfg, cfg.attention_pattern)
                          for _ in range(cfg.num_scanned_groups)]  # named group_0, group_1, ...
        elif cfg.num_scanned_groups:
            scanned = nn.scan(
                LayerGroup, variable_axes={"params": 0}, split_rngs={"params": True},
                # x is the carry; positions, masks and the cache index are shared by all
                # groups; the KV cache (None in training) is scanned along its first axis.
                in_axes=(nn.broadcast, nn.broadcast, 0, nn.broadcast),
                length=cfg.num_scanned_groups,
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
        x, _ = self._layers(embeddings, positions, masks, None, None)
        return x

    def cached_hidden_states(self, embeddings: jax.Array, start: jax.Array,
                             cache: Cache) -> tuple[jax.Array, Cache]:
        """Runs the layers over new tokens, reading and extending a KV cache.

        Row b's tokens take the cache slots (and RoPE positions) ``start[b]``,
        ``start[b] + 1``, ...; they attend to every slot up to their own (within the
        sliding window on local layers), so slots before ``start[b]`` must hold that
        row's earlier tokens.

        Args:
          embeddings: [batch, length, embed] input embeddings of the new tokens.
          start: [batch] int, the cache slot of each row's first new token.
          cache: from ``init_cache`` or a previous call.
        Returns:
          [batch, length, embed] final hidden states, and the updated cache.
        """
        cfg = self.config
        positions = start[:, None] + jnp.arange(embeddings.shape[1])[None, :]
        cache_length = jax.tree_util.tree_leaves(cache)[0].shape[-3]
        masks = {"global": cache_attention_mask(positions, cache_length, None),
                 "local": cache_attention_mask(positions, cache_length, cfg.sliding_window)}
        return self._layers(embeddings, positions, masks, cache, start)

    def _layers(self, embeddings: jax.Array, positions: jax.Array, masks: dict[str, jax.Array],
                cache: Cache | None, cache_index: jax.Array | None
                ) -> tuple[jax.Array, Cache | None]:
        """The scanned groups, the tail and the final norm, with or without a cache."""
        cfg = self.config
        x = nn.with_logical_constraint(
            embeddings.astype(jnp.dtype(cfg.dtype)),
            ("activation_batch", "activation_length", "activation_embed"))
        new_cache = None if cache is None else {}
        if cfg.num_scanned_groups and not cfg.scan_layers:
            for index, group in enumerate(self.group):
                name = f"group_{index}"
                x, group_cache = group(x, positions, masks,
                                       None if cache is None else cache[name], cache_index)
                if cache is not None:
                    new_cache[name] = group_cache
        elif cfg.num_scanned_groups:
            x, group_cache = self.groups(x, positions, masks,
                                         None if cache is None else cache["groups"], cache_index)
            if cache is not None:
                new_cache["groups"] = group_cache
        if cfg.num_tail_layers:
            x, tail_cache = self.tail(x, positions, masks,
                                      None if cache is None else cache["tail"], cache_index)
            if cache is not None:
                new_cache["tail"] = tail_cache
        return self.final_norm(x), new_cache

    def logits(self, hidden: jax.Array) -> jax.Array:
        """Hidden states [..., embed] -> float32 next-token logits [..., vocab]."""
        return self.embedder.decode(hidden)

    def __call__(self, tokens: jax.Array, input_mask: jax.Array | None = None) -> jax.Array:
        """Token ids [batch, length] -> float32 logits [batch, length, vocab]."""
        if input_mask is None:
            input_mask = jnp.ones(tokens.shape, bool)
        positions = positions_from_mask(input_mask)
        return self.logits(self.hidden_states(self.embed(tokens), positions, input_mask))
