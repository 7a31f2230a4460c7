"""Splitting prompts at their <space> / <space:label> slots."""

import pytest

from elc.data.prompt_slots import Slot, slot_space, split_prompt

SPECIAL = {"<start_of_turn>", "<end_of_turn>"}


def test_split_in_prompt_order_with_labels_and_special_pieces():
    texts, slots = split_prompt("<start_of_turn>Compare <movie:b> with <movie:a> for <user>",
                                {"movie:a": "1", "movie:b": "2", "user": [0.0]},
                                spaces={"movie", "user"}, special_pieces=SPECIAL)
    assert texts == ["<start_of_turn>Compare ", " with ", " for ", ""]
    assert slots == [Slot("movie:b", "movie"), Slot("movie:a", "movie"), Slot("user", "user")]


def test_prompt_without_slots_is_one_text():
    assert split_prompt("a < b > c", {}, spaces={"movie"}) == (["a < b > c"], [])


def test_slot_space():
    assert slot_space("movie") == "movie" and slot_space("movie:a") == "movie"
    for key in ("movie:a:b", "mo vie", "", "<movie>", ":a"):
        with pytest.raises(ValueError, match=r"is not of the form 'space' or 'space:label'"):
            slot_space(key)


@pytest.mark.parametrize("prompt, slots, message", [
    ("Describe <movi>.", {"movie": "1"},
     r"prompt has placeholder <movi> but slots has no value for it; slots: \['movie'\]"),
    ("<movie> and <movie>", {"movie": "1"}, r"names slot <movie> more than once"),
    ("Describe it.", {"movie": "1", "movie:b": "2"},
     r"slots has values for \['movie', 'movie:b'\] but the prompt does not name <movie> "
     r"<movie:b>"),
    ("<book>", {"book": "1"},
     r"slot <book> is of space 'book', which is not configured; configured spaces: "
     r"\['movie', 'user'\]"),
    ("<book:x>", {"book:x": "1"}, r"slot <book:x> is of space 'book'"),
])
def test_errors(prompt, slots, message):
    with pytest.raises(ValueError, match=message):
        split_prompt(prompt, slots, spaces={"movie", "user"}, special_pieces=SPECIAL)
