"""Converts between per-layer weights and the decoder's scanned parameter tree.

Checkpoint formats number layers 0..L-1. The decoder stacks member ``layer_i`` of every
scanned pattern group along a leading axis and keeps the leftover layers under ``tail``.
Importers and exporters work on :class:`LayerWeights` and let this module do the
(de)stacking, so no format needs to know about the scan.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from elc.model.config import GemmaConfig

# Per-layer parameter paths inside a DecoderLayer, '/'-joined.
LAYER_PARAM_PATHS = (
    "attention/q_proj", "attention/k_proj", "attention/v_proj", "attention/o_proj",
    "attention/q_norm/scale", "attention/k_norm/scale",
    "pre_attention_norm/scale", "post_attention_norm/scale",
    "pre_ffw_norm/scale", "post_ffw_norm/scale",
    "mlp/gate_proj", "mlp/up_proj", "mlp/down_proj",
)


@dataclasses.dataclass
class LayerWeights:
    """Decoder weights in elc's orientation, one dict per layer.

    Orientation: q_proj [embed, heads, head_dim], k/v_proj [embed, kv_heads, head_dim],
    o_proj [heads, head_dim, embed], gate/up_proj [embed, mlp], down_proj [mlp, embed],
    embedding [vocab, embed]. Norm scales are zero-centred (the model multiplies by 1+scale).
    """

    embedding: np.ndarray
    final_norm: np.ndarray
    layers: list[dict[str, np.ndarray]]


def expected_layer_shapes(config: GemmaConfig) -> dict[str, tuple[int, ...]]:
    """The shape of each per-layer parameter under ``config``."""
    d, h, k, hd, m = (config.embed_dim, config.num_heads, config.num_kv_heads, config.head_dim,
                      config.mlp_dim)
    return {
        "attention/q_proj": (d, h, hd), "attention/k_proj": (d, k, hd),
        "attention/v_proj": (d, k, hd), "attention/o_proj": (h, hd, d),
        "attention/q_norm/scale": (hd,), "attention/k_norm/scale": (hd,),
        "pre_attention_norm/scale": (d,), "post_attention_norm/scale": (d,),
        "pre_ffw_norm/scale": (d,), "post_ffw_norm/scale": (d,),
        "mlp/gate_proj": (d, m), "mlp/up_proj": (d, m), "mlp/down_proj": (m, d),
    }


def check_shapes(config: GemmaConfig, weights: LayerWeights, source: str) -> None:
    """Raises ValueError naming ``source`` and the tensor whose shape disagrees with ``config``."""
    def fail(name, got, want):
        raise ValueError(f"{source}: tensor {name} has shape {tuple(got)}, but the config "
                         f"expects {tuple(want)}")

    if weights.embedding.shape != (config.vocab_size, config.embed_dim):
        fail("embedding", weights.embedding.shape, (config.vocab_size, config.embed_dim))
    if weights.final_norm.shape != (config.embed_dim,):
        fail("final_norm", weights.final_norm.shape, (config.embed_dim,))
    if len(weights.layers) != config.num_layers:
        raise ValueError(f"{source}: found {len(weights.layers)} layers, but the config "
                         f"expects {config.num_layers}")
    expected = expected_layer_shapes(config)
    for index, layer in enumerate(weights.layers):
        missing = sorted(set(expected) - set(layer))
        if missing:
            raise ValueError(f"{source}: layer {index} lacks tensors {missing}")
        for path, shape in expected.items():
            if layer[path].shape != shape:
                fail(f"layer {index} {path}", layer[path].shape, shape)


def _set(tree: dict, path: str, value) -> None:
    *parents, leaf = path.split("/")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def _get(tree: dict, path: str):
    for key in path.split("/"):
        tree = tree[key]
    return tree


def stack_layers(config: GemmaConfig, weights: LayerWeights, dtype: str | None = None) -> dict:
    """LayerWeights -> the Flax ``params`` tree of :class:`elc.model.gemma.Gemma3`.

    Arrays are numpy, cast to ``dtype`` (default: ``config.param_dtype``).
    """
    check_shapes(config, weights, "weights")
    dtype = jax.numpy.dtype(dtype or config.param_dtype)
    cast = lambda a: np.asarray(a).astype(dtype)
    params: dict = {"embedder": {"embedding": cast(weights.embedding)},
                    "final_norm": {"scale": cast(weights.final_norm)}}
    period, groups = len(config.attention_pattern), config.num_scanned_groups
    if groups:
        for member in range(period):
            for path in LAYER_PARAM_PATHS:
                stacked = np.stack([weights.layers[g * period + member][path]
                                    for g in range(groups)])
                _set(params, f"groups/layer_{member}/{path}", cast(stacked))
    for member in range(config.num_tail_layers):
        for path in LAYER_PARAM_PATHS:
            _set(params, f"tail/layer_{member}/{path}",
                 cast(weights.layers[groups * period + member][path]))
    return params


def unstack_layers(config: GemmaConfig, params: dict) -> LayerWeights:
    """The Flax ``params`` tree -> LayerWeights (float32 numpy)."""
    as_np = lambda a: np.asarray(jax.device_get(a), dtype=np.float32)
    period, groups = len(config.attention_pattern), config.num_scanned_groups
    layers = []
    for index in range(config.num_layers):
        group, member = divmod(index, period)
        if group < groups:
            layer = {p: as_np(_get(params, f"groups/layer_{member}/{p}")[group])
                     for p in LAYER_PARAM_PATHS}
        else:
            layer = {p: as_np(_get(params, f"tail/layer_{member}/{p}")) for p in LAYER_PARAM_PATHS}
        layers.append(layer)
    return LayerWeights(embedding=as_np(params["embedder"]["embedding"]),
                        final_norm=as_np(params["final_norm"]["scale"]), layers=layers)
