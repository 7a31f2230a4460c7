"""Examples given each other's vectors, the control behind eval/vector_gain."""

import numpy as np

from elc.data.swapped_vectors import with_swapped_vectors


def _batch():
    # 2 rows x 2 slots of space "a" (3 filled), 1 filled slot of space "b".
    a = {"vectors": np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3),
         "mask": np.array([[True, True], [True, False]]),
         "positions": np.array([[1, 5], [2, 96]])}
    b = {"vectors": np.ones((2, 1, 4), np.float32), "mask": np.array([[False], [True]]),
         "positions": np.array([[96], [3]])}
    return {"tokens": np.zeros((2, 8), np.int32), "slots": {"a": a, "b": b}}


def test_each_filled_slot_takes_the_previous_ones_vector():
    batch = _batch()
    swapped = with_swapped_vectors(batch)["slots"]["a"]["vectors"]
    original = batch["slots"]["a"]["vectors"]
    # Filled slots in row-major order: (0,0), (0,1), (1,0); each takes the one before.
    np.testing.assert_array_equal(swapped[0, 0], original[1, 0])
    np.testing.assert_array_equal(swapped[0, 1], original[0, 0])
    np.testing.assert_array_equal(swapped[1, 0], original[0, 1])
    np.testing.assert_array_equal(swapped[1, 1], original[1, 1])  # empty slot untouched


def test_nothing_else_changes_and_the_input_is_kept():
    batch = _batch()
    before = {k: v.copy() for k, v in batch["slots"]["a"].items()}
    swapped = with_swapped_vectors(batch)
    for key, value in before.items():
        np.testing.assert_array_equal(batch["slots"]["a"][key], value)
    np.testing.assert_array_equal(swapped["slots"]["a"]["mask"], before["mask"])
    np.testing.assert_array_equal(swapped["slots"]["a"]["positions"], before["positions"])
    assert swapped["tokens"] is batch["tokens"]
    # A space with a single filled slot has nothing to swap with.
    np.testing.assert_array_equal(swapped["slots"]["b"]["vectors"], batch["slots"]["b"]["vectors"])
