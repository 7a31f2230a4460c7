"""Preparing the describe project's data from a tiny table and descriptions."""

import json

import numpy as np
import pytest

from elc.data.examples import read_jsonl
from elc.data.input_pipeline import build_input_pipeline
from elc.data.vector_table import VectorTable
from elc.projects.describe import SPACE
from elc.projects.describe.phrasings import PHRASINGS
from elc.projects.describe.prepare import prepare_describe, read_prepared
from elc.tokenizers.byte_level import byte_level_tokenizer
from helpers import describe_config, load_config, write_describe_inputs
from launch.projects import config_project


def test_prepare_writes_the_data_format(tmp_path):
    table, texts = write_describe_inputs(tmp_path)
    config = describe_config(tmp_path, table, texts, holdout=0.25, phrasings_per_entity=3)
    report = prepare_describe(config.prepare, config.prepare.out_dir)
    out = tmp_path / "out"
    assert report["entities"] == 20 and report["held_out"] == 5 and report["dim"] == 4
    assert report["examples"] == {"train": 45, "eval": 15}
    descriptions, split = read_prepared(str(out))
    assert set(split.train) | set(split.eval) == set(descriptions) and len(descriptions) == 20
    assert not set(split.train) & set(split.eval)
    train, evaluation = read_jsonl(out / "train.jsonl"), read_jsonl(out / "eval.jsonl")
    assert {e.slots[SPACE] for e in train} == set(split.train)
    assert {e.slots[SPACE] for e in evaluation} == set(split.eval)
    for e in train + evaluation:
        assert e.prompt in PHRASINGS and e.target == descriptions[e.slots[SPACE]]
        assert e.task == "describe"
    per_entity = {}
    for e in train:
        per_entity.setdefault(e.slots[SPACE], set()).add(e.prompt)
    assert all(len(prompts) == 3 for prompts in per_entity.values())  # distinct phrasings
    # The config's data section reads what prepare wrote.
    pipeline = build_input_pipeline(config.data, byte_level_tokenizer(), 1)
    assert pipeline.spaces[SPACE].dim == 4 and len(pipeline.train) == 45
    pipeline.encoder.encode(pipeline.train[0])
    # The same seed holds out the same entities; another seed others.
    assert read_prepared(str(out))[1] == split
    other = describe_config(tmp_path, table, texts, holdout=0.25, seed=1)
    other.prepare.out_dir = str(tmp_path / "other")
    prepare_describe(other.prepare, other.prepare.out_dir)
    assert read_prepared(str(tmp_path / "other"))[1].eval != split.eval


def test_npy_table_with_ids_file(tmp_path):
    np.save(tmp_path / "v.npy", np.ones((3, 2), np.float32))
    (tmp_path / "ids.txt").write_text("a\nb\nc\n")
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"id": i, "text": i * 3}) + "\n" for i in "abc"))
    config = describe_config(tmp_path, str(tmp_path / "v.npy"), str(texts),
                        ids=str(tmp_path / "ids.txt"))
    report = prepare_describe(config.prepare, config.prepare.out_dir)
    assert report["entities"] == 3 and report["held_out"] == 1
    assert VectorTable.load(SPACE, tmp_path / "out" / "entity.npz").ids == ["a", "b", "c"]


def test_launchers_need_a_project_config():
    with pytest.raises(ValueError, match="names no project"):
        config_project(load_config('tiny_elm'), "launch.prepare_data")
    assert config_project(load_config('describe'), "launch.eval") == "describe"
