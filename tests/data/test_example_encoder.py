"""ExampleEncoder: the exact layout of encoded examples, truncation and errors.

Expected ids are derived by hand from the byte-level tokenizer: an ASCII character c is
6 + ord(c); BOS 2, EOS 1, PAD 0; <unused0> is 262, <unused1> 263, ...
"""

import logging

import numpy as np
import pytest

from elc.tokenizers.byte_level import byte_level_tokenizer
from elc.data.vector_table import VectorTable
from elc.data.example_encoder import ExampleEncoder, SpaceSpec
from elc.data.examples import Example

BOS, EOS, PAD = 2, 1, 0
TOKENIZER = byte_level_tokenizer()


def ids(text: str) -> list[int]:
    return [6 + ord(c) for c in text]


def padded(values: list, length: int, fill) -> list:
    return values + [fill] * (length - len(values))


def test_layout_of_one_slot():
    encoder = ExampleEncoder(TOKENIZER, {"vec": SpaceSpec(dim=2, max_slots=2)},
                             num_soft_tokens=2, max_length=16)
    out = encoder.encode(Example("a<vec>b", "cd", {"vec": [1.0, -2.0]}))
    sequence = [BOS] + ids("a") + [262, 263] + ids("b\ncd") + [EOS]
    assert len(sequence) == 9
    np.testing.assert_array_equal(out["tokens"], padded(sequence, 16, PAD))
    np.testing.assert_array_equal(out["input_mask"], [True] * 9 + [False] * 7)
    np.testing.assert_array_equal(out["positions"], padded(list(range(9)), 16, 0))
    np.testing.assert_array_equal(out["targets"], padded(sequence[1:], 16, PAD))
    # "\n" is the last prompt token (index 5); positions 5, 6, 7 predict c, d, EOS.
    np.testing.assert_array_equal(out["loss_mask"], [0] * 5 + [1, 1, 1] + [0] * 8)
    slot = out["slots"]["vec"]
    np.testing.assert_array_equal(slot["vectors"], [[1.0, -2.0], [0.0, 0.0]])
    np.testing.assert_array_equal(slot["mask"], [True, False])
    np.testing.assert_array_equal(slot["positions"], [[2, 3], [16, 16]])
    for key, dtype in [("tokens", np.int32), ("input_mask", np.bool_), ("positions", np.int32),
                       ("targets", np.int32), ("loss_mask", np.float32)]:
        assert out[key].dtype == dtype and out[key].shape == (16,), key
    assert (slot["vectors"].dtype, slot["mask"].dtype, slot["positions"].dtype) == (
        np.float32, np.bool_, np.int32)


def test_labelled_slots_several_spaces_tables_and_a_template():
    users = VectorTable("user", ["u1", "u2"], [[1, 1, 1], [2, 3, 4]])
    movies = VectorTable("movie", [7, 8], [[0.5, 0.5], [-1, 1]])
    spaces = {"user": SpaceSpec(dim=3, table=users),
              "movie": SpaceSpec(dim=2, max_slots=3, table=movies),
              "book": SpaceSpec(dim=1)}
    encoder = ExampleEncoder(TOKENIZER, spaces, num_soft_tokens=2, max_length=20,
                             prompt_template="Q: {prompt}\nA:")
    out = encoder.encode(Example("<user> vs <movie:b>,<movie:a>", "x",
                                 {"movie:a": 7, "movie:b": [9.0, 8.0], "user": "u2"}))
    # Spaces in name order book, movie, user own placeholders 262-263, 264-265, 266-267.
    sequence = ([BOS] + ids("Q: ") + [266, 267] + ids(" vs ") + [264, 265] + ids(",")
                + [264, 265] + ids("\nA:") + ids("x") + [EOS])
    assert len(sequence) == 20  # exactly max_length: no padding
    np.testing.assert_array_equal(out["tokens"], sequence)
    assert out["input_mask"].all()
    np.testing.assert_array_equal(out["targets"], sequence[1:] + [PAD])
    np.testing.assert_array_equal(out["loss_mask"], [0] * 17 + [1, 1, 0])
    movie, user, book = out["slots"]["movie"], out["slots"]["user"], out["slots"]["book"]
    np.testing.assert_array_equal(movie["positions"], [[10, 11], [13, 14], [20, 20]])
    np.testing.assert_array_equal(movie["vectors"], [[9, 8], [0.5, 0.5], [0, 0]])
    np.testing.assert_array_equal(movie["mask"], [True, True, False])
    np.testing.assert_array_equal(user["positions"], [[4, 5]])
    np.testing.assert_array_equal(user["vectors"], [[2, 3, 4]])
    np.testing.assert_array_equal(book["mask"], [False])
    np.testing.assert_array_equal(book["positions"], [[20, 20]])
    np.testing.assert_array_equal(book["vectors"], [[0]])


def test_special_pieces_in_prompts_stay_text():
    encoder = ExampleEncoder(TOKENIZER, {"v": SpaceSpec(dim=1)}, num_soft_tokens=1,
                             max_length=12, prompt_template="{prompt}")
    out = encoder.encode(Example("<start_of_turn><v>", "ok", {"v": [3]}))
    start_of_turn = TOKENIZER.special_ids["<start_of_turn>"]
    np.testing.assert_array_equal(out["tokens"][:6], [BOS, start_of_turn, 262] + ids("ok")
                                  + [EOS])


def test_encode_prompt_stops_after_the_prompt():
    encoder = ExampleEncoder(TOKENIZER, {"vec": SpaceSpec(dim=2)}, num_soft_tokens=1,
                             max_length=16)
    out = encoder.encode_prompt("hi <vec>", {"vec": [1, 2]})
    np.testing.assert_array_equal(out["tokens"], [BOS] + ids("hi ") + [262] + ids("\n"))
    assert out["tokens"].dtype == np.int32
    np.testing.assert_array_equal(out["slots"]["vec"]["positions"], [[4]])
    np.testing.assert_array_equal(out["slots"]["vec"]["vectors"], [[1, 2]])
    with pytest.raises(ValueError, match=r"^prompt: prompt has placeholder <v>"):
        encoder.encode_prompt("<v>", {})


def test_an_over_long_target_is_cut_and_loses_its_eos(caplog):
    encoder = ExampleEncoder(TOKENIZER, {"v": SpaceSpec(dim=1)}, num_soft_tokens=1,
                             max_length=10, prompt_template="{prompt}")
    fits = encoder.encode(Example("ab", "cdefgh", {}))  # 3 + 6 + EOS = 10: fits exactly
    np.testing.assert_array_equal(fits["tokens"], [BOS] + ids("abcdefgh") + [EOS])
    assert encoder.truncated_count == 0
    with caplog.at_level(logging.WARNING):
        cut = encoder.encode(Example("ab", "cdefghijk", {}), where="train.jsonl:3")
    np.testing.assert_array_equal(cut["tokens"], [BOS] + ids("abcdefghi"))
    np.testing.assert_array_equal(cut["targets"], ids("abcdefghi") + [PAD])
    np.testing.assert_array_equal(cut["loss_mask"], [0, 0] + [1] * 7 + [0])
    assert encoder.truncated_count == 1
    assert "train.jsonl:3: target cut from 9 to 7 tokens" in caplog.text
    # A prompt one short of max_length keeps a single target token.
    short = encoder.encode(Example("abcdefgh", "xyz", {}))
    np.testing.assert_array_equal(short["tokens"], [BOS] + ids("abcdefghx"))
    np.testing.assert_array_equal(short["loss_mask"], [0] * 8 + [1, 0])
    assert encoder.truncated_count == 2


def make_encoder(**overrides) -> ExampleEncoder:
    table = VectorTable("movie", ["1", "2"], np.zeros((2, 2)))
    spaces = {"movie": SpaceSpec(dim=2, max_slots=2, table=table), "user": SpaceSpec(dim=3)}
    return ExampleEncoder(TOKENIZER, spaces, num_soft_tokens=1, max_length=24, **overrides)


@pytest.mark.parametrize("prompt, slots, message", [
    ("<book>", {"book": "1"}, r"slot <book> is of space 'book', which is not configured; "
                              r"configured spaces: \['movie', 'user'\]"),
    ("<movi>", {}, r"prompt has placeholder <movi> but slots has no value for it; slots: \[\]"),
    ("<movie:a><movie:b><movie:c>", {"movie:a": "1", "movie:b": "1", "movie:c": "2"},
     r"3 slots of space 'movie' \(<movie:a>, <movie:b>, <movie:c>\) but its max_slots is 2"),
    ("<user>", {"user": [1, 2]}, r"slot <user> holds a vector of 2 numbers; space 'user' has "
                                 r"dim 3"),
    ("<user>", {"user": [1, float("nan"), 2]}, r"slot <user> holds a vector with non-finite "
                                               r"value nan at index 1"),
    ("<user>", {"user": [1, 2, 1e300]},
     r"slot <user> holds a vector with non-finite value 1e\+300 at index 2 \(as float32\)"),
    ("<movie>", {"movie": 3}, r"entity id '3' is not in embedding space 'movie'"),
    ("<user>", {"user": "u9"}, r"slot <user> holds entity id 'u9', but space 'user' has no "
                               r"embedding table"),
    ("x" * 22, {}, r"the prompt is 24 tokens .* no room for a target token in max_length 24"),
    ("<unused0> <movie>", {"movie": "1"}, r"text contains <unused0>, reserved as soft-token"),
])
def test_errors_name_the_example(prompt, slots, message):
    with pytest.raises(ValueError, match=r"^train.jsonl:17: " + message):
        make_encoder().encode(Example(prompt, "t", slots), where="train.jsonl:17")


def test_a_prompt_of_max_length_minus_one_is_allowed():
    out = make_encoder().encode(Example("x" * 21, "t", {}))  # BOS + 21 + "\n" = 23 tokens
    np.testing.assert_array_equal(out["tokens"][-2:], ids("\nt"))


def test_reserved_placeholders_in_targets_are_rejected():
    with pytest.raises(ValueError, match=r"^example: text contains <unused1>"):
        make_encoder().encode(Example("<movie>", "<unused1>", {"movie": "1"}))


@pytest.mark.parametrize("template, message", [
    ("no field", r"must contain \{prompt\} exactly once"),
    ("{prompt} {prompt}", r"must contain \{prompt\} exactly once"),
    ("{prompt} {other}", r"and no other fields"),
    ("{prompt!r}", r"must contain \{prompt\} exactly once"),
    ("{prompt} }", r"prompt_template '\{prompt\} \}': Single '\}'"),
])
def test_bad_templates(template, message):
    with pytest.raises(ValueError, match=message):
        make_encoder(prompt_template=template)


def test_escaped_braces_in_templates_are_literal():
    encoder = make_encoder(prompt_template="{{{prompt}}}")
    np.testing.assert_array_equal(encoder.encode(Example("a", "b", {}))["tokens"][:6],
                                  [BOS] + ids("{a}b") + [EOS])


def test_constructor_errors():
    with pytest.raises(ValueError, match=r"only 250 <unusedN> pieces; 300 soft-token"):
        ExampleEncoder(TOKENIZER, {"v": SpaceSpec(dim=1)}, num_soft_tokens=300, max_length=8)
    with pytest.raises(ValueError, match=r"num_soft_tokens must be >= 1, got 0"):
        ExampleEncoder(TOKENIZER, {"v": SpaceSpec(dim=1)}, num_soft_tokens=0, max_length=8)
    with pytest.raises(ValueError, match=r"SpaceSpec has dim 3 but its table 'movie' holds 2-d"):
        SpaceSpec(dim=3, table=VectorTable("movie", ["1"], [[1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"max_slots >= 1, got dim 2 and max_slots 0"):
        SpaceSpec(dim=2, max_slots=0)
