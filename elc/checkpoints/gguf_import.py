"""Reads Gemma 3 weights and hyperparameters from a llama.cpp GGUF file.

Conventions of llama.cpp's Gemma 3 conversion, undone here:
- every ``*norm.weight`` holds (1 + scale): elc's RMSNorm takes the zero-centred scale;
- matrices are stored [out, in] (numpy order); elc keeps [in, out] with heads split out;
- only the global RoPE base is recorded; the local base is Gemma's fixed 10k;
- quantised tensors are dequantised to float32 with the ``gguf`` package.
"""

from __future__ import annotations

import os

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader
from gguf.quants import dequantize

from elc.tokenizers.from_gguf import tokenizer_from_gguf
from elc.model.config import PRESETS, GemmaConfig
from elc.checkpoints.layer_stack import LayerWeights, check_shapes
from elc.tokenizers.tokenizer import Tokenizer

GGUF_MAGIC = b"GGUF"
# llama.cpp's names of the per-layer norms (all stored as 1 + scale).
_NORMS = {
    "attn_q_norm.weight": "attention/q_norm/scale",
    "attn_k_norm.weight": "attention/k_norm/scale",
    "attn_norm.weight": "pre_attention_norm/scale",
    "post_attention_norm.weight": "post_attention_norm/scale",
    "ffn_norm.weight": "pre_ffw_norm/scale",
    "post_ffw_norm.weight": "post_ffw_norm/scale",
}


def open_gguf(path: str | os.PathLike) -> GGUFReader:
    """Opens a GGUF file, with clear errors for a missing file or another format."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"GGUF file not found: {path}")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise ValueError(f"{path} is not a GGUF file (starts with {magic!r}, expected {GGUF_MAGIC!r})")
    try:
        return GGUFReader(path, "r")
    except Exception as error:  # the gguf package raises bare ValueError/struct errors
        raise ValueError(f"{path}: could not parse GGUF: {error}") from error


def _metadata(reader: GGUFReader, key: str, source: str, default=None):
    if key not in reader.fields:
        if default is not None:
            return default
        raise ValueError(f"{source}: GGUF metadata lacks {key!r}")
    return reader.fields[key].contents()


def config_from_gguf(reader: GGUFReader, source: str = "GGUF", **overrides) -> GemmaConfig:
    """The decoder hyperparameters recorded in a Gemma 3 GGUF file.

    ``overrides`` set the fields a checkpoint does not determine (dtype, param_dtype,
    attention_impl, remat_policy).
    """
    arch = _metadata(reader, "general.architecture", source)
    if arch != "gemma3":
        raise ValueError(f"{source}: general.architecture is {arch!r}; elc reads 'gemma3' only")
    meta = lambda key, default=None: _metadata(reader, f"gemma3.{key}", source, default)
    embedding = _tensor(reader, "token_embd.weight", source)
    fields = dict(
        num_layers=int(meta("block_count")),
        embed_dim=int(meta("embedding_length")),
        num_heads=int(meta("attention.head_count")),
        num_kv_heads=int(meta("attention.head_count_kv")),
        head_dim=int(meta("attention.key_length")),
        mlp_dim=int(meta("feed_forward_length")),
        vocab_size=int(embedding.shape[-1]),
        sliding_window=int(meta("attention.sliding_window")),
        context_length=int(meta("context_length", GemmaConfig.context_length)),
        global_rope_base=float(meta("rope.freq_base")),
        global_rope_scale=float(meta("rope.scaling.factor", 1.0)),
        # Stored as float32: 1e-6 reads back as 9.99999997e-07.
        rms_norm_eps=float(f'{meta("attention.layer_norm_rms_epsilon"):.6g}'),
    )
    # GGUF omits the query scale; the published sizes fix it (27B uses d_model / heads).
    for preset in PRESETS.values():
        if (preset.num_layers, preset.embed_dim, preset.num_heads) == (
                fields["num_layers"], fields["embed_dim"], fields["num_heads"]):
            fields["query_pre_attn_scalar"] = preset.query_pre_attn_scalar
    fields.update(overrides)
    return GemmaConfig(**fields)


def _tensor(reader: GGUFReader, name: str, source: str):
    for tensor in reader.tensors:
        if tensor.name == name:
            return tensor
    raise ValueError(f"{source}: GGUF has no tensor {name!r}")


def _dequantize(tensor, source: str) -> np.ndarray:
    kind = GGMLQuantizationType(tensor.tensor_type)
    try:
        values = dequantize(tensor.data, kind)
    except NotImplementedError as error:
        raise ValueError(f"{source}: tensor {tensor.name} has type {kind.name}, which the gguf "
                         f"package cannot dequantise") from error
    # GGUF lists dims innermost first; numpy wants them outermost first.
    return np.asarray(values, np.float32).reshape(tuple(int(d) for d in reversed(tensor.shape)))


def weights_from_gguf(reader: GGUFReader, config: GemmaConfig, source: str = "GGUF") -> LayerWeights:
    """Dequantises every tensor and maps it into elc's layout (see LayerWeights)."""
    tensors = {t.name: t for t in reader.tensors}

    def get(name: str) -> np.ndarray:
        if name not in tensors:
            raise ValueError(f"{source}: GGUF has no tensor {name!r}")
        return _dequantize(tensors[name], source)

    def norm(name: str) -> np.ndarray:
        return get(name) - 1.0

    d, h, k, hd = config.embed_dim, config.num_heads, config.num_kv_heads, config.head_dim

    def heads_in(name: str, n: int) -> np.ndarray:  # [n*hd, d] -> [d, n, hd]
        w = get(name)
        _check(w, (n * hd, d), name)
        return w.T.reshape(d, n, hd)

    def plain_in(name: str, shape) -> np.ndarray:  # [out, in] -> [in, out]
        w = get(name)
        _check(w, shape[::-1], name)
        return w.T

    def _check(w, shape, name):
        if w.shape != tuple(shape):
            raise ValueError(f"{source}: tensor {name} has shape {w.shape}, but the config "
                             f"expects {tuple(shape)}")

    layers = []
    for i in range(config.num_layers):
        p = f"blk.{i}."
        o = get(p + "attn_output.weight")
        _check(o, (d, h * hd), p + "attn_output.weight")
        layers.append({
            "attention/q_proj": heads_in(p + "attn_q.weight", h),
            "attention/k_proj": heads_in(p + "attn_k.weight", k),
            "attention/v_proj": heads_in(p + "attn_v.weight", k),
            "attention/o_proj": o.T.reshape(h, hd, d),
            "mlp/gate_proj": plain_in(p + "ffn_gate.weight", (d, config.mlp_dim)),
            "mlp/up_proj": plain_in(p + "ffn_up.weight", (d, config.mlp_dim)),
            "mlp/down_proj": plain_in(p + "ffn_down.weight", (config.mlp_dim, d)),
            **{name: norm(p + gguf_name) for gguf_name, name in _NORMS.items()},
        })
    weights = LayerWeights(embedding=get("token_embd.weight"),
                           final_norm=norm("output_norm.weight"), layers=layers)
    check_shapes(config, weights, source)
    return weights


def load_gguf(path: str | os.PathLike, **runtime) -> tuple[GemmaConfig, LayerWeights, Tokenizer]:
    """Config, dequantised weights and tokenizer of a Gemma 3 GGUF file.

    ``runtime`` sets GemmaConfig fields the file does not determine (e.g. dtype).
    """
    source = os.fspath(path)
    reader = open_gguf(source)
    config = config_from_gguf(reader, source, **runtime)
    return config, weights_from_gguf(reader, config, source), tokenizer_from_gguf(reader, source)
