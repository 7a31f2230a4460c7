"""Spaces whose vectors the model sees standardised with their table's statistics."""

import numpy as np
import pytest
from ml_collections import config_dict

from elc.data.example_encoder import ExampleEncoder, SpaceSpec
from elc.data.examples import Example
from elc.data.input_pipeline import build_input_pipeline
from elc.data.vector_table import VectorTable
from elc.tokenizers.byte_level import byte_level_tokenizer

# Dimension 0: values 1, 3 (mean 2, std 1); dimension 1: 10, 30 (mean 20, std 10);
# dimension 2: constant 5.
TABLE = VectorTable("m", ["a", "b"], np.array([[1.0, 10.0, 5.0], [3.0, 30.0, 5.0]]))


def _slot_vector(spec: SpaceSpec, value) -> np.ndarray:
    encoder = ExampleEncoder(byte_level_tokenizer(), {"m": spec}, num_soft_tokens=1,
                             max_length=16)
    return encoder.encode(Example("<m>", "x", {"m": value}))["slots"]["m"]["vectors"][0]


def test_ids_and_inline_vectors_are_standardised_alike():
    spec = SpaceSpec(dim=3, table=TABLE, standardize=True)
    # By hand: (1 - 2) / 1, (10 - 20) / 10; the constant dimension maps to 0.
    np.testing.assert_allclose(_slot_vector(spec, "a"), [-1.0, -1.0, 0.0])
    np.testing.assert_allclose(_slot_vector(spec, "b"), [1.0, 1.0, 0.0])
    # A point between the two, given inline: standardised with the same statistics.
    np.testing.assert_allclose(_slot_vector(spec, [2.5, 25.0, 5.0]), [0.5, 0.5, 0.0])


def test_off_by_default():
    np.testing.assert_allclose(_slot_vector(SpaceSpec(dim=3, table=TABLE), "a"), [1.0, 10.0, 5.0])


def test_a_standardised_space_without_a_table_is_named(tmp_path):
    data = config_dict.ConfigDict(dict(
        source="jsonl", train=str(tmp_path / "t.jsonl"), eval=str(tmp_path / "t.jsonl"),
        max_length=32, examples_per_row=1, max_target_tokens=0, prompt_template="{prompt}\n",
        spaces={"m": dict(table="", ids="", dim=3, max_slots=1, standardize=True)}))
    (tmp_path / "t.jsonl").write_text('{"prompt": "<m>", "target": "x", "slots": {"m": [1, 2, 3]}}\n')
    with pytest.raises(ValueError, match=r"data\.spaces\.m\.standardize is True, but the space "
                                         r"has no table"):
        build_input_pipeline(data, byte_level_tokenizer(), num_soft_tokens=1)
