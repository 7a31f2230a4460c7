"""Gemma 3 checkpoints of Google DeepMind's ``gemma`` library (orbax), as released on Kaggle.

Two layouts exist and both are read:
- the released one: flat keys such as ``transformer/layer_0/attn/q_einsum`` -> ``{'w': ...}``;
- the one ``gemma.gm.ckpts.save_params`` writes: nested, without ``transformer/``, and
  without the ``w`` level under ``mlp``.
Norm scales are zero-centred in both, like elc's.
"""

from __future__ import annotations

import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from elc.model.config import GemmaConfig
from elc.checkpoints.layer_stack import LayerWeights, check_shapes

# The gemma library's names of the per-layer norms.
_NORMS = {
    "attn/_query_norm/scale": "attention/q_norm/scale",
    "attn/_key_norm/scale": "attention/k_norm/scale",
    "pre_attention_norm/scale": "pre_attention_norm/scale",
    "post_attention_norm/scale": "post_attention_norm/scale",
    "pre_ffw_norm/scale": "pre_ffw_norm/scale",
    "post_ffw_norm/scale": "post_ffw_norm/scale",
}


def _restore_numpy(path: str) -> dict[str, np.ndarray]:
    """Restores every array as host numpy, keyed by its '/'-joined path."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"orbax checkpoint directory not found: {path}")
    checkpointer = ocp.PyTreeCheckpointer()
    try:
        tree = checkpointer.metadata(path).item_metadata.tree
    except Exception as error:  # orbax raises assorted errors for non-checkpoints
        raise ValueError(f"{path} is not an orbax checkpoint: {error}") from error
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
    restored = checkpointer.restore(path, restore_args=restore_args)
    flat = {}
    for keys, value in jax.tree_util.tree_flatten_with_path(restored)[0]:
        flat["/".join(str(getattr(k, "key", k)) for k in keys)] = np.asarray(value, np.float32)
    return flat


def _normalise(key: str) -> str:
    """Maps both layouts onto one: no 'transformer/' prefix, no trailing '/w'."""
    key = key.removeprefix("transformer/")
    return key.removesuffix("/w")


def weights_from_orbax(path: str, config: GemmaConfig) -> LayerWeights:
    """Loads a gemma-library Gemma 3 checkpoint into elc's layout (see LayerWeights)."""
    path = os.fspath(path)
    tensors = {_normalise(k): v for k, v in _restore_numpy(path).items()}
    if "embedder/input_embedding" not in tensors:
        raise ValueError(f"{path}: no embedder/input_embedding; not a gemma-library Gemma "
                         f"checkpoint (keys start {sorted(tensors)[:5]})")

    def get(name: str, shape=None) -> np.ndarray:
        if name not in tensors:
            raise ValueError(f"{path}: missing tensor {name!r}")
        value = tensors[name]
        if shape is not None and value.shape != tuple(shape):
            raise ValueError(f"{path}: tensor {name} has shape {value.shape}, but the config "
                             f"expects {tuple(shape)}")
        return value

    d, n, k, h, f = (config.embed_dim, config.num_heads, config.num_kv_heads, config.head_dim,
                     config.mlp_dim)
    layers = []
    for i in range(config.num_layers):
        p = f"layer_{i}/"
        if p + "attn/qkv_einsum" in tensors:  # the library fuses q, k, v when n == k
            q, key, value = get(p + "attn/qkv_einsum", (3, n, d, h))
        else:
            q = get(p + "attn/q_einsum", (n, d, h))
            key, value = get(p + "attn/kv_einsum", (2, k, d, h))
        gate, up = get(p + "mlp/gating_einsum", (2, f, d))
        layers.append({
            "attention/q_proj": q.transpose(1, 0, 2),
            "attention/k_proj": key.transpose(1, 0, 2),
            "attention/v_proj": value.transpose(1, 0, 2),
            "attention/o_proj": get(p + "attn/attn_vec_einsum", (n, h, d)),
            "mlp/gate_proj": gate.T,
            "mlp/up_proj": up.T,
            "mlp/down_proj": get(p + "mlp/linear", (f, d)),
            **{name: get(p + orbax_name) for orbax_name, name in _NORMS.items()},
        })
    extra = sorted(key for key in tensors if key.startswith(f"layer_{config.num_layers}/"))
    if extra:
        raise ValueError(f"{path}: holds more layers than the config's {config.num_layers} "
                         f"(found {extra[0]}); pick the matching backbone.preset")
    weights = LayerWeights(embedding=get("embedder/input_embedding"),
                           final_norm=get("final_norm/scale"), layers=layers)
    check_shapes(config, weights, path)
    return weights
