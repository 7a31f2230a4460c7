"""A byte-level SentencePiece tokenizer for tiny random backbones in tests and demos."""

from __future__ import annotations

from elc.tokenizers.sentencepiece_bpe import PieceType, bpe_tokenizer
from elc.tokenizers.tokenizer import Tokenizer

_SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>")


def byte_level_tokenizer(vocab_size: int = 512) -> Tokenizer:
    """Ids 0-3 pad/eos/bos/unk as in Gemma, then turn markers, the 256 bytes, and
    ``<unusedN>`` control pieces up to ``vocab_size`` (free for soft-token placeholders).
    Every character is spelt as its UTF-8 bytes."""
    minimum = len(_SPECIALS) + 256
    if vocab_size <= minimum:
        raise ValueError(f"a byte-level vocabulary needs more than {minimum} ids, got {vocab_size}")
    pieces = ([(p, 0.0, PieceType.CONTROL) for p in _SPECIALS]
              + [(f"<0x{b:02X}>", 0.0, PieceType.BYTE) for b in range(256)]
              + [(f"<unused{i}>", 0.0, PieceType.CONTROL) for i in range(vocab_size - minimum)])
    return bpe_tokenizer(pieces, pad_id=0, eos_id=1, bos_id=2, unk_id=3, escape_whitespaces=False)
