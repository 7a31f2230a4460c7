"""Slots named inline in prompts.

A prompt marks where a vector goes with ``<space>``, or ``<space:label>`` when it holds
several slots of one space (``Compare <movie:a> with <movie:b>.``). The example's slots
dict is keyed by the same strings (``"movie:a"``). Angle-bracket words that are the
tokenizer's special pieces (``<start_of_turn>``) are ordinary prompt text.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Collection

# Same shape as the tokenizer's special pieces, so "<start_of_turn>" is seen, then excused.
_PLACEHOLDER = re.compile(r"<([^<>\s]+)>")
_KEY = re.compile(r"([^<>\s:]+)(?::[^<>\s:]+)?")


@dataclasses.dataclass(frozen=True)
class Slot:
    """A slot as written in a prompt: ``key`` ``"movie:a"`` belongs to ``space`` ``"movie"``."""

    key: str
    space: str


@functools.lru_cache(maxsize=4096)  # a file's examples reuse a handful of keys
def slot_space(key: str) -> str:
    """The space of a slot key (the part before ``:``); ValueError for a malformed key."""
    match = _KEY.fullmatch(key)
    if match is None:
        raise ValueError(f"slot key {key!r} is not of the form 'space' or 'space:label' "
                         "(no spaces, angle brackets or further colons)")
    return match.group(1)


def split_prompt(prompt: str, slot_keys: Collection[str], *, spaces: Collection[str],
                 special_pieces: Collection[str] = ()) -> tuple[list[str], list[Slot]]:
    """Splits ``prompt`` at its slots.

    Args:
      prompt: text naming slots as ``<key>``.
      slot_keys: the keys of the example's slots dict; each must occur in the prompt once.
      spaces: the configured space names.
      special_pieces: pieces such as ``<start_of_turn>`` that stay text.

    Returns:
      ``(texts, slots)`` in prompt order, ``texts[i]`` preceding ``slots[i]``; ``texts``
      has one more entry than ``slots`` (pieces may be empty).
    """
    for key in sorted(slot_keys):
        space = slot_space(key)
        if space not in spaces:
            raise ValueError(f"slot <{key}> is of space {space!r}, which is not configured; "
                             f"configured spaces: {sorted(spaces)}")
    texts, slots, seen, start = [], [], set(), 0
    for match in _PLACEHOLDER.finditer(prompt):
        key = match.group(1)
        if key in slot_keys:
            if key in seen:
                raise ValueError(f"prompt names slot <{key}> more than once; each slot must "
                                 "appear exactly once (use labels, <space:a> and <space:b>, for "
                                 "two vectors of one space)")
            seen.add(key)
            texts.append(prompt[start:match.start()])
            slots.append(Slot(key, slot_space(key)))
            start = match.end()
        elif match.group(0) not in special_pieces:
            raise ValueError(f"prompt has placeholder {match.group(0)} but slots has no value "
                             f"for it; slots: {sorted(slot_keys)}")
    texts.append(prompt[start:])
    unused = sorted(set(slot_keys) - seen)
    if unused:
        raise ValueError(f"slots has values for {unused} but the prompt does not name "
                         f"{' '.join(f'<{key}>' for key in unused)}")
    return texts, slots
