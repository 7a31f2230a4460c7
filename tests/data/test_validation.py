"""Example files are checked whole before training: every bad line counted, the first named."""

import json
import re

import numpy as np
import pytest
from ml_collections import config_dict

from elc.data.examples import read_jsonl
from elc.data.input_pipeline import build_input_pipeline
from elc.tokenizers.byte_level import byte_level_tokenizer

GOOD = {"prompt": "Describe <movie>.", "target": "A film.", "slots": {"movie": "m1"}}


def _data_config(tmp_path, train_lines, **data):
    np.savez(tmp_path / "movie.npz", ids=np.array(["m1", "m2"]),
             vectors=np.ones((2, 3), np.float32))
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(line) + "\n" for line in train_lines))
    (tmp_path / "eval.jsonl").write_text(json.dumps(GOOD) + "\n")
    return config_dict.ConfigDict(dict(
        source="jsonl", train=str(train), eval=str(tmp_path / "eval.jsonl"), max_length=48,
        examples_per_row=1, max_target_tokens=0, prompt_template="{prompt}\n",
        spaces={"movie": dict(table=str(tmp_path / "movie.npz"), ids="", max_slots=1)},
        **data))


@pytest.mark.parametrize("bad, message", [
    ({"prompt": "Describe <user>.", "target": "x", "slots": {"user": "u1"}},
     r"slot <user> is of space 'user', which is not configured"),
    ({"prompt": "Describe <movie>.", "target": "x", "slots": {"movie": "m9"}},
     r"m9"),
    ({"prompt": "Describe <movie>.", "target": "x", "slots": {"movie": [1.0, 2.0]}},
     r"holds a vector of 2 numbers; space 'movie' has dim 3"),
    ({"prompt": "Describe <movie>.", "target": "x", "slots": {"movie": [1.0, float("nan"), 2.0]}},
     r"non-finite value nan at index 1"),
    ({"prompt": "<movie:a> or <movie:b>?", "target": "x", "slots": {"movie:a": "m1", "movie:b": "m2"}},
     r"2 slots of space 'movie' \(<movie:a>, <movie:b>\) but its max_slots is 1"),
])
def test_a_bad_line_at_the_end_of_a_large_file_is_found_before_training(tmp_path, bad, message):
    lines = [GOOD] * 20_000 + [bad]
    data = _data_config(tmp_path, lines)
    with pytest.raises(ValueError) as error:
        build_input_pipeline(data, byte_level_tokenizer(), num_soft_tokens=1)
    text = str(error.value)
    assert text.startswith(f"train examples ({tmp_path}/train.jsonl): 1 of 20001 are bad:")
    assert "train.jsonl:20001: " in text
    assert re.search(message, text), text


def test_every_bad_line_is_counted_and_the_first_ten_named(tmp_path):
    bad = {"prompt": "Describe <movie>.", "target": "x", "slots": {"movie": "nope"}}
    lines = [GOOD, bad] * 15  # bad on every even line: 15 of 30
    data = _data_config(tmp_path, lines)
    with pytest.raises(ValueError) as error:
        build_input_pipeline(data, byte_level_tokenizer(), num_soft_tokens=1)
    text = str(error.value)
    assert ": 15 of 30 are bad:" in text
    named = [f"train.jsonl:{n}: " for n in range(2, 31, 2)]
    assert all(line in text for line in named[:10]) and named[10] not in text
    assert text.endswith("... and 5 more")


def test_read_jsonl_reads_every_line_before_reporting(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"prompt": "ok", "target": "ok", "slots": {}}\n'
                    '{"prompt": "p", "target": \n'
                    '{"prompt": "ok", "target": "ok", "slots": {}}\n'
                    '{"prompt": "p", "target": "t"}\n')
    with pytest.raises(ValueError) as error:
        read_jsonl(path)
    text = str(error.value)
    assert text.startswith(f"lines of {path}: 2 of 4 are bad:")
    assert f"{path}:2: invalid JSON" in text and f"{path}:4: missing keys ['slots']" in text
