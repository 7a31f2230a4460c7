"""Sequence packing: the row layout of packed examples, the packer, the target bound and
packed batches that resume exactly.

Expected ids come from the byte-level tokenizer: an ASCII character c is 6 + ord(c);
BOS 2, EOS 1, PAD 0; <unused0> is 262.
"""

import functools
import json

import numpy as np
import pytest

from elc.data.example_encoder import ExampleEncoder, SpaceSpec
from elc.data.examples import Example
from elc.data.iterator import BatchIterator
from elc.data.packing import (RowLayout, measure_examples, pack_rows, target_positions,
                              target_token_bound)
from elc.tokenizers.byte_level import byte_level_tokenizer

BOS, EOS, PAD, SOFT = 2, 1, 0, 262


def ids(text):
    return [6 + ord(c) for c in text]


def encoder(max_length=24, examples_per_row=3):
    return ExampleEncoder(byte_level_tokenizer(), {"v": SpaceSpec(dim=2, max_slots=1)},
                          num_soft_tokens=1, max_length=max_length,
                          examples_per_row=examples_per_row)


def test_a_packed_row_lays_examples_end_to_end():
    first = Example("a<v>", "bc", {"v": [1.0, 2.0]})
    second = Example("<v>d", "e", {"v": [3.0, 4.0]})
    row = encoder().encode_row([(first, "one"), (second, "two")])
    one = [BOS] + ids("a") + [SOFT] + ids("\nbc") + [EOS]      # 7 tokens, prompt 4
    two = [BOS] + [SOFT] + ids("d\ne") + [EOS]                 # 6 tokens, prompt 4
    assert encoder().measure(first) == (7, 3) and encoder().measure(second) == (6, 2)
    np.testing.assert_array_equal(row["tokens"], one + two + [PAD] * 11)
    np.testing.assert_array_equal(row["segment_ids"], [1] * 7 + [2] * 6 + [0] * 11)
    np.testing.assert_array_equal(row["positions"], list(range(7)) + list(range(6)) + [0] * 11)
    # Each example predicts its own next tokens; its last token predicts nothing.
    np.testing.assert_array_equal(row["targets"], one[1:] + [PAD] + two[1:] + [PAD] * 12)
    np.testing.assert_array_equal(row["loss_mask"],
                                  [0, 0, 0, 1, 1, 1, 0] + [0, 0, 0, 1, 1, 0] + [0] * 11)
    np.testing.assert_array_equal(row["input_mask"], [True] * 13 + [False] * 11)
    slot = row["slots"]["v"]  # capacity: 1 slot x 3 examples per row
    np.testing.assert_array_equal(slot["vectors"], [[1, 2], [3, 4], [0, 0]])
    np.testing.assert_array_equal(slot["mask"], [True, True, False])
    np.testing.assert_array_equal(slot["positions"], [[2], [8], [24]])


def test_rows_that_do_not_fit_are_errors():
    example = Example("abcdefgh", "ijklmnop", {})  # BOS, 8, newline, 8, EOS: 19 tokens
    with pytest.raises(ValueError, match=r"x, y: 38 tokens together, more than a row's "
                                         r"max_length 24"):
        encoder().encode_row([(example, "x"), (example, "y")])
    with pytest.raises(ValueError, match=r"a row holds at most examples_per_row=1 examples, "
                                         r"got 2"):
        encoder(examples_per_row=1).encode_row([(example, "x"), (example, "y")])


def test_a_row_of_no_examples_is_padding():
    row = encoder().encode_row([])
    np.testing.assert_array_equal(row["tokens"], [PAD] * 24)
    assert not row["input_mask"].any() and not row["loss_mask"].any()
    assert not row["segment_ids"].any() and not row["slots"]["v"]["mask"].any()


def test_pack_rows_fills_rows_greedily_in_order():
    sizes = np.array([[10, 4], [9, 3], [6, 5], [20, 2], [3, 1], [2, 1], [1, 1]])
    order = np.array([0, 1, 2, 3, 4, 5, 6])
    pack = functools.partial(pack_rows, order, sizes)
    rows = pack(max_length=24, examples_per_row=3, group_target_tokens=9)
    # 10+9 fit, +6 overflows tokens; 6 then 20 overflows; 20+3 fit, +2 overflows tokens;
    # 2+1 end the walk.
    assert [row.tolist() for row in rows] == [[0, 1], [2], [3, 4], [5, 6]]
    rows = pack(max_length=100, examples_per_row=3, group_target_tokens=9)
    assert [row.tolist() for row in rows] == [[0, 1], [2, 3, 4], [5, 6]]  # targets 4+3+5 > 9
    rows = pack_rows(order[::-1], sizes, max_length=100, examples_per_row=2,
                     group_target_tokens=100)
    assert [row.tolist() for row in rows] == [[6, 5], [4, 3], [2, 1], [0]]


def test_pack_rows_fills_a_group_first_fit_and_bounds_its_targets():
    sizes = np.array([[10, 4], [9, 3], [6, 5], [20, 2], [3, 1], [2, 1], [1, 1]])
    rows = pack_rows(np.arange(7), sizes, max_length=24, examples_per_row=3,
                     group_target_tokens=10, group_rows=2)
    # Group 1: [0, 1] (4+3 targets), then 5 more would make 12 > 10: the group closes
    # with its second row empty. Group 2: [2] (6 tokens); 20 tokens do not fit beside
    # them, so [3] opens the second row; 3 and 2 tokens fit back in the first row (18
    # left), which is then full at 3 examples, so the last example joins [3]: 10 targets.
    assert [row.tolist() for row in rows] == [[0, 1], [], [2, 4, 5], [3, 6]]


def test_first_fit_keeps_each_group_a_run_of_the_order_and_fills_rows_better():
    rng = np.random.default_rng(1)
    sizes = np.stack([rng.integers(10, 60, 500), rng.integers(2, 30, 500)], axis=1)
    order = rng.permutation(500)
    kwargs = dict(max_length=96, examples_per_row=4, group_target_tokens=np.inf)
    greedy = pack_rows(order, sizes, **kwargs)
    grouped = pack_rows(order, sizes, group_rows=8, **kwargs)
    assert all(sizes[row, 0].sum() <= 96 and len(row) <= 4 for row in grouped)
    flat = np.concatenate(grouped)
    assert sorted(flat.tolist()) == list(range(500))
    done = 0
    for start in range(0, len(grouped), 8):
        members = np.concatenate(grouped[start:start + 8])
        assert sorted(members.tolist()) == sorted(order[done:done + members.size].tolist())
        done += members.size
    assert len(grouped) < 0.92 * len(greedy)


def test_target_token_bound():
    sizes = np.array([[10, 5], [30, 11], [20, 4]])  # targets: mean 20/3, std 3.09
    # One example per row: 6.67 + 2 x 3.09 = 12.85, but never more than the largest row
    # (11), rounded up to a multiple of 8.
    assert target_token_bound(sizes, max_length=64, examples_per_row=1) == 16
    # Here 4.75 + 2 x 6.50 = 17.75 would round up to 24; the largest row holds 16.
    skewed = np.array([[5, 1], [5, 1], [5, 1], [30, 16]])
    assert target_token_bound(skewed, max_length=64, examples_per_row=1) == 16
    # All three fit in one packed row of 20 targets.
    assert target_token_bound(sizes, max_length=96, examples_per_row=4) == 24
    # Groups of 4 single-example rows: 4 x 6.67 + 2 x 2 x 3.09 = 39.0, rounded up to 40:
    # 10 per row.
    assert target_token_bound(sizes, max_length=64, examples_per_row=1, group_rows=4) == 10
    assert target_token_bound(sizes, max_length=12, examples_per_row=4) == 12  # capped
    with pytest.raises(ValueError, match=r"example 1 has 11 target tokens \(EOS included\), "
                                         r"more than the 8 of a group of 1 rows"):
        RowLayout(sizes, 64, 8, 1)
    with pytest.raises(ValueError, match=r"more than the 10 of a group of 2 rows "
                                         r"\(max_target_tokens=5 per row; 1 examples exceed"):
        RowLayout(sizes, 64, 5, 1, 2)
    with pytest.raises(ValueError, match=r"max_target_tokens must be in \[1, max_length=64\]"):
        RowLayout(sizes, 64, 65, 1)


def test_target_positions_and_their_bound():
    loss_mask = np.array([[0, 1, 1, 0, 1], [0, 0, 0, 0, 0]], np.float32)
    np.testing.assert_array_equal(target_positions(loss_mask, 4), [[1, 2, 4, 5], [5, 5, 5, 5]])
    # One group of both rows: positions along the rows laid end to end, then 2 x 5.
    loss_mask[1, 3] = 1
    np.testing.assert_array_equal(target_positions(loss_mask, 5, 2), [[1, 2, 4, 8, 10]])
    with pytest.raises(ValueError, match=r"rows 0 to 0 \(a.jsonl:3\) have 3 target tokens, "
                                         r"more than the bound of 2"):
        target_positions(loss_mask, 2, 1, ["a.jsonl:3", "a.jsonl:4"])
    with pytest.raises(ValueError, match=r"rows 0 to 1 \(a.jsonl:3; a.jsonl:4\) have 4"):
        target_positions(loss_mask, 3, 2, ["a.jsonl:3", "a.jsonl:4"])


def source(count=40):
    rng = np.random.default_rng(0)
    return [Example(f"q{'x' * int(rng.integers(0, 6))}<v>", "t" * int(rng.integers(1, 8)),
                    {"v": [float(i), 0.0]}, origin=f"s:{i}") for i in range(count)]


def packed_iterator(examples, enc, group_rows=1, **kwargs):
    layout = RowLayout(measure_examples(examples, enc), enc.max_length, 16, 3, group_rows)
    return BatchIterator(examples, enc, batch_size=4, seed=5, layout=layout, **kwargs)


@pytest.mark.parametrize("group_rows", [1, 2])
def test_packed_batches_keep_the_epoch_order_and_resume_exactly(group_rows):
    examples, enc = source(), encoder()
    iterator = packed_iterator(examples, enc, group_rows)
    order = np.random.default_rng([5, 0]).permutation(len(examples)).tolist()
    seen = 0
    for _ in range(iterator.batches_in_epoch(0)):
        batch = next(iterator)
        assert batch["target_positions"].shape == (4 // group_rows, 16 * group_rows)
        assert (batch["segment_ids"].max(axis=1) >= 1).all()
        # The slot vectors' first number is the example's index.
        vectors = batch["slots"]["v"]["vectors"][..., 0][batch["slots"]["v"]["mask"]]
        batch_examples = vectors.astype(int).tolist()
        expected = order[seen:seen + len(batch_examples)]
        if group_rows == 1:  # greedy packing keeps the order within the batch too
            assert batch_examples == expected
        else:  # first fit reorders within a group only
            assert sorted(batch_examples) == sorted(expected)
        seen += len(batch_examples)
    assert seen > 4 * iterator.batches_in_epoch(0)
    for _ in range(3):
        next(iterator)
    state = json.loads(json.dumps(iterator.get_state()))
    following = [next(iterator)["tokens"] for _ in range(4)]
    restored = packed_iterator(examples, enc, group_rows)
    restored.set_state(state)
    for expected in following:
        np.testing.assert_array_equal(next(restored)["tokens"], expected)


@pytest.mark.parametrize("group_rows", [1, 2])
def test_packed_batches_split_over_processes(group_rows):
    examples, enc = source(), encoder()
    whole = packed_iterator(examples, enc, group_rows)
    parts = [packed_iterator(examples, enc, group_rows, process_index=p, process_count=2)
             for p in range(2)]
    for _ in range(6):
        expected = next(whole)
        assert expected["target_positions"].shape == (4 // group_rows, 16 * group_rows)
        got = [next(p) for p in parts]
        for key in ("tokens", "target_positions"):
            np.testing.assert_array_equal(np.concatenate([g[key] for g in got]), expected[key])
    with pytest.raises(ValueError, match=r"each process's 2 rows of a batch do not split into "
                                         r"groups of 4 rows"):
        packed_iterator(examples, enc, 4, process_index=0, process_count=2)


@pytest.mark.parametrize("field, value, message", [
    ("examples_per_row", 0, r"data.examples_per_row=0 must be >= 1 \(1: no packing\)"),
    ("max_target_tokens", -1, r"data.max_target_tokens=-1 must be in \[0, data.max_length=")])
def test_bad_packing_settings_name_the_config_field(field, value, message):
    from configs.tiny_elm import get_config
    from elc.data.input_pipeline import build_input_pipeline
    config = get_config()
    config.data[field] = value
    with pytest.raises(ValueError, match=message):
        build_input_pipeline(config.data, byte_level_tokenizer(), 1)
