"""Turns an :class:`Example` into the fixed-length arrays a training batch is made of.

The sequence is ``[BOS] + prompt + target + [EOS]`` padded to ``max_length`` T, where the
prompt is ``prompt_template`` around the example's prompt with every slot replaced by
its k placeholder ids (``<unusedN>`` pieces: space i in sorted name order, soft token j
uses the (i * k + j)-th). Text between slots is tokenised piece by piece.

Over-length policy: when prompt + target + EOS exceeds T, the target is cut from the
right and the EOS dropped (the model must not learn to stop where the cut fell); the
encoder counts these in ``truncated_count`` and logs a warning for the first few. A
prompt that leaves no room for a single target token is an error, never truncated:
cutting it would drop slots or instructions silently.
"""

from __future__ import annotations

import string
from typing import Mapping

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

    ``encode`` returns, with T = ``max_length`` and k = ``num_soft_tokens``:

    - ``tokens`` int32 [T]: the sequence, padded with ``pad_id``;
    - ``input_mask`` bool [T]: True on real tokens;
    - ``positions`` int32 [T]: 0..n-1 over the n real tokens, 0 on padding;
    - ``targets`` int32 [T]: ``tokens[t + 1]``; ``pad_id`` at the last real token and on
      padding;
    - ``loss_mask`` float32 [T]: 1.0 where ``targets`` holds a target token or the EOS;
    - ``slots``: space -> ``vectors`` float32 [max_slots, dim], ``mask`` bool [max_slots],
      ``positions`` int32 [max_slots, k]: the space's slots in prompt order; unused rows
      have mask False, zero vectors and positions T (out of range, for scatters with
      ``mode='drop'``). Every configured space is present.

    Args:
      tokenizer: the backbone's tokenizer.
      spaces: space name -> :class:`SpaceSpec`.
      num_soft_tokens: soft tokens per slot, k (the same for every space).
      max_length: sequence length T.
      prompt_template: text around the prompt; must contain ``{prompt}`` once (other
        braces doubled, as for ``str.format``).
    """

    def __init__(self, tokenizer: Tokenizer, spaces: Mapping[str, SpaceSpec], *,
                 num_soft_tokens: int, max_length: int, prompt_template: str = "{prompt}\n"):
        if num_soft_tokens < 1:
            raise ValueError(f"num_soft_tokens must be >= 1, got {num_soft_tokens}")
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2 (BOS and one target token), got "
                             f"{max_length}")
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
        """The arrays of one training example (see the class docstring); ``where`` (e.g.
        ``"train.jsonl:17"``) prefixes error messages."""
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
        ids = prompt_ids + target_ids
        length, pad = len(ids), self.tokenizer.pad_id
        tokens = np.full(self.max_length, pad, np.int32)
        tokens[:length] = ids
        positions = np.zeros(self.max_length, np.int32)
        positions[:length] = np.arange(length)
        loss_mask = np.zeros(self.max_length, np.float32)
        # Position t predicts tokens[t + 1]: from the last prompt token to the one before last.
        loss_mask[len(prompt_ids) - 1:length - 1] = 1.0
        return {
            "tokens": tokens,
            "input_mask": np.arange(self.max_length) < length,
            "positions": positions,
            "targets": np.append(tokens[1:], np.int32(pad)),
            "loss_mask": loss_mask,
            "slots": slots,
        }

    def encode_prompt(self, prompt: str, slots: Mapping[str, SlotValue],
                      where: str = "prompt") -> dict:
        """For generation: ``tokens`` int32 [n], BOS through the end of the templated
        prompt (no target, no padding), and ``slots`` as in :meth:`encode`."""
        try:
            ids, slot_arrays = self._encode_prompt(Example(prompt, "", dict(slots)))
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        return {"tokens": np.asarray(ids, np.int32), "slots": slot_arrays}

    def _encode_prompt(self, example: Example) -> tuple[list[int], dict]:
        texts, slots = split_prompt(example.prompt, example.slots, spaces=self.spaces,
                                    special_pieces=self._special_pieces)
        texts[0] = self._prefix + texts[0]
        texts[-1] += self._suffix  # the same piece as texts[0] when there are no slots
        ids = [self.tokenizer.bos_id] + self._text_ids(texts[0])
        starts: dict[str, list[tuple[Slot, int]]] = {space: [] for space in self.spaces}
        for slot, text in zip(slots, texts[1:]):
            starts[slot.space].append((slot, len(ids)))
            ids += self.placeholder_ids[slot.space] + self._text_ids(text)
        if len(ids) >= self.max_length:
            raise ValueError(f"the prompt is {len(ids)} tokens (BOS, template and "
                             f"{self.num_soft_tokens} placeholder(s) per slot included), which "
                             f"leaves no room for a target token in max_length {self.max_length}")
        return ids, {space: self._slot_arrays(space, starts[space], example.slots)
                     for space in self.spaces}

    def _slot_arrays(self, space: str, starts: list[tuple[Slot, int]],
                     values: Mapping[str, SlotValue]) -> dict[str, np.ndarray]:
        spec, k = self.spaces[space], self.num_soft_tokens
        if len(starts) > spec.max_slots:
            raise ValueError(f"{len(starts)} slots of space {space!r} "
                             f"({', '.join(f'<{slot.key}>' for slot, _ in starts)}) but its "
                             f"max_slots is {spec.max_slots}")
        vectors = np.zeros((spec.max_slots, spec.dim), np.float32)
        positions = np.full((spec.max_slots, k), self.max_length, np.int32)
        for row, (slot, start) in enumerate(starts):
            vectors[row] = self._slot_vector(slot, values[slot.key])
            positions[row] = np.arange(start, start + k)
        return {"vectors": vectors, "mask": np.arange(spec.max_slots) < len(starts),
                "positions": positions}

    def _slot_vector(self, slot: Slot, value: SlotValue) -> np.ndarray:
        spec = self.spaces[slot.space]
        if isinstance(value, str):
            if spec.table is None:
                raise ValueError(f"slot <{slot.key}> holds entity id {value!r}, but space "
                                 f"{slot.space!r} has no embedding table; give an inline vector "
                                 f"of {spec.dim} numbers instead")
            return spec.table.lookup(value)
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
        return vector

    def _text_ids(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text, add_bos=False)
        # A literal "<unused0>" in text would pose as a soft-token placeholder.
        reserved = sorted({self._reserved[i] for i in ids if i in self._reserved})
        if reserved:
            raise ValueError(f"text contains {', '.join(reserved)}, reserved as soft-token "
                             f"placeholder(s); text: {text!r:.120}")
        return ids


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
