"""Grouped-query self-attention of Gemma 3: q/k RMSNorm, RoPE, local or global masking.

For generation, attention optionally reads and writes a KV cache (see ``Attention``).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from elc.model.config import AttentionImpl, AttentionType, GemmaConfig
from elc.model.norm import RMSNorm
from elc.model.rope import apply_rope

_MASKED_LOGIT = -2.3819763e38  # large finite negative: fully masked rows stay NaN-free

# One layer's KV cache: {'k', 'v'} of shape [batch, cache_length, kv_heads, head_dim].
LayerCache = dict[str, jax.Array]
# Batch-sharded like the activations it is made of; the length axis has no rule, so it is
# replicated.
CACHE_AXES = ("activation_batch", "cache_length", "activation_kv_heads", "head_dim")


def attention_mask(positions: jax.Array, input_mask: jax.Array, segment_ids: jax.Array | None,
                   window: int | None) -> jax.Array:
    """Which keys each query may attend to, [batch, query, key] bool.

    A key is visible when it comes no later than the query in the sequence, is a real
    token (``input_mask``), belongs to the same packed segment, and, for a sliding
    window, lies fewer than ``window`` positions back (the window counts the query
    itself, as Gemma and Hugging Face define it).
    """
    length = positions.shape[1]
    index = jnp.arange(length)
    visible = (index[None, :, None] >= index[None, None, :]) & input_mask[:, None, :]
    if segment_ids is not None:
        visible &= segment_ids[:, :, None] == segment_ids[:, None, :]
    if window is not None:
        distance = positions[:, :, None] - positions[:, None, :]
        visible &= distance < window
    return visible


def cache_attention_mask(positions: jax.Array, cache_length: int, window: int | None) -> jax.Array:
    """Which cache slots each query may attend to, [batch, query, cache_length] bool.

    In the cache a token's slot index is its position, so a query at position p sees
    slots j <= p, and for a sliding window only those with p - j < ``window``. Slots
    past p may hold junk (padding of a shorter prompt, or nothing yet): never visible.
    """
    distance = positions[:, :, None] - jnp.arange(cache_length)[None, None, :]
    visible = distance >= 0
    if window is not None:
        visible &= distance < window
    return visible


class Attention(nn.Module):
    """Self-attention of one decoder layer.

    Without ``cache`` the queries attend to the keys of ``x`` itself under ``mask``
    [batch, length, length] and the returned cache is None. With a ``cache``, row b's
    new keys and values are written at slots ``cache_index[b]`` onwards and the queries
    attend to the whole updated cache under ``mask`` [batch, length, cache_length]
    (see ``cache_attention_mask``); the updated cache is returned.
    """

    config: GemmaConfig
    attention_type: AttentionType

    @nn.compact
    def __call__(self, x: jax.Array, positions: jax.Array, mask: jax.Array,
                 cache: LayerCache | None = None, cache_index: jax.Array | None = None
                 ) -> tuple[jax.Array, LayerCache | None]:
        cfg = self.config
        dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
        init = nn.initializers.lecun_normal(in_axis=0, out_axis=(1, 2))

        def kernel(name, shape, axes, initializer=init):
            return self.param(name, nn.with_logical_partitioning(initializer, axes), shape,
                              param_dtype).astype(dtype)

        d = cfg.embed_dim
        q_kernel = kernel("q_proj", (d, cfg.num_heads, cfg.head_dim), ("embed", "heads", "head_dim"))
        k_kernel = kernel("k_proj", (d, cfg.num_kv_heads, cfg.head_dim),
                          ("embed", "kv_heads", "head_dim"))
        v_kernel = kernel("v_proj", (d, cfg.num_kv_heads, cfg.head_dim),
                          ("embed", "kv_heads", "head_dim"))
        o_kernel = kernel("o_proj", (cfg.num_heads, cfg.head_dim, d), ("heads", "head_dim", "embed"),
                          nn.initializers.lecun_normal(in_axis=(0, 1), out_axis=2))

        x = x.astype(dtype)
        q, k, v = (_project_to_heads(x, kernel) for kernel in (q_kernel, k_kernel, v_kernel))
        norm = dict(axis_name="head_dim", eps=cfg.rms_norm_eps, dtype=dtype, param_dtype=param_dtype)
        q = RMSNorm(name="q_norm", **norm)(q)
        k = RMSNorm(name="k_norm", **norm)(k)

        if self.attention_type == "global":
            base, scale = cfg.global_rope_base, cfg.global_rope_scale
        else:
            base, scale = cfg.local_rope_base, 1.0
        q = apply_rope(q, positions, base=base, scale=scale)
        k = apply_rope(k, positions, base=base, scale=scale)
        q = nn.with_logical_constraint(
            q, ("activation_batch", "activation_length", "activation_heads", "head_dim"))
        k = nn.with_logical_constraint(
            k, ("activation_batch", "activation_length", "activation_kv_heads", "head_dim"))

        window = cfg.sliding_window if self.attention_type == "local" else None
        impl = cfg.attention_impl
        if cache is not None:
            # Rows hold prompts of different lengths, so each writes at its own slot.
            write = jax.vmap(lambda c, new, i: jax.lax.dynamic_update_slice_in_dim(c, new, i, 0))
            k = nn.with_logical_constraint(write(cache["k"], k.astype(cache["k"].dtype),
                                                 cache_index), CACHE_AXES)
            v = nn.with_logical_constraint(write(cache["v"], v.astype(cache["v"].dtype),
                                                 cache_index), CACHE_AXES)
            cache = {"k": k, "v": v}
            # cuDNN's causal flag assumes query i sits at key i, which a cache breaks.
            impl = "xla"
        encoded = _attend(q, k, v, mask, cfg.query_scale, window, impl)
        encoded = nn.with_logical_constraint(
            encoded, ("activation_batch", "activation_length", "activation_heads", "head_dim"))
        return _project_from_heads(encoded, o_kernel), cache


# The projections contract over one flattened axis. Written as einsums over (heads,
# head_dim), XLA's CPU backend transposed the q and o kernels before their dots, inside
# the decode loop at every step (36 copies of 1024 x 640 per 270M step; BENCHMARKS,
# "One prompt at a time"). Merging adjacent axes costs nothing.
def _project_to_heads(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """[batch, length, embed] x [embed, heads, head_dim] -> [batch, length, heads, head_dim]."""
    embed, heads, head_dim = kernel.shape
    flat = jnp.einsum("btd,df->btf", x, kernel.reshape(embed, heads * head_dim))
    return flat.reshape(*x.shape[:-1], heads, head_dim)


def _project_from_heads(encoded: jax.Array, kernel: jax.Array) -> jax.Array:
    """[batch, length, heads, head_dim] x [heads, head_dim, embed] -> [batch, length, embed]."""
    heads, head_dim, embed = kernel.shape
    flat = encoded.reshape(*encoded.shape[:-2], heads * head_dim)
    return jnp.einsum("btf,fd->btd", flat, kernel.reshape(heads * head_dim, embed))


def _attend(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array, scale: float,
            window: int | None, impl: AttentionImpl) -> jax.Array:
    """softmax(q k^T * scale + mask) v, with kv heads shared by groups of query heads."""
    if impl == "cudnn":
        if q.dtype not in (jnp.bfloat16, jnp.float16):
            raise ValueError("attention_impl='cudnn' needs dtype bfloat16 or float16, "
                             f"got {q.dtype}; use attention_impl='xla' for float32")
        # The explicit mask carries padding and packing; is_causal and the window let
        # the fused kernel skip whole blocks.
        return jax.nn.dot_product_attention(
            q, k, v, mask=mask[:, None], scale=scale, is_causal=True,
            local_window_size=None if window is None else (window - 1, 0),
            implementation="cudnn")
    batch, length, num_heads, head_dim = q.shape
    num_kv_heads = k.shape[2]
    q = q.reshape(batch, length, num_kv_heads, num_heads // num_kv_heads, head_dim)
    logits = jnp.einsum("btkgh,bskh->bkgts", q, k, preferred_element_type=jnp.float32) * scale
    logits = jnp.where(mask[:, None, None], logits, _MASKED_LOGIT)
    probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    encoded = jnp.einsum("bkgts,bskh->btkgh", probs, v)
    return encoded.reshape(batch, length, num_heads, head_dim)
