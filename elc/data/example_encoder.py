"""Turns :class:`Example` s into the fixed-length rows a training batch is made of.

An example's sequence is ``[BOS] + prompt + target + [EOS]``, where the prompt is
``prompt_template`` around the example's prompt with every slot replaced by its k
placeholder ids (``<unusedN>`` pieces: space i in sorted name order, soft token j uses
the (i * k + j)-th). Text between slots is tokenised piece by piece. A row of
``max_length`` T holds one example, or several one after another (sequence packing, up
to ``examples_per_row``), and is padded to T.

Over-length policy: when prompt + target + EOS exceeds T, the target is cut from the
right and the EOS dropped (the model must not learn to stop where the cut fell); the
encoder counts these in ``truncated_count`` and logs a warning for the first few. A
prompt that leaves no room for a single target token is an error, never truncated:
cutting it would drop slots or instructions silently.
"""

from __future__ import annotations

import dataclasses
import string
from typing import Mapping, Sequence

import numpy as np
from absl import logging

from elc.data.examples import Example, SlotValue
from elc.data.prompt_slots import Slot, split_prompt
from elc.data.space_spec import SpaceSpec
from elc.tokenizers.tokenizer import Tokenizer

__all__ = ["ExampleEncoder", "SpaceSpec"]

_LOGGED_TRUNCATIONS = 10


class ExampleEncoder:
    """Encodes examples to the batch contract.

    ``encode_row`` returns, with T = ``max_length``, k = ``num_soft_tokens`` and
    S = ``max_slots * examples_per_row`` slots per space:

    - ``tokens`` int32 [T]: the examples' sequences one after another, padded with
      ``pad_id``;
    - ``input_mask`` bool [T]: True on real tokens;
    - ``segment_ids`` int32 [T]: 1, 2, ... for the row's first, second, ... example, 0 on
      padding (attention stays within a segment);
    - ``positions`` int32 [T]: 0..n-1 over each example's n tokens, 0 on padding;
    - ``targets`` int32 [T]: ``tokens[t + 1]`` within an example; ``pad_id`` at each
      example's last token and on padding;
    - ``loss_mask`` float32 [T]: 1.0 where ``targets`` holds a target token or the EOS;
    - ``slots``: space -> ``vectors`` float32 [S, dim], ``mask`` bool [S],
      ``positions`` int32 [S, k]: the space's slots in row order; unused rows have mask
      False, zero vectors and positions T (out of range, for scatters with
      ``mode='drop'``). Every configured space is present.

    Args:
      tokenizer: the backbone's tokenizer.
      spaces: space name -> :class:`SpaceSpec`.
      num_soft_tokens: soft tokens per slot, k (the same for every space).
      max_length: sequence length T.
      prompt_template: text around the prompt; must contain ``{prompt}`` once (other
        braces doubled, as for ``str.format``).
      examples_per_row: the most examples one row may hold (1: no packing); sets S.
    """

    def __init__(self, tokenizer: Tokenizer, spaces: Mapping[str, SpaceSpec], *,
                 num_soft_tokens: int, max_length: int, prompt_template: str = "{prompt}\n",
                 examples_per_row: int = 1):
        if num_soft_tokens < 1:
            raise ValueError(f"num_soft_tokens must be >= 1, got {num_soft_tokens}")
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2 (BOS and one target token), got "
                             f"{max_length}")
        if examples_per_row < 1:
            raise ValueError(f"examples_per_row must be >= 1, got {examples_per_row}")
        self.examples_per_row = examples_per_row
        self.tokenizer = tokenizer
        self.spaces = dict(sorted(spaces.items()))
        self.num_soft_tokens = num_soft_tokens
        self.max_length = max_length
        self._prefix, self._suffix = _split_template(prompt_template)
        k = num_soft_tokens
        ids = tokenizer.placeholder_ids(len(self.spaces) * k)
        self.placeholder_ids = {name: ids[i * k:(i + 1) * k] for i, name in enumerate(self.spaces)}
        self._reserved = {i: f"<unused{n}>" for n, i in enumerate(ids)}
        self._special_pieces = frozenset(tokenizer.special_ids)
        self.truncated_count = 0

    def encode(self, example: Example, where: str = "example") -> dict:
        """The arrays of a row holding ``example`` alone (see the class docstring);
        ``where`` (e.g. ``"train.jsonl:17"``) prefixes error messages."""
        return self.encode_row([(example, where)])

    def encode_row(self, examples: Sequence[tuple[Example, str]]) -> dict:
        """The arrays of a row holding ``examples`` (each with its ``where``) in order.

        They must fit: together at most ``max_length`` tokens (see :meth:`measure`) and
        at most ``examples_per_row`` of them. No examples make a row of padding.
        """
        if len(examples) > self.examples_per_row:
            raise ValueError(f"a row holds at most examples_per_row={self.examples_per_row} "
                             f"examples, got {len(examples)}")
        pieces = [self._sequence(example, where) for example, where in examples]
        length = sum(len(piece.ids) for piece in pieces)
        if length > self.max_length:
            raise ValueError(f"{', '.join(where for _, where in examples)}: {length} tokens "
                             f"together, more than a row's max_length {self.max_length}")
        pad, size = self.tokenizer.pad_id, self.max_length
        row = {"tokens": np.full(size, pad, np.int32),
               "input_mask": np.arange(size) < length,
               "segment_ids": np.zeros(size, np.int32),
               "positions": np.zeros(size, np.int32),
               "targets": np.full(size, pad, np.int32),
               "loss_mask": np.zeros(size, np.float32)}
        starts, offset = [], 0
        for segment, piece in enumerate(pieces, start=1):
            end = offset + len(piece.ids)
            row["tokens"][offset:end] = piece.ids
            row["segment_ids"][offset:end] = segment
            row["positions"][offset:end] = np.arange(len(piece.ids))
            # Position t predicts token t + 1 of its own example; the last predicts nothing.
            row["targets"][offset:end - 1] = piece.ids[1:]
            # From the last prompt token to the one before last.
            row["loss_mask"][offset + piece.prompt_length - 1:end - 1] = 1.0
            starts.append(offset)
            offset = end
        row["slots"] = {
            space: self._slot_arrays(
                space, [(vector, start + offset) for piece, offset in zip(pieces, starts)
                        for vector, start in piece.slots[space]],
                self.spaces[space].max_slots * self.examples_per_row)
            for space in self.spaces}
        return row

    def measure(self, example: Example, where: str = "example") -> tuple[int, int]:
        """(tokens, target tokens) of ``example`` in a row, the EOS counted as a target;
        what :func:`elc.data.packing.pack_rows` fits rows by."""
        piece = self._sequence(example, where)
        return len(piece.ids), len(piece.ids) - piece.prompt_length

    def _sequence(self, example: Example, where: str) -> "_Sequence":
        """The example's ids, cut to ``max_length`` as the module docstring says."""
        try:
            prompt_ids, slots = self._encode_prompt(example)
            target_ids = self._text_ids(example.target) + [self.tokenizer.eos_id]
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        room = self.max_length - len(prompt_ids)
        if len(target_ids) > room:
            self.truncated_count += 1
            if self.truncated_count <= _LOGGED_TRUNCATIONS:
                logging.warning("%s: target cut from %d to %d tokens and EOS dropped to fit "
                                "max_length %d (only the first %d cuts are logged; "
                                "truncated_count counts all)", where, len(target_ids) - 1, room,
                                self.max_length, _LOGGED_TRUNCATIONS)
            target_ids = target_ids[:room]
        return _Sequence(prompt_ids + target_ids, len(prompt_ids), slots)

    def encode_prompt(self, prompt: str, slots: Mapping[str, SlotValue],
                      where: str = "prompt") -> dict:
        """For generation: ``tokens`` int32 [n], BOS through the end of the templated
        prompt (no target, no padding), and ``slots`` as in :meth:`encode`."""
        try:
            ids, starts = self._encode_prompt(Example(prompt, "", dict(slots)))
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        return {"tokens": np.asarray(ids, np.int32),
                "slots": {space: self._slot_arrays(space, starts[space],
                                                   self.spaces[space].max_slots)
                          for space in self.spaces}}

    def check(self, example: Example, where: str = "example") -> None:
        """Raises ValueError (prefixed with ``where``) if ``example``'s slots cannot be
        read: what :meth:`encode` checks short of tokenising, hence fast."""
        try:
            self._slots(example)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None

    def slot_vectors(self, example: Example) -> list[tuple[str, np.ndarray]]:
        """(space, model input vector) of each slot of ``example``'s prompt, in order."""
        return [(slot.space, vector) for slot, vector in self._slots(example)[1]]

    def _slots(self, example: Example) -> tuple[list[str], list[tuple[Slot, np.ndarray]]]:
        """The prompt's text pieces (``texts[i]`` before slot i, one more than slots) and
        each slot with its model input vector, in prompt order."""
        texts, slots = split_prompt(example.prompt, example.slots, spaces=self.spaces,
                                    special_pieces=self._special_pieces)
        counts: dict[str, int] = {}
        for slot in slots:
            counts[slot.space] = counts.get(slot.space, 0) + 1
        for space, count in counts.items():
            if count > self.spaces[space].max_slots:
                keys = [slot.key for slot in slots if slot.space == space]
                raise ValueError(f"{count} slots of space {space!r} "
                                 f"({', '.join(f'<{key}>' for key in keys)}) but its "
                                 f"max_slots is {self.spaces[space].max_slots}")
        return texts, [(slot, self._slot_vector(slot, example.slots[slot.key])) for slot in slots]

    def _encode_prompt(self, example: Example
                       ) -> tuple[list[int], dict[str, list[tuple[np.ndarray, int]]]]:
        """The prompt's ids, BOS first, and space -> (vector, position of its first
        placeholder) of each slot in prompt order."""
        texts, slots = self._slots(example)
        texts[0] = self._prefix + texts[0]
        texts[-1] += self._suffix  # the same piece as texts[0] when there are no slots
        ids = [self.tokenizer.bos_id] + self._text_ids(texts[0])
        starts: dict[str, list[tuple[np.ndarray, int]]] = {space: [] for space in self.spaces}
        for (slot, vector), text in zip(slots, texts[1:]):
            starts[slot.space].append((vector, len(ids)))
            ids += self.placeholder_ids[slot.space] + self._text_ids(text)
        if len(ids) >= self.max_length:
            raise ValueError(f"the prompt is {len(ids)} tokens (BOS, template and "
                             f"{self.num_soft_tokens} placeholder(s) per slot included), which "
                             f"leaves no room for a target token in max_length {self.max_length}")
        return ids, starts

    def _slot_arrays(self, space: str, slots: list[tuple[np.ndarray, int]],
                     capacity: int) -> dict[str, np.ndarray]:
        """``capacity`` slot rows of ``space`` holding ``slots`` (vector, first position)."""
        k = self.num_soft_tokens
        vectors = np.zeros((capacity, self.spaces[space].dim), np.float32)
        positions = np.full((capacity, k), self.max_length, np.int32)
        for row, (vector, start) in enumerate(slots):
            vectors[row] = vector
            positions[row] = np.arange(start, start + k)
        return {"vectors": vectors, "mask": np.arange(capacity) < len(slots),
                "positions": positions}

    def _slot_vector(self, slot: Slot, value: SlotValue) -> np.ndarray:
        spec = self.spaces[slot.space]
        if isinstance(value, str):
            if spec.table is None:
                raise ValueError(f"slot <{slot.key}> holds entity id {value!r}, but space "
                                 f"{slot.space!r} has no embedding table; give an inline vector "
                                 f"of {spec.dim} numbers instead")
            return spec.model_input(spec.table.lookup(value))
        if len(value) != spec.dim:
            raise ValueError(f"slot <{slot.key}> holds a vector of {len(value)} numbers; space "
                             f"{slot.space!r} has dim {spec.dim}")
        with np.errstate(over="ignore"):  # overflow shows up as inf, reported below
            vector = np.asarray(value, np.float32)
        bad = np.flatnonzero(~np.isfinite(vector))
        if bad.size:
            raise ValueError(f"slot <{slot.key}> holds a vector with non-finite value "
                             f"{value[bad[0]]} at index {bad[0]} (as float32); expected finite "
                             "numbers")
        return spec.model_input(vector)

    def _text_ids(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text, add_bos=False)
        # A literal "<unused0>" in text would pose as a soft-token placeholder.
        reserved = sorted({self._reserved[i] for i in ids if i in self._reserved})
        if reserved:
            raise ValueError(f"text contains {', '.join(reserved)}, reserved as soft-token "
                             f"placeholder(s); text: {text!r:.120}")
        return ids


@dataclasses.dataclass
class _Sequence:
    """One example's ids, how many of them are prompt, and its slots (as in
    ``_encode_prompt``)."""

    ids: list[int]
    prompt_length: int
    slots: dict[str, list[tuple[np.ndarray, int]]]


def _split_template(template: str) -> tuple[str, str]:
    """The text before and after ``{prompt}``."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ValueError(f"prompt_template {template!r}: {error}") from None
    fields = [(name, spec, conversion) for _, name, spec, conversion in parts if name is not None]
    if fields != [("prompt", "", None)]:
        raise ValueError(f"prompt_template {template!r} must contain {{prompt}} exactly once and "
                         "no other fields (write literal braces as {{ and }})")
    index = next(i for i, part in enumerate(parts) if part[1] is not None)
    return ("".join(part[0] for part in parts[:index + 1]),
            "".join(part[0] for part in parts[index + 1:]))
