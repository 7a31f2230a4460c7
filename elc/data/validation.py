"""Example files checked whole before training: every problem counted, the first named.

A bad example deep in a file must not stop a run hours in, nor stay unread. Readers and
checks report each problem to a :class:`Problems`, which keeps the first few messages
(each naming ``file:line`` or the example) and the count of all, and raises once the
whole pass is done.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from absl import logging

if TYPE_CHECKING:  # examples.py reports to Problems: no import cycle at run time
    from elc.data.examples import ExampleSource

SHOWN_PROBLEMS = 10


class Problems:
    """Problems found in one pass over ``label`` (e.g. ``"train examples"``)."""

    def __init__(self, label: str):
        self.label = label
        self.count = 0
        self.first: list[str] = []

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.first) < SHOWN_PROBLEMS:
            self.first.append(message)

    def raise_if_any(self, total: int) -> None:
        """Raises ValueError naming the first problems and the count, if there were any."""
        if self.count:
            shown = "\n  ".join(self.first)
            more = f"\n  ... and {self.count - len(self.first)} more" \
                if self.count > len(self.first) else ""
            raise ValueError(f"{self.label}: {self.count} of {total} are bad:\n  {shown}{more}")


class Progress:
    """A log line with rate and ETA every ``every`` seconds of a long pass."""

    def __init__(self, label: str, total: int, every: float = 10.0):
        self.label, self.total, self.every = label, total, every
        self.start = self.last = time.time()

    def update(self, done: int) -> None:
        now = time.time()
        if now - self.last > self.every:
            self.last = now
            rate = done / (now - self.start)
            logging.info("%s: %d/%d (%.0f/s, ETA %.0fs)", self.label, done, self.total, rate,
                         (self.total - done) / rate)


def validate_examples(source: "ExampleSource", encoder, label: str) -> None:
    """Checks every example of ``source`` as ``encoder`` (an ExampleEncoder) would read it,
    without tokenising: its slots' spaces, entity ids present in their tables, inline
    vectors of the space's dimension and finite, slot counts within ``max_slots``. Raises
    ValueError naming the first problems and their count. (Token lengths are checked
    when the examples are measured for packing, elc/data/packing.py.)"""
    problems, progress = Problems(label), Progress(f"checking {label}", len(source))
    for index in range(len(source)):
        try:
            example = source[index]
            encoder.check(example, where=example.origin or f"example {index}")
        except ValueError as error:
            problems.add(str(error))
        progress.update(index + 1)
    problems.raise_if_any(len(source))
