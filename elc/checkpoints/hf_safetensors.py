"""Hugging Face Gemma 3 checkpoints (safetensors + config.json), both directions.

Reads ``Gemma3ForCausalLM`` directories and the text tower of
``Gemma3ForConditionalGeneration`` ones (4B and larger), single-file or sharded; writes
``Gemma3ForCausalLM`` directories that transformers loads as they are. Hugging Face's
Gemma RMSNorm also multiplies by (1 + weight), so norms map unchanged.
"""

from __future__ import annotations

import json
import os

import ml_dtypes  # noqa: F401  (registers the 'bfloat16' numpy dtype name)
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from elc.model.config import GemmaConfig
from elc.checkpoints.layer_stack import LayerWeights, check_shapes
from elc.text_files import read_json

_INDEX_FILE = "model.safetensors.index.json"
_SINGLE_FILE = "model.safetensors"
# Where the decoder lives inside the different Gemma 3 model classes.
_PREFIXES = ("model.", "model.language_model.", "language_model.model.")

_NORMS = {
    "input_layernorm": "pre_attention_norm/scale",
    "post_attention_layernorm": "post_attention_norm/scale",
    "pre_feedforward_layernorm": "pre_ffw_norm/scale",
    "post_feedforward_layernorm": "post_ffw_norm/scale",
    "self_attn.q_norm": "attention/q_norm/scale",
    "self_attn.k_norm": "attention/k_norm/scale",
}


def config_from_hf(directory: str, **overrides) -> GemmaConfig:
    """Hyperparameters from a Hugging Face ``config.json`` (text config of multimodal ones)."""
    path = os.path.join(directory, "config.json")
    raw = read_json(path)
    text = raw.get("text_config", raw)
    model_type = text.get("model_type", raw.get("model_type"))
    if model_type not in ("gemma3_text", "gemma3"):
        raise ValueError(f"{path}: model_type is {model_type!r}; elc reads Gemma 3 "
                         "('gemma3_text' or 'gemma3')")

    def need(key):
        if key not in text:
            raise ValueError(f"{path}: missing field {key!r}")
        return text[key]

    # transformers 4.x: rope_theta / rope_local_base_freq / rope_scaling;
    # transformers 5: rope_parameters keyed by layer type.
    rope = text.get("rope_parameters") or {}
    global_rope = rope.get("full_attention") or {}
    local_rope = rope.get("sliding_attention") or {}
    rope_scaling = text.get("rope_scaling") or global_rope
    layer_types = text.get("layer_types")
    pattern = None
    if layer_types:
        # The repeating unit: up to and including the first full-attention layer.
        first_global = layer_types.index("full_attention") + 1 if "full_attention" in layer_types \
            else len(layer_types)
        pattern = tuple("global" if t == "full_attention" else "local"
                        for t in layer_types[:first_global])
    fields = dict(
        num_layers=need("num_hidden_layers"), embed_dim=need("hidden_size"),
        num_heads=need("num_attention_heads"), num_kv_heads=need("num_key_value_heads"),
        head_dim=need("head_dim"), mlp_dim=need("intermediate_size"),
        vocab_size=need("vocab_size"), sliding_window=need("sliding_window"),
        query_pre_attn_scalar=text.get("query_pre_attn_scalar"),
        local_rope_base=float(local_rope.get("rope_theta",
                                             text.get("rope_local_base_freq", 10_000.0))),
        global_rope_base=float(global_rope.get("rope_theta", text.get("rope_theta", 1_000_000.0))),
        global_rope_scale=float(rope_scaling.get("factor", 1.0)),
        rms_norm_eps=float(text.get("rms_norm_eps", 1e-6)),
    )
    if pattern:
        fields["attention_pattern"] = pattern
    if "max_position_embeddings" in text:
        fields["context_length"] = text["max_position_embeddings"]
    fields.update(overrides)
    return GemmaConfig(**fields)


def _tensor_files(directory: str) -> list[str]:
    index = os.path.join(directory, _INDEX_FILE)
    if os.path.isfile(index):
        shards = sorted(set(read_json(index)["weight_map"].values()))
        return [os.path.join(directory, s) for s in shards]
    single = os.path.join(directory, _SINGLE_FILE)
    if os.path.isfile(single):
        return [single]
    raise FileNotFoundError(f"{directory} holds neither {_SINGLE_FILE} nor {_INDEX_FILE}")


def weights_from_hf(directory: str, config: GemmaConfig) -> LayerWeights:
    """Loads every decoder tensor of a Hugging Face Gemma 3 directory into elc's layout."""
    tensors: dict[str, np.ndarray] = {}
    for path in _tensor_files(directory):
        with safe_open(path, framework="numpy") as f:
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
    prefix = next((p for p in _PREFIXES if p + "embed_tokens.weight" in tensors), None)
    if prefix is None:
        raise ValueError(f"{directory}: no embed_tokens.weight under any of {list(_PREFIXES)}; "
                         "not a Gemma 3 checkpoint")

    def get(name: str) -> np.ndarray:
        key = prefix + name
        if key not in tensors:
            raise ValueError(f"{directory}: missing tensor {key!r}")
        return np.asarray(tensors[key], np.float32)

    d, h, k, hd = config.embed_dim, config.num_heads, config.num_kv_heads, config.head_dim

    def checked(name: str, shape) -> np.ndarray:
        w = get(name)
        if w.shape != tuple(shape):
            raise ValueError(f"{directory}: tensor {prefix + name} has shape {w.shape}, but the "
                             f"config expects {tuple(shape)}")
        return w

    layers = []
    for i in range(config.num_layers):
        p = f"layers.{i}."
        layer = {
            "attention/q_proj": checked(p + "self_attn.q_proj.weight", (h * hd, d)).T.reshape(d, h, hd),
            "attention/k_proj": checked(p + "self_attn.k_proj.weight", (k * hd, d)).T.reshape(d, k, hd),
            "attention/v_proj": checked(p + "self_attn.v_proj.weight", (k * hd, d)).T.reshape(d, k, hd),
            "attention/o_proj": checked(p + "self_attn.o_proj.weight", (d, h * hd)).T.reshape(h, hd, d),
            "mlp/gate_proj": checked(p + "mlp.gate_proj.weight", (config.mlp_dim, d)).T,
            "mlp/up_proj": checked(p + "mlp.up_proj.weight", (config.mlp_dim, d)).T,
            "mlp/down_proj": checked(p + "mlp.down_proj.weight", (d, config.mlp_dim)).T,
        }
        for hf_name, elc_name in _NORMS.items():
            layer[elc_name] = get(p + hf_name + ".weight")
        layers.append(layer)
    weights = LayerWeights(embedding=get("embed_tokens.weight"), final_norm=get("norm.weight"),
                           layers=layers)
    check_shapes(config, weights, directory)
    return weights


def hf_config_dict(config: GemmaConfig) -> dict:
    """A transformers ``Gemma3TextConfig`` dict describing ``config``."""
    types = ["full_attention" if t == "global" else "sliding_attention" for t in config.layer_types]
    scaling = None
    if config.global_rope_scale != 1.0:
        scaling = {"rope_type": "linear", "factor": config.global_rope_scale}
    return {
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
        "vocab_size": config.vocab_size, "hidden_size": config.embed_dim,
        "intermediate_size": config.mlp_dim, "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads, "num_key_value_heads": config.num_kv_heads,
        "head_dim": config.head_dim, "hidden_activation": "gelu_pytorch_tanh",
        "max_position_embeddings": config.context_length, "rms_norm_eps": config.rms_norm_eps,
        "rope_theta": config.global_rope_base, "rope_local_base_freq": config.local_rope_base,
        "rope_scaling": scaling, "sliding_window": config.sliding_window,
        "layer_types": types, "query_pre_attn_scalar": config.query_pre_attn_scalar or config.head_dim,
        "attn_logit_softcapping": None, "final_logit_softcapping": None,
        "attention_bias": False, "attention_dropout": 0.0, "tie_word_embeddings": True,
        "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2, "torch_dtype": "float32",
    }


def save_hf(directory: str, config: GemmaConfig, weights: LayerWeights,
            dtype: str = "float32") -> None:
    """Writes ``config.json`` and ``model.safetensors`` in Gemma3ForCausalLM's layout."""
    check_shapes(config, weights, "weights to export")
    np_dtype = np.dtype(dtype)
    d = config.embed_dim
    out = {"model.embed_tokens.weight": weights.embedding, "model.norm.weight": weights.final_norm}
    for i, layer in enumerate(weights.layers):
        p = f"model.layers.{i}."
        out[p + "self_attn.q_proj.weight"] = layer["attention/q_proj"].reshape(d, -1).T
        out[p + "self_attn.k_proj.weight"] = layer["attention/k_proj"].reshape(d, -1).T
        out[p + "self_attn.v_proj.weight"] = layer["attention/v_proj"].reshape(d, -1).T
        out[p + "self_attn.o_proj.weight"] = layer["attention/o_proj"].reshape(-1, d).T
        out[p + "mlp.gate_proj.weight"] = layer["mlp/gate_proj"].T
        out[p + "mlp.up_proj.weight"] = layer["mlp/up_proj"].T
        out[p + "mlp.down_proj.weight"] = layer["mlp/down_proj"].T
        for hf_name, elc_name in _NORMS.items():
            out[p + hf_name + ".weight"] = layer[elc_name]
    os.makedirs(directory, exist_ok=True)
    save_file({k: np.ascontiguousarray(v).astype(np_dtype) for k, v in out.items()},
              os.path.join(directory, _SINGLE_FILE), metadata={"format": "pt"})
    hf_config = hf_config_dict(config)
    hf_config["torch_dtype"] = dtype
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(hf_config, f, indent=2)
