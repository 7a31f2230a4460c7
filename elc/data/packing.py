"""How examples fill a batch's rows: sequence packing and the bound on target tokens.

Every example's size (tokens, target tokens) is measured once, up front
(``measure_examples``); rows are then planned from sizes alone, so the plan of an epoch
is a pure function of its example order and a resumed run replans it exactly.

``pack_rows`` walks the examples in order and starts a new row whenever the next one
would overflow the current row's tokens (``max_length``), its target tokens
(``max_target_tokens``) or its example count (``examples_per_row``). Order is kept, so
packing changes which rows examples land in, never the order they are seen in.

The train and eval steps take logits only at target positions (``target_positions``,
``max_target_tokens`` per row): the bound every row of a run must respect, static so the
step compiles once. ``target_token_bound`` picks it from the data when the config leaves
it at 0.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Sequence

import numpy as np
from absl import logging

from elc.data.example_encoder import ExampleEncoder
from elc.data.examples import ExampleSource

_TARGET_ROUNDING = 8  # bounds are rounded up to a multiple of this


def measure_examples(source: ExampleSource, encoder: ExampleEncoder,
                     label: str = "examples") -> np.ndarray:
    """int32 [N, 2]: (tokens, target tokens) of every example of ``source`` in a row."""
    sizes = np.zeros((len(source), 2), np.int32)
    start = last_report = time.time()
    for index in range(len(source)):
        example = source[index]
        sizes[index] = encoder.measure(example, where=example.origin or f"example {index}")
        if time.time() - last_report > 10:
            last_report = time.time()
            rate = (index + 1) / (last_report - start)
            logging.info("measuring %s: %d/%d (%.0f/s, ETA %.0fs)", label, index + 1,
                         len(source), rate, (len(source) - index - 1) / rate)
    return sizes


def target_token_bound(sizes: np.ndarray, max_length: int, examples_per_row: int) -> int:
    """A bound on the target tokens of a row, from the examples' ``sizes``.

    One example per row: the largest example's count. Packed rows: the data's share of
    target tokens times ``max_length``, so that a row full of typical examples fits
    (``pack_rows`` closes rows that would exceed it), and at least the largest example.
    Rounded up to a multiple of 8, at most ``max_length``.
    """
    largest = int(sizes[:, 1].max())
    bound = largest
    if examples_per_row > 1:
        share = float(sizes[:, 1].sum()) / max(float(sizes[:, 0].sum()), 1.0)
        bound = max(largest, math.ceil(share * max_length))
    return min(max_length, -(-bound // _TARGET_ROUNDING) * _TARGET_ROUNDING)


@dataclasses.dataclass(frozen=True)
class RowLayout:
    """How a source's examples fill rows.

    Attributes:
      sizes: int [N, 2] (tokens, target tokens) per example (``measure_examples``).
      max_length: tokens per row.
      max_target_tokens: target tokens per row (the length of ``target_positions``).
      examples_per_row: the most examples per row; 1 means no packing.
    """

    sizes: np.ndarray
    max_length: int
    max_target_tokens: int
    examples_per_row: int

    def __post_init__(self):
        if self.examples_per_row < 1:
            raise ValueError(f"examples_per_row must be >= 1, got {self.examples_per_row}")
        if not 1 <= self.max_target_tokens <= self.max_length:
            raise ValueError(f"max_target_tokens must be in [1, max_length={self.max_length}], "
                             f"got {self.max_target_tokens}")
        over = np.flatnonzero(self.sizes[:, 1] > self.max_target_tokens)
        if over.size:
            raise ValueError(f"example {over[0]} has {self.sizes[over[0], 1]} target tokens "
                             f"(EOS included), more than max_target_tokens="
                             f"{self.max_target_tokens} ({over.size} examples do); raise "
                             "data.max_target_tokens or set it to 0 to measure it from the data")

    def rows(self, order: np.ndarray) -> list[np.ndarray]:
        """The rows, each an array of example indices, for examples visited in ``order``."""
        if self.examples_per_row == 1:
            return single_rows(order)
        return pack_rows(order, self.sizes, max_length=self.max_length,
                         max_target_tokens=self.max_target_tokens,
                         examples_per_row=self.examples_per_row)


def row_layout(data_config, source: ExampleSource, encoder: ExampleEncoder,
               label: str) -> RowLayout:
    """The layout of ``source`` under a config's ``data`` section: its examples measured,
    ``data.examples_per_row``, and ``data.max_target_tokens`` (0: ``target_token_bound``)."""
    sizes = measure_examples(source, encoder, label)
    length, per_row = data_config.max_length, data_config.examples_per_row
    bound = data_config.max_target_tokens or target_token_bound(sizes, length, per_row)
    return RowLayout(sizes, length, bound, per_row)


def single_rows(order: np.ndarray) -> list[np.ndarray]:
    """One row per example, in ``order``."""
    return [order[i:i + 1] for i in range(len(order))]


def pack_rows(order: np.ndarray, sizes: np.ndarray, *, max_length: int, max_target_tokens: int,
              examples_per_row: int) -> list[np.ndarray]:
    """Greedy in-order packing: examples of ``order`` join the current row until the next
    would exceed ``max_length`` tokens, ``max_target_tokens`` targets or
    ``examples_per_row`` examples; then it starts the next row."""
    rows, current, tokens, targets = [], [], 0, 0
    for index in order.tolist():
        length, target = int(sizes[index, 0]), int(sizes[index, 1])
        if current and (tokens + length > max_length or targets + target > max_target_tokens
                        or len(current) == examples_per_row):
            rows.append(np.asarray(current))
            current, tokens, targets = [], 0, 0
        current.append(index)
        tokens += length
        targets += target
    if current:
        rows.append(np.asarray(current))
    return rows


def target_positions(loss_mask: np.ndarray, max_target_tokens: int,
                     where: Sequence[str] = ()) -> np.ndarray:
    """int32 [..., max_target_tokens]: the positions where ``loss_mask`` [..., T] is set,
    in order, then T (out of range: the steps mask those entries out). ``where`` names
    the rows' examples for the error raised when a row has more targets than the bound."""
    length = loss_mask.shape[-1]
    flat = loss_mask.reshape(-1, length) > 0
    counts = flat.sum(-1)
    if counts.max(initial=0) > max_target_tokens:
        row = int(np.argmax(counts))
        names = f" ({where[row]})" if row < len(where) else ""
        raise ValueError(f"row {row}{names} has {counts[row]} target tokens, more than "
                         f"max_target_tokens={max_target_tokens}")
    positions = np.full((flat.shape[0], max_target_tokens), length, np.int32)
    for row, mask in enumerate(flat):
        found = np.flatnonzero(mask)
        positions[row, :found.size] = found
    return positions.reshape(loss_mask.shape[:-1] + (max_target_tokens,))

