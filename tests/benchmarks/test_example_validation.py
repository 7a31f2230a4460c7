"""The example-validation benchmark reads and checks a file of the requested length."""

import json

import numpy as np
import pytest
from ml_collections import config_dict

from elc.benchmarks.example_validation import run_validation_suite
from elc.tokenizers.byte_level import byte_level_tokenizer


def _config(tmp_path, table_ids, slot_ids):
    """A config whose train file holds one example per id of ``slot_ids``."""
    np.savez(tmp_path / "movie.npz", ids=np.array(table_ids),
             vectors=np.ones((len(table_ids), 3), np.float32))
    lines = [{"prompt": "Describe <movie>.", "target": "x", "slots": {"movie": m}}
             for m in slot_ids]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return config_dict.ConfigDict(dict(
        model=dict(adapter=dict(num_soft_tokens=1)),
        data=dict(source="jsonl", train=str(tmp_path / "train.jsonl"), max_length=32,
                  examples_per_row=1, prompt_template="{prompt}\n",
                  spaces={"movie": dict(table=str(tmp_path / "movie.npz"), ids="", max_slots=1)})))


def test_validation_suite_times_each_pass_on_the_repeated_file(tmp_path):
    config = _config(tmp_path, ["m1", "m2"], ["m1", "m2"])
    rows = run_validation_suite(config, byte_level_tokenizer(), lines=501)
    assert [row["what"] for row in rows] == ["json.loads only (floor)", "read_jsonl",
                                             "validate_examples", "read + validate"]
    assert rows[3]["seconds"] == rows[1]["seconds"] + rows[2]["seconds"]
    assert all(row["lines_per_second"] == 501 / row["seconds"] for row in rows)


def test_validation_suite_really_checks_every_line(tmp_path):
    config = _config(tmp_path, ["m1"], ["m1", "m7"])  # every second line names a missing id
    with pytest.raises(ValueError, match=r"examples: 50 of 100 are bad"):
        run_validation_suite(config, byte_level_tokenizer(), lines=100)
