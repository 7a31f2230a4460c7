"""Deterministic, resumable batches of encoded rows, sliced per process.

Epoch e visits the examples in the order ``np.random.default_rng([seed, e]).permutation``
(identity without shuffling). A :class:`~elc.data.packing.RowLayout` turns that order
into rows (one example each, or several packed); global batch b is rows
``b * B`` to ``(b + 1) * B`` and process p of P encodes rows ``p * B / P`` to
``(p + 1) * B / P`` of it. The rows left after the last whole batch of an epoch are
dropped, so every batch is full and each process yields the same number of batches.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from elc.data.example_encoder import ExampleEncoder
from elc.data.examples import ExampleSource
from elc.data.packing import RowLayout, single_rows, target_positions


class BatchIterator:
    """Yields dicts of stacked :meth:`ExampleEncoder.encode_row` arrays, batch axis first.

    Args:
      source: indexable examples (``__len__``, ``__getitem__``).
      encoder: turns the examples of each row into arrays; rows are encoded batch by batch.
      batch_size: the global batch size B (rows), over all processes.
      seed: seeds the per-epoch shuffles.
      shuffle: False visits the examples in source order.
      process_index: this process, in ``[0, process_count)``.
      process_count: processes sharing each global batch; each yields B / process_count rows.
      num_epochs: stop after this many epochs; None runs forever.
      layout: how examples fill rows, and the bound of ``target_positions``, which
        batches then carry ([rows / group_rows, group_target_tokens]); None: one example
        per row and no ``target_positions``.
    """

    def __init__(self, source: ExampleSource, encoder: ExampleEncoder, *, batch_size: int,
                 seed: int, shuffle: bool = True, process_index: int = 0,
                 process_count: int = 1, num_epochs: int | None = None,
                 layout: RowLayout | None = None):
        if batch_size < 1 or process_count < 1 or batch_size % process_count:
            raise ValueError(f"batch_size {batch_size} must be a positive multiple of "
                             f"process_count {process_count}")
        if not 0 <= process_index < process_count:
            raise ValueError(f"process_index {process_index} is outside [0, {process_count})")
        if num_epochs is not None and num_epochs < 1:
            raise ValueError(f"num_epochs must be >= 1 or None, got {num_epochs}")
        if layout is not None and (batch_size // process_count) % layout.group_rows:
            raise ValueError(f"each process's {batch_size // process_count} rows of a batch "
                             f"do not split into groups of {layout.group_rows} rows")
        if layout is not None and len(layout.sizes) != len(source):
            raise ValueError(f"the layout measured {len(layout.sizes)} examples but the source "
                             f"has {len(source)}")
        self._source, self._encoder, self._layout = source, encoder, layout
        self._batch_size, self._seed, self._shuffle = batch_size, seed, shuffle
        self._rows = slice(process_index * batch_size // process_count,
                           (process_index + 1) * batch_size // process_count)
        self._num_epochs = num_epochs
        self._epoch, self._batch = 0, 0
        self._plan: tuple[int, list[np.ndarray]] | None = None  # (epoch, its rows)
        if self.batches_in_epoch(0) == 0:
            raise ValueError(f"the source has {len(source)} examples, which make "
                             f"{len(self._epoch_rows(0))} rows, fewer than one global batch "
                             f"of {batch_size}")

    def __iter__(self) -> "BatchIterator":
        return self

    def __next__(self) -> dict:
        if self._num_epochs is not None and self._epoch >= self._num_epochs:
            raise StopIteration
        start = self._batch * self._batch_size
        rows = self._epoch_rows(self._epoch)[start:start + self._batch_size][self._rows]
        encoded, names = [], []
        for row in rows:
            examples = [(self._source[index], index) for index in row.tolist()]
            members = [(example, example.origin or f"example {index}")
                       for example, index in examples]
            encoded.append(self._encoder.encode_row(members))
            names.append(", ".join(where for _, where in members))
        self._batch += 1
        if self._batch == self.batches_in_epoch(self._epoch):
            self._epoch, self._batch = self._epoch + 1, 0
        batch = _stack(encoded)
        if self._layout is not None:
            batch["target_positions"] = target_positions(
                batch["loss_mask"], self._layout.group_target_tokens, self._layout.group_rows,
                names)
        return batch

    def batches_in_epoch(self, epoch: int) -> int:
        """Global batches of epoch ``epoch`` (the same for every epoch without packing)."""
        return len(self._epoch_rows(epoch)) // self._batch_size

    def get_state(self) -> dict[str, int]:
        """The position of the next batch, JSON-serialisable."""
        return {"epoch": self._epoch, "batch": self._batch}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Continues from a :meth:`get_state` result."""
        epoch, batch = state.get("epoch"), state.get("batch")
        if not (isinstance(epoch, int) and isinstance(batch, int) and epoch >= 0
                and 0 <= batch < self.batches_in_epoch(epoch)):
            limit = self.batches_in_epoch(epoch if isinstance(epoch, int) and epoch >= 0 else 0)
            raise ValueError(f"iterator state {dict(state)!r} is not valid here: expected "
                             f"{{'epoch': int >= 0, 'batch': int in [0, {limit})}}")
        self._epoch, self._batch = epoch, batch

    def _epoch_rows(self, epoch: int) -> list[np.ndarray]:
        if self._plan is None or self._plan[0] != epoch:
            count = len(self._source)
            order = (np.random.default_rng([self._seed, epoch]).permutation(count)
                     if self._shuffle else np.arange(count))
            rows = self._layout.rows(order) if self._layout is not None else single_rows(order)
            self._plan = (epoch, rows)
        return self._plan[1]


def _stack(trees: list[dict]) -> dict:
    """Stacks equal-structured (nested) dicts of arrays along a new leading axis."""
    return {key: _stack([tree[key] for tree in trees]) if isinstance(value, dict)
            else np.stack([tree[key] for tree in trees]) for key, value in trees[0].items()}
