"""A byte-level SentencePiece tokenizer for tiny random backbones in tests and demos."""

from __future__ import annotations

from sentencepiece import sentencepiece_model_pb2 as spm_pb2

from elc.tokenizer import Tokenizer

_SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>")


def byte_level_tokenizer(vocab_size: int = 512) -> Tokenizer:
    """Ids 0-3 pad/eos/bos/unk as in Gemma, then turn markers, the 256 bytes, and
    ``<unusedN>`` control pieces up to ``vocab_size`` (free for soft-token placeholders).
    Every character is spelt as its UTF-8 bytes."""
    minimum = len(_SPECIALS) + 256
    if vocab_size <= minimum:
        raise ValueError(f"a byte-level vocabulary needs more than {minimum} ids, got {vocab_size}")
    proto = spm_pb2.ModelProto()
    piece_type = spm_pb2.ModelProto.SentencePiece
    pieces = ([(p, piece_type.CONTROL) for p in _SPECIALS]
              + [(f"<0x{b:02X}>", piece_type.BYTE) for b in range(256)]
              + [(f"<unused{i}>", piece_type.CONTROL) for i in range(vocab_size - minimum)])
    for piece, kind in pieces:
        entry = proto.pieces.add()
        entry.piece, entry.type, entry.score = piece, kind, 0.0
    proto.pieces[3].type = piece_type.UNKNOWN
    trainer = proto.trainer_spec
    trainer.model_type = spm_pb2.TrainerSpec.BPE
    trainer.vocab_size = vocab_size
    trainer.byte_fallback = True
    for index, name in enumerate(("pad", "eos", "bos", "unk")):
        setattr(trainer, f"{name}_id", index)
        setattr(trainer, f"{name}_piece", _SPECIALS[index])
    normalizer = proto.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = False
    normalizer.remove_extra_whitespaces = False
    normalizer.escape_whitespaces = False
    return Tokenizer(proto.SerializeToString())
