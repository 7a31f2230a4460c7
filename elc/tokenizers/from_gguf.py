"""Rebuilds the exact SentencePiece model of a Gemma GGUF file from its metadata."""

from __future__ import annotations

import numpy as np
from gguf import GGUFReader
from elc.tokenizers.sentencepiece_bpe import bpe_tokenizer
from elc.tokenizers.tokenizer import Tokenizer

# GGUF token types share SentencePiece's numbering: 1 normal, 2 unknown, 3 control,
# 4 user-defined, 5 unused, 6 byte.
_VALID_TYPES = {1, 2, 3, 4, 5, 6}


def _field(reader: GGUFReader, key: str, source: str):
    if key not in reader.fields:
        raise ValueError(f"{source}: GGUF metadata lacks {key!r}, needed to rebuild the tokenizer")
    return reader.fields[key]


def _scalar(reader: GGUFReader, key: str, source: str) -> int:
    return int(_field(reader, key, source).contents())


def tokenizer_from_gguf(reader: GGUFReader, source: str = "GGUF") -> Tokenizer:
    """Builds the tokenizer recorded in a Gemma GGUF file (``tokenizer.ggml.*`` fields).

    Gemma's SentencePiece model is BPE with byte fallback, an identity normaliser and
    no dummy prefix; the pieces, scores and types come from the metadata.
    """
    model = _field(reader, "tokenizer.ggml.model", source).contents()
    if model != "llama":
        raise ValueError(f"{source}: tokenizer.ggml.model is {model!r}; expected 'llama' "
                         "(a SentencePiece model)")
    tokens = _field(reader, "tokenizer.ggml.tokens", source).contents()
    scores = np.asarray(_field(reader, "tokenizer.ggml.scores", source).contents(), np.float32)
    types = np.asarray(_field(reader, "tokenizer.ggml.token_type", source).contents(), np.int64)
    if not len(tokens) == len(scores) == len(types):
        raise ValueError(f"{source}: tokenizer arrays disagree in length: {len(tokens)} tokens, "
                         f"{len(scores)} scores, {len(types)} types")
    bad = sorted(set(types.tolist()) - _VALID_TYPES)
    if bad:
        raise ValueError(f"{source}: unknown tokenizer.ggml.token_type values {bad}")
    unk_id = _scalar(reader, "tokenizer.ggml.unknown_token_id", source)

    ids = {}
    for name, key in (("bos_id", "bos"), ("eos_id", "eos"), ("pad_id", "padding")):
        ids[name] = _scalar(reader, f"tokenizer.ggml.{key}_token_id", source)
    # llama.cpp's converter writes user-defined pieces with '▁' turned into spaces (so
    # that its own tokenizer matches them in raw text); undo that.
    pieces = [(piece.replace(" ", "\u2581") if kind == 4 else piece, score, kind)
              for piece, score, kind in zip(tokens, scores.tolist(), types.tolist())]
    try:
        return bpe_tokenizer(pieces, unk_id=unk_id, **ids)
    except ValueError as error:
        raise ValueError(f"{source}: tokenizer.ggml special token: {error}") from None
