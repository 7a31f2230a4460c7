"""Assembles a SentencePiece BPE model in Gemma's style from a list of pieces."""

from __future__ import annotations

from typing import Sequence

from sentencepiece import sentencepiece_model_pb2 as spm_pb2

from elc.tokenizers.tokenizer import Tokenizer

PieceType = spm_pb2.ModelProto.SentencePiece


def bpe_tokenizer(pieces: Sequence[tuple[str, float, int]], *, unk_id: int, bos_id: int,
                  eos_id: int, pad_id: int, escape_whitespaces: bool = True) -> Tokenizer:
    """A BPE model with byte fallback, an identity normaliser and no dummy prefix.

    Args:
      pieces: (piece, score, SentencePiece type) per id; higher scores merge first.
      unk_id, bos_id, eos_id, pad_id: ids of the special pieces; the unknown piece is
        typed UNKNOWN whatever ``pieces`` says (SentencePiece needs exactly one).
      escape_whitespaces: spaces become '▁' before matching pieces (Gemma's model does this).
    """
    proto = spm_pb2.ModelProto()
    for index, (piece, score, kind) in enumerate(pieces):
        entry = proto.pieces.add()
        entry.piece, entry.score = piece, float(score)
        entry.type = PieceType.UNKNOWN if index == unk_id else int(kind)
    trainer = proto.trainer_spec
    trainer.model_type = spm_pb2.TrainerSpec.BPE
    trainer.vocab_size = len(pieces)
    trainer.byte_fallback = True
    trainer.allow_whitespace_only_pieces = True
    trainer.split_digits = True
    # SentencePiece resolves bos_id() etc. through the piece names, so set both.
    for name, index in (("unk", unk_id), ("bos", bos_id), ("eos", eos_id), ("pad", pad_id)):
        if not 0 <= index < len(pieces):
            raise ValueError(f"{name} id {index} is outside the vocabulary of {len(pieces)}")
        setattr(trainer, f"{name}_id", index)
        setattr(trainer, f"{name}_piece", pieces[index][0])
    normalizer = proto.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = False
    normalizer.remove_extra_whitespaces = False
    normalizer.escape_whitespaces = escape_whitespaces
    return Tokenizer(proto.SerializeToString())
