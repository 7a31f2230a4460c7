"""The Gemma tokenizer: a SentencePiece model plus whole-string special tokens."""

from __future__ import annotations

import os
import re
from typing import Sequence

import sentencepiece as spm

# Control pieces that stand for themselves when they appear in text (chat turns,
# reserved <unusedN> ids used as soft-token placeholders, ...). SentencePiece never
# produces control pieces from text, so they are split out before encoding.
_SPECIAL_PATTERN = re.compile(r"^(<[^<>\s]+>|\[[^\[\]\s]+\])$")


class Tokenizer:
    """Encodes text to Gemma token ids and back.

    Args:
      model_proto: a serialized SentencePiece ``ModelProto``.
    """

    def __init__(self, model_proto: bytes):
        self._sp = spm.SentencePieceProcessor()
        self._sp.LoadFromSerializedProto(model_proto)
        self._model_proto = model_proto
        self.special_ids = {
            self._sp.IdToPiece(i): i for i in range(self._sp.GetPieceSize())
            if self._sp.IsControl(i) and _SPECIAL_PATTERN.match(self._sp.IdToPiece(i))}
        names = sorted(self.special_ids, key=len, reverse=True)
        self._special_split = re.compile("(" + "|".join(map(re.escape, names)) + ")") if names else None

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Tokenizer":
        """Loads a SentencePiece ``tokenizer.model`` file."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"tokenizer model not found: {path}")
        with open(path, "rb") as f:
            return cls(f.read())

    def save(self, path: str | os.PathLike) -> None:
        """Writes the SentencePiece model, loadable by any SentencePiece runtime."""
        with open(path, "wb") as f:
            f.write(self._model_proto)

    @property
    def vocab_size(self) -> int:
        return self._sp.GetPieceSize()

    @property
    def bos_id(self) -> int:
        return self._sp.bos_id()

    @property
    def eos_id(self) -> int:
        return self._sp.eos_id()

    @property
    def pad_id(self) -> int:
        return self._sp.pad_id()

    def piece_to_id(self, piece: str) -> int:
        """The id of a piece such as ``<end_of_turn>``; KeyError when absent."""
        index = self._sp.PieceToId(piece)
        if self._sp.IdToPiece(index) != piece:
            raise KeyError(f"piece {piece!r} is not in the vocabulary")
        return index

    def placeholder_ids(self, count: int) -> list[int]:
        """Ids of ``<unused0>`` .. ``<unused{count-1}>``: reserved pieces that never occur
        in text, used to mark where soft tokens go."""
        ids = []
        for i in range(count):
            try:
                ids.append(self.piece_to_id(f"<unused{i}>"))
            except KeyError:
                raise ValueError(f"the tokenizer has only {i} <unusedN> pieces; {count} "
                                 "soft-token placeholders were asked for") from None
        return ids

    def encode(self, text: str, *, add_bos: bool = True, parse_special: bool = True) -> list[int]:
        """Text -> ids. With ``parse_special``, control strings like ``<start_of_turn>`` map
        to their single ids instead of being spelt out."""
        ids = [self.bos_id] if add_bos else []
        if not parse_special or self._special_split is None:
            return ids + self._sp.EncodeAsIds(text)
        for chunk in self._special_split.split(text):
            if chunk in self.special_ids:
                ids.append(self.special_ids[chunk])
            elif chunk:
                ids.extend(self._sp.EncodeAsIds(chunk))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> text; control tokens (bos, eos, pad, turn markers) are dropped."""
        return self._sp.DecodeIds([int(i) for i in ids])
