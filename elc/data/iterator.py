"""Deterministic, resumable batches of encoded examples, sliced per process.

Epoch e visits the examples in the order ``np.random.default_rng([seed, e]).permutation``
(identity without shuffling); global batch b is ``perm[b * B:(b + 1) * B]`` and process p
of P encodes rows ``p * B / P`` to ``(p + 1) * B / P`` of it. The last ``len % B``
examples of an epoch are dropped, so every batch is full and each process yields the
same number of batches.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from elc.data.example_encoder import ExampleEncoder
from elc.data.examples import ExampleSource


class BatchIterator:
    """Yields dicts of stacked :meth:`ExampleEncoder.encode` arrays, batch axis first.

    Args:
      source: indexable examples (``__len__``, ``__getitem__``).
      encoder: turns each example into arrays; examples are encoded batch by batch.
      batch_size: the global batch size B, over all processes.
      seed: seeds the per-epoch shuffles.
      shuffle: False visits the examples in source order.
      process_index: this process, in ``[0, process_count)``.
      process_count: processes sharing each global batch; each yields B / process_count rows.
      num_epochs: stop after this many epochs; None runs forever.
    """

    def __init__(self, source: ExampleSource, encoder: ExampleEncoder, *, batch_size: int,
                 seed: int, shuffle: bool = True, process_index: int = 0,
                 process_count: int = 1, num_epochs: int | None = None):
        if batch_size < 1 or process_count < 1 or batch_size % process_count:
            raise ValueError(f"batch_size {batch_size} must be a positive multiple of "
                             f"process_count {process_count}")
        if not 0 <= process_index < process_count:
            raise ValueError(f"process_index {process_index} is outside [0, {process_count})")
        if num_epochs is not None and num_epochs < 1:
            raise ValueError(f"num_epochs must be >= 1 or None, got {num_epochs}")
        if len(source) < batch_size:
            raise ValueError(f"the source has {len(source)} examples, fewer than one global "
                             f"batch of {batch_size}")
        self._source, self._encoder = source, encoder
        self._batch_size, self._seed, self._shuffle = batch_size, seed, shuffle
        self._rows = slice(process_index * batch_size // process_count,
                           (process_index + 1) * batch_size // process_count)
        self._num_epochs = num_epochs
        self.batches_per_epoch = len(source) // batch_size
        self._epoch, self._batch = 0, 0
        self._order: tuple[int, np.ndarray] | None = None  # (epoch, its permutation)

    def __iter__(self) -> "BatchIterator":
        return self

    def __next__(self) -> dict:
        if self._num_epochs is not None and self._epoch >= self._num_epochs:
            raise StopIteration
        start = self._batch * self._batch_size
        indices = self._permutation()[start:start + self._batch_size][self._rows]
        encoded = []
        for index in indices.tolist():
            example = self._source[index]
            encoded.append(self._encoder.encode(example, where=example.origin
                                                or f"example {index}"))
        self._batch += 1
        if self._batch == self.batches_per_epoch:
            self._epoch, self._batch = self._epoch + 1, 0
        return _stack(encoded)

    def get_state(self) -> dict[str, int]:
        """The position of the next batch, JSON-serialisable."""
        return {"epoch": self._epoch, "batch": self._batch}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Continues from a :meth:`get_state` result."""
        epoch, batch = state.get("epoch"), state.get("batch")
        if not (isinstance(epoch, int) and isinstance(batch, int) and epoch >= 0
                and 0 <= batch < self.batches_per_epoch):
            raise ValueError(f"iterator state {dict(state)!r} is not valid here: expected "
                             f"{{'epoch': int >= 0, 'batch': int in [0, "
                             f"{self.batches_per_epoch})}}")
        self._epoch, self._batch = epoch, batch

    def _permutation(self) -> np.ndarray:
        if self._order is None or self._order[0] != self._epoch:
            count = len(self._source)
            order = (np.random.default_rng([self._seed, self._epoch]).permutation(count)
                     if self._shuffle else np.arange(count))
            self._order = (self._epoch, order)
        return self._order[1]


def _stack(trees: list[dict]) -> dict:
    """Stacks equal-structured (nested) dicts of arrays along a new leading axis."""
    return {key: _stack([tree[key] for tree in trees]) if isinstance(value, dict)
            else np.stack([tree[key] for tree in trees]) for key, value in trees[0].items()}
