"""BatchIterator: order, epochs, process slices and resumption."""

import json

import numpy as np
import pytest

from elc.tokenizers.byte_level import byte_level_tokenizer
from elc.data.example_encoder import ExampleEncoder, SpaceSpec
from elc.data.examples import Example
from elc.data.iterator import BatchIterator


class IndexEncoder:
    """Encodes an example to its index (its target), so batches show the order."""

    def encode_row(self, examples: list[tuple[Example, str]]) -> dict:
        (example, _), = examples
        index = int(example.target)
        return {"index": np.array(index), "slots": {"s": {"mask": np.array([index % 2 == 0])}}}


SOURCE = [Example("p", str(i), {}) for i in range(10)]


def indices(iterator, count):
    return [next(iterator)["index"].tolist() for _ in range(count)]


def test_shuffled_epochs_follow_the_seeded_permutations_and_drop_the_remainder():
    iterator = BatchIterator(SOURCE, IndexEncoder(), batch_size=3, seed=7, num_epochs=2)
    batches = [batch["index"].tolist() for batch in iterator]
    expected = []
    for epoch in range(2):
        order = np.random.default_rng([7, epoch]).permutation(10).tolist()
        expected += [order[0:3], order[3:6], order[6:9]]  # order[9] is dropped
    assert batches == expected
    assert batches[:3] != batches[3:]


def test_unshuffled_order_and_nested_stacking():
    iterator = BatchIterator(SOURCE, IndexEncoder(), batch_size=4, seed=0, shuffle=False)
    first = next(iterator)
    np.testing.assert_array_equal(first["index"], [0, 1, 2, 3])
    np.testing.assert_array_equal(first["slots"]["s"]["mask"], [[True], [False], [True], [False]])
    assert indices(iterator, 3) == [[4, 5, 6, 7], [0, 1, 2, 3], [4, 5, 6, 7]]  # runs forever


def test_processes_split_each_global_batch():
    whole = BatchIterator(SOURCE, IndexEncoder(), batch_size=4, seed=3)
    parts = [BatchIterator(SOURCE, IndexEncoder(), batch_size=4, seed=3, process_index=p,
                           process_count=2) for p in range(2)]
    for _ in range(5):  # crosses an epoch boundary (2 batches per epoch)
        global_batch = next(whole)["index"].tolist()
        first, second = (next(part)["index"].tolist() for part in parts)
        assert len(first) == len(second) == 2
        assert first + second == global_batch


def test_restored_state_continues_exactly():
    iterator = BatchIterator(SOURCE, IndexEncoder(), batch_size=3, seed=1)
    indices(iterator, 5)
    state = json.loads(json.dumps(iterator.get_state()))
    assert state == {"epoch": 1, "batch": 2}  # 3 batches per epoch
    following = indices(iterator, 3)
    restored = BatchIterator(SOURCE, IndexEncoder(), batch_size=3, seed=1)
    restored.set_state(state)
    assert indices(restored, 3) == following


def test_real_encoder_batches_and_error_origins():
    encoder = ExampleEncoder(byte_level_tokenizer(), {"v": SpaceSpec(dim=2, max_slots=2)},
                             num_soft_tokens=3, max_length=12)
    source = [Example("<v>", "ab", {"v": [1, 2]}), Example("x", "y", {}),
              Example("<v>", "c", {"v": [1, 2, 3]}, origin="data.jsonl:9")]
    batch = next(BatchIterator(source, encoder, batch_size=2, seed=0, shuffle=False))
    shapes = {key: (value.shape, value.dtype) for key, value in batch.items() if key != "slots"}
    assert shapes == {"tokens": ((2, 12), np.int32), "input_mask": ((2, 12), np.bool_),
                      "positions": ((2, 12), np.int32), "targets": ((2, 12), np.int32),
                      "loss_mask": ((2, 12), np.float32), "segment_ids": ((2, 12), np.int32)}
    slot = batch["slots"]["v"]
    assert (slot["vectors"].shape, slot["mask"].shape, slot["positions"].shape) == (
        (2, 2, 2), (2, 2), (2, 2, 3))
    np.testing.assert_array_equal(slot["positions"][:, 0], [[1, 2, 3], [12, 12, 12]])
    with pytest.raises(ValueError, match=r"^data.jsonl:9: slot <v> holds a vector of 3"):
        next(BatchIterator(source[2:], encoder, batch_size=1, seed=0))
    unnamed = [Example("<w>", "c", {})]
    with pytest.raises(ValueError, match=r"^example 0: prompt has placeholder <w>"):
        next(BatchIterator(unnamed, encoder, batch_size=1, seed=0))


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=3, process_count=2), r"batch_size 3 must be a positive multiple of "
                                          r"process_count 2"),
    (dict(batch_size=0), r"batch_size 0 must be a positive multiple"),
    (dict(batch_size=4, process_count=2, process_index=2), r"process_index 2 is outside \[0, 2\)"),
    (dict(batch_size=11), r"the source has 10 examples, which make 10 rows, fewer than one global "
                                          r"batch of 11"),
    (dict(batch_size=2, num_epochs=0), r"num_epochs must be >= 1 or None, got 0"),
])
def test_constructor_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BatchIterator(SOURCE, IndexEncoder(), seed=0, **kwargs)


@pytest.mark.parametrize("state", [{"epoch": 0, "batch": 5}, {"epoch": -1, "batch": 0},
                                   {"batch": 0}, {"epoch": 0, "batch": "1"}])
def test_invalid_states_are_rejected(state):
    iterator = BatchIterator(SOURCE, IndexEncoder(), batch_size=2, seed=0)
    with pytest.raises(ValueError, match=r"iterator state .* is not valid here: expected .*"
                                         r"\[0, 5\)"):
        iterator.set_state(state)
