"""Training examples and where they come from: JSONL files and TFDS (ArrayRecord) datasets.

An example is a prompt naming its slots inline (``<movie>``, ``<movie:a>``), the target
text, and the value of each slot: an entity id of the slot's space or an inline vector.
A source of examples is any object with ``__len__`` and ``__getitem__`` returning
:class:`Example`, e.g. the list that :func:`read_jsonl` returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
from typing import Any, Mapping, Protocol

from elc.data.validation import Problems
from elc.text_files import open_text

SlotValue = str | list[float]
_KEYS = ("prompt", "target", "slots")
_OPTIONAL_KEYS = ("task",)


@dataclasses.dataclass
class Example:
    """One prompt/target pair with its slot values.

    Attributes:
      prompt: text naming each slot as ``<space>`` or ``<space:label>``.
      target: the text the model learns to produce after the prompt.
      slots: slot key (``"movie"``, ``"movie:a"``) -> entity id, or inline vector. Integer
        ids are stored as strings, numbers of a vector as floats.
      task: optional name of the task that built it (``"movie_genres"``), so evaluation
        can report per task; training ignores it.
      origin: where the example came from (``"train.jsonl:17"``), for error messages.
    """

    prompt: str
    target: str
    slots: dict[str, SlotValue] = dataclasses.field(default_factory=dict)
    task: str = ""
    origin: str = dataclasses.field(default="", compare=False)

    def __post_init__(self):
        where = f"{self.origin}: " if self.origin else ""
        for field in ("prompt", "target", "task"):
            if not isinstance(getattr(self, field), str):
                raise ValueError(f"{where}{field} must be a string, got "
                                 f"{type(getattr(self, field)).__name__}")
        if not isinstance(self.slots, Mapping):
            raise ValueError(f"{where}slots must be an object mapping slot keys to entity ids "
                             f"or vectors, got {type(self.slots).__name__}")
        self.slots = {key: _slot_value(key, value, where) for key, value in self.slots.items()}


def _slot_value(key: Any, value: Any, where: str) -> SlotValue:
    if not isinstance(key, str):
        raise ValueError(f"{where}slot key {key!r} must be a string")
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        return [float(x) for x in value]
    raise ValueError(f"{where}slot {key!r} must be an entity id (string or integer) or a "
                     f"non-empty list of numbers, got {value!r:.80}")


class ExampleSource(Protocol):
    """What a batch iterator reads: indexable examples of known count."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Example: ...


def example_from_record(record: Any, origin: str) -> Example:
    """An :class:`Example` from a mapping with the keys prompt, target and slots, and
    optionally task."""
    if not isinstance(record, Mapping):
        raise ValueError(f"{origin}: expected an object with keys {list(_KEYS)}, got "
                         f"{type(record).__name__}")
    missing = set(_KEYS) - set(record)
    extra = set(record) - set(_KEYS) - set(_OPTIONAL_KEYS)
    if missing or extra:
        raise ValueError(f"{origin}: missing keys {sorted(missing)}, unexpected keys "
                         f"{sorted(extra)}; expected {list(_KEYS)} and optionally "
                         f"{list(_OPTIONAL_KEYS)}")
    return Example(**record, origin=origin)


@contextlib.contextmanager
def _collection_paused():
    """Millions of small objects that all live on: the cycle collector would rescan them
    again and again while they are made (a third of the time on a large file)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_jsonl(path: str | os.PathLike) -> list[Example]:
    """Examples of a JSONL file: one object per line with keys prompt, target, slots (and
    optionally task).
    Blank lines are skipped. Every line is read before any error: ValueError names the
    first bad lines (``path:line``) and counts them all."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"examples file not found: {path}")
    examples = []
    problems, lines = Problems(f"lines of {path}"), 0
    with _collection_paused(), open_text(path, newline="\n") as f:
        for lines, line in enumerate(f, start=1):
            origin = f"{path}:{lines}"
            if not line.strip():
                continue
            try:
                record = json.loads(line.rstrip("\r\n"))  # so columns count within the line
                examples.append(example_from_record(record, origin))
            except json.JSONDecodeError as error:
                problems.add(f"{origin}: invalid JSON: {error.msg} at column {error.colno}")
            except ValueError as error:
                problems.add(str(error))
    problems.raise_if_any(lines)
    return examples


class TfdsExampleSource:
    """Random access to a TFDS dataset prepared in ArrayRecord format, without TensorFlow.

    Records have text features ``prompt``, ``target`` and ``slots`` (the slots object as
    JSON).

    Args:
      name: the dataset's TFDS name (optionally ``name:version``).
      split: split name, e.g. ``"train"`` or ``"train[:90%]"``.
      data_dir: where the prepared dataset lives; None for the TFDS default.
    """

    def __init__(self, name: str, split: str, data_dir: str | os.PathLike | None = None):
        import tensorflow_datasets as tfds  # slow to import, so only when this source is used

        self._name, self._split = name, split
        self._records = tfds.data_source(name, split=split, data_dir=data_dir)

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> Example:
        origin = f"tfds {self._name}[{self._split}] example {index}"
        record = self._records[index]
        missing = set(_KEYS) - set(record)
        if missing:
            raise ValueError(f"{origin}: missing features {sorted(missing)}; expected text "
                             f"features {list(_KEYS)}")
        fields = {key: _text(record[key]) for key in _KEYS}
        try:
            fields["slots"] = json.loads(fields["slots"])
        except json.JSONDecodeError as error:
            raise ValueError(f"{origin}: the slots feature is not valid JSON: {error.msg} at "
                             f"column {error.colno}") from None
        return example_from_record(fields, origin)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
