"""launch.prepare_data on the offline default (ML-100k from the recbole wheel)."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from elc.byte_tokenizer import byte_level_tokenizer
from elc.data.embedding_table import EmbeddingTable
from elc.data.examples import TfdsExampleSource, read_jsonl
from elc.data.iterator import BatchIterator
from elc.train.input_pipeline import build_input_pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(importlib.util.find_spec("recbole") is None,
                                reason="recbole (ML-100k files) not installed")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("movielens")
    result = subprocess.run([sys.executable, "-m", "launch.prepare_data",
                             "--config=configs/movielens_elm.py",
                             f"--config.prepare.out_dir={out}", "--config.prepare.als.iterations=5",
                             "--config.prepare.weights.movie_era=0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, json.loads((out / "report.json").read_text())


def test_report_counts_the_published_ml100k(prepared):
    _, report = prepared
    # MovieLens-100k as published by GroupLens: 943 users, 1682 movies, 100,000 ratings.
    assert (report["users"], report["movies"], report["ratings"]) == (943, 1682, 100_000)
    assert report["held_out"] == {"movies": 169, "users": 95}  # ceil(10%)
    assert report["tables"] == {"movie_behavioral": [1682, 64], "user_behavioral": [943, 64],
                                "movie_semantic": [1682, 384]}


def test_tables_jsonl_and_tfds_agree(prepared):
    out, report = prepared
    semantic = EmbeddingTable.load("movie_semantic", out / "movie_semantic.npz")
    np.testing.assert_allclose(np.linalg.norm(semantic.vectors, axis=-1), 1.0, atol=1e-5)
    behavioural = EmbeddingTable.load("movie_behavioral", out / "movie_behavioral.npz")
    assert np.isfinite(behavioural.vectors).all() and behavioural.vectors.std() > 0
    for part in ("train", "eval"):
        examples = read_jsonl(out / f"{part}.jsonl")
        assert len(examples) == report["examples"][part] > 0
        tfds_source = TfdsExampleSource("elc_examples", part, str(out / "tfds"))
        assert len(tfds_source) == len(examples)
        # TFDS shuffles on write: compare as multisets of (prompt, target, slots).
        key = lambda e: (e.prompt, e.target, json.dumps(e.slots, sort_keys=True))
        assert sorted(map(key, (tfds_source[i] for i in range(len(tfds_source))))) == sorted(
            map(key, examples))


def test_training_pipeline_reads_the_prepared_data(prepared):
    out, _ = prepared
    spec = importlib.util.spec_from_file_location("movielens_elm",
                                                  os.path.join(ROOT, "configs", "movielens_elm.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.prepare.out_dir = str(out)
    config.data.max_length = 512  # bytes, for the byte-level test tokenizer
    pipeline = build_input_pipeline(config.data, byte_level_tokenizer(512), num_soft_tokens=1)
    batch = next(BatchIterator(pipeline.train, pipeline.encoder, batch_size=8, seed=0))
    assert batch["tokens"].shape == (8, 512)
    used = sum(batch["slots"][s]["mask"].sum() for s in batch["slots"])
    assert used >= 8  # every example holds at least one vector


def test_mixing_weights_reach_the_examples(prepared):
    from elc.data.tasks import TASKS
    out, _ = prepared
    era = set(TASKS["movie_era"].prompts({"movie": "movie_behavioral"}))
    identity = set(TASKS["movie_identity"].prompts({"movie": "movie_behavioral"}))
    prompts = {e.prompt for e in read_jsonl(out / "train.jsonl")}
    assert not prompts & era  # weight 0: dropped
    assert prompts & identity  # weight 1: kept
