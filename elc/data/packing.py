"""How examples fill a batch's rows: sequence packing and the bound on target tokens.

Every example's size (tokens, target tokens) is measured once, up front
(``measure_examples``); rows are then planned from sizes alone, so the plan of an epoch
is a pure function of its example order and a resumed run replans it exactly.

``pack_rows`` fills the rows of a group (the rows of one device in a batch) first fit:
each example goes into the first of the group's rows with room for it, so a short example
fills the gap a longer one left in an earlier row. A group holds a consecutive run of the
example order, so packing reorders examples only within a group, never across batches.

The train and eval steps take logits only at target positions. Their number is static,
so the step compiles once, and it is shared by a *group* of consecutive rows (the rows
of one device, so the gather stays on the device): ``target_positions`` lists a group's
target positions, at most ``group_target_tokens`` of them, and ``pack_rows`` closes a
group early (leaving its last rows empty) when the next example would exceed that.
Bounding a group rather than each row lets a row of long answers borrow from rows of
short ones: the bound follows the typical row, not the largest. ``target_token_bound``
picks it from the data when the config leaves it at 0.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from elc.data.example_encoder import ExampleEncoder
from elc.data.examples import ExampleSource
from elc.data.validation import Problems, Progress

_TARGET_ROUNDING = 8  # bounds are rounded up to a multiple of this


def measure_examples(source: ExampleSource, encoder: ExampleEncoder,
                     label: str = "examples") -> np.ndarray:
    """int32 [N, 2]: (tokens, target tokens) of every example of ``source`` in a row."""
    sizes = np.zeros((len(source), 2), np.int32)
    problems, progress = Problems(label), Progress(f"measuring {label}", len(source))
    for index in range(len(source)):
        example = source[index]
        try:
            sizes[index] = encoder.measure(example, where=example.origin or f"example {index}")
        except ValueError as error:  # a prompt too long for max_length, say: find them all
            problems.add(str(error))
        progress.update(index + 1)
    problems.raise_if_any(len(source))
    return sizes


def target_token_bound(sizes: np.ndarray, max_length: int, examples_per_row: int,
                       group_rows: int = 1) -> int:
    """A bound on the target tokens of a row, on average over a group of ``group_rows``
    rows, from the examples' ``sizes``.

    The rows of the examples in their own order (``pack_rows`` without a target bound)
    give the mean m and standard deviation s of a row's target tokens; a group of g rows
    gets ``g m + 2 sqrt(g) s`` (rarely exceeded: ``pack_rows`` then closes the group
    early), at least the largest example and at most g times the largest row. The group's
    bound is rounded up to a multiple of 8; the result is that over g, at most
    ``max_length``.
    """
    largest = int(sizes[:, 1].max())
    rows = pack_rows(np.arange(len(sizes)), sizes, max_length=max_length,
                     examples_per_row=examples_per_row, group_target_tokens=np.inf,
                     group_rows=group_rows)
    row_targets = np.array([sizes[row, 1].sum() for row in rows], np.float64)
    typical = group_rows * row_targets.mean() + 2 * math.sqrt(group_rows) * row_targets.std()
    bound = min(max(math.ceil(typical), largest), group_rows * int(row_targets.max()))
    bound = -(-bound // _TARGET_ROUNDING) * _TARGET_ROUNDING
    return min(max_length, -(-bound // group_rows))


@dataclasses.dataclass(frozen=True)
class RowLayout:
    """How a source's examples fill rows.

    Attributes:
      sizes: int [N, 2] (tokens, target tokens) per example (``measure_examples``).
      max_length: tokens per row.
      max_target_tokens: target tokens per row, on average over a group of rows.
      examples_per_row: the most examples per row; 1 means no packing.
      group_rows: consecutive rows sharing one bound of ``group_rows * max_target_tokens``
        target tokens (the length of a group's ``target_positions``).
    """

    sizes: np.ndarray
    max_length: int
    max_target_tokens: int
    examples_per_row: int
    group_rows: int = 1

    def __post_init__(self):
        if self.examples_per_row < 1 or self.group_rows < 1:
            raise ValueError(f"examples_per_row and group_rows must be >= 1, got "
                             f"{self.examples_per_row} and {self.group_rows}")
        if not 1 <= self.max_target_tokens <= self.max_length:
            raise ValueError(f"max_target_tokens must be in [1, max_length={self.max_length}], "
                             f"got {self.max_target_tokens}")
        over = np.flatnonzero(self.sizes[:, 1] > self.group_target_tokens)
        if over.size:
            raise ValueError(f"example {over[0]} has {self.sizes[over[0], 1]} target tokens "
                             f"(EOS included), more than the {self.group_target_tokens} of a "
                             f"group of {self.group_rows} rows (max_target_tokens="
                             f"{self.max_target_tokens} per row; {over.size} examples exceed "
                             "it); raise data.max_target_tokens or set it to 0 to measure it "
                             "from the data")

    @property
    def group_target_tokens(self) -> int:
        """Target tokens of a group of ``group_rows`` rows."""
        return self.max_target_tokens * self.group_rows

    def rows(self, order: np.ndarray) -> list[np.ndarray]:
        """The rows, each an array of example indices (empty where a group closed early),
        for examples visited in ``order``."""
        return pack_rows(order, self.sizes, max_length=self.max_length,
                         examples_per_row=self.examples_per_row,
                         group_target_tokens=self.group_target_tokens,
                         group_rows=self.group_rows)


def row_layout(data_config, source: ExampleSource, encoder: ExampleEncoder, label: str,
               group_rows: int = 1) -> RowLayout:
    """The layout of ``source`` under a config's ``data`` section: its examples measured,
    ``data.examples_per_row``, and ``data.max_target_tokens`` (0: ``target_token_bound``)
    per row of a group of ``group_rows``."""
    sizes = measure_examples(source, encoder, label)
    length, per_row = data_config.max_length, data_config.examples_per_row
    bound = (data_config.max_target_tokens
             or target_token_bound(sizes, length, per_row, group_rows))
    return RowLayout(sizes, length, bound, per_row, group_rows)


def single_rows(order: np.ndarray) -> list[np.ndarray]:
    """One row per example, in ``order``."""
    return [order[i:i + 1] for i in range(len(order))]


def pack_rows(order: np.ndarray, sizes: np.ndarray, *, max_length: int,
              examples_per_row: int, group_target_tokens: float,
              group_rows: int = 1) -> list[np.ndarray]:
    """First-fit packing within groups of ``group_rows`` consecutive rows.

    Examples of ``order`` go, in turn, into the first row of the current group with room
    for their tokens (``max_length``) and another example (``examples_per_row``); a new
    row is opened when none has room and the group has fewer than ``group_rows``. The
    group closes (its rows not opened stay empty) when an example fits in none of its
    rows or would take the group's targets past ``group_target_tokens``; that example
    starts the next group. A group's examples are therefore a consecutive run of
    ``order``: first fit reorders examples within a group (so a short example fills the
    gap an earlier row left), never across groups. With ``group_rows`` = 1 this is greedy
    in-order packing. The last group keeps only the rows it opened."""
    rows: list[np.ndarray] = []
    group: list[list[int]] = []
    room: list[int] = []  # tokens left in each row of the group
    group_targets = 0

    def close_group(pad: bool):
        nonlocal group, room, group_targets
        rows.extend(np.asarray(row, np.int64) for row in group)
        if pad:
            rows.extend(np.zeros(0, np.int64) for _ in range(group_rows - len(group)))
        group, room, group_targets = [], [], 0

    for index in order.tolist():
        length, target = int(sizes[index, 0]), int(sizes[index, 1])
        row = next((r for r in range(len(group))
                    if room[r] >= length and len(group[r]) < examples_per_row), None)
        if group and (group_targets + target > group_target_tokens
                      or (row is None and len(group) == group_rows)):
            close_group(pad=True)
            row = None
        if row is None:
            group.append([])
            room.append(max_length)
            row = len(group) - 1
        group[row].append(index)
        room[row] -= length
        group_targets += target
    close_group(pad=False)
    return rows


def target_positions(loss_mask: np.ndarray, group_target_tokens: int, group_rows: int = 1,
                     where: Sequence[str] = ()) -> np.ndarray:
    """int32 [rows / group_rows, group_target_tokens]: for each group of ``group_rows``
    consecutive rows of ``loss_mask`` [rows, T], the positions where it is set, counted
    along the group's rows laid end to end (row r of the group, position t: r T + t), in
    order, then ``group_rows * T`` (out of range: the steps mask those entries out).
    ``where`` names the rows' examples for the error raised when a group has more targets
    than the bound."""
    rows, length = loss_mask.shape
    if rows % group_rows:
        raise ValueError(f"{rows} rows do not split into groups of {group_rows}")
    flat = loss_mask.reshape(rows // group_rows, group_rows * length) > 0
    counts = flat.sum(-1)
    if counts.max(initial=0) > group_target_tokens:
        group = int(np.argmax(counts))
        members = [name for name in where[group * group_rows:(group + 1) * group_rows] if name]
        names = f" ({'; '.join(members)})" if members else ""
        raise ValueError(f"rows {group * group_rows} to {(group + 1) * group_rows - 1}{names} "
                         f"have {counts[group]} target tokens, more than the bound of "
                         f"{group_target_tokens}")
    positions = np.full(flat.shape[:1] + (group_target_tokens,), flat.shape[1], np.int32)
    for group, mask in enumerate(flat):
        found = np.flatnonzero(mask)
        positions[group, :found.size] = found
    return positions
