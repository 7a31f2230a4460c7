"""The synthetic naming task."""

import numpy as np
import pytest

from elc.tokenizers.byte_level import byte_level_tokenizer
from elc.data.example_encoder import ExampleEncoder, SpaceSpec
from elc.data.iterator import BatchIterator
from elc.data.synthetic import NAMES, naming_task


def vectors_and_names(examples, space="vec"):
    return np.array([e.slots[space] for e in examples]), [e.target for e in examples]


def test_sizes_names_and_prompts():
    train, evaluation = naming_task(num_entities=5, dim=8, train_size=40, eval_size=12,
                                    space="emb")
    assert len(train) == 40 and len(evaluation) == 12
    names = {e.target for e in train + evaluation}
    assert len(names) == 5 and names <= set(NAMES)
    assert all(name.isalpha() and name.islower() for name in NAMES)
    assert len(set(NAMES)) == len(NAMES) >= 32
    for example in train + evaluation:
        assert "<emb>" in example.prompt and list(example.slots) == ["emb"]
        assert len(example.slots["emb"]) == 8
    assert len({e.prompt for e in train}) > 1


def test_deterministic_given_the_seed():
    assert naming_task(seed=3, train_size=20, eval_size=5) == naming_task(
        seed=3, train_size=20, eval_size=5)
    assert naming_task(seed=3, train_size=20)[0] != naming_task(seed=4, train_size=20)[0]


def test_eval_vectors_are_held_out_and_each_is_nearest_its_own_prototype():
    train, evaluation = naming_task(num_entities=8, dim=16, noise=0.1, train_size=256,
                                    eval_size=64)
    train_vectors, train_names = vectors_and_names(train)
    eval_vectors, eval_names = vectors_and_names(evaluation)
    distances = np.linalg.norm(eval_vectors[:, None] - train_vectors[None], axis=-1)
    assert distances.min() > 1e-3
    # Prototypes estimated independently as the mean train vector of each name.
    names = sorted(set(train_names))
    centroids = np.array([train_vectors[[n == name for n in train_names]].mean(0)
                          for name in names])
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=0.05)
    for vectors, targets in ((train_vectors, train_names), (eval_vectors, eval_names)):
        nearest = np.linalg.norm(vectors[:, None] - centroids[None], axis=-1).argmin(1)
        assert [names[i] for i in nearest] == targets


def test_examples_encode_in_the_tiny_config_layout():
    train, _ = naming_task(train_size=32, eval_size=0)
    encoder = ExampleEncoder(byte_level_tokenizer(), {"vec": SpaceSpec(dim=16)},
                             num_soft_tokens=1, max_length=32)
    batch = next(BatchIterator(train, encoder, batch_size=32, seed=0))
    assert batch["slots"]["vec"]["mask"].all()
    assert encoder.truncated_count == 0


def test_errors():
    with pytest.raises(ValueError, match=rf"num_entities must be in \[1, {len(NAMES)}\].*got 33"):
        naming_task(num_entities=33)
    with pytest.raises(ValueError, match=r"dim >= 1.*got dim 0"):
        naming_task(dim=0)
    with pytest.raises(ValueError, match=r"space 'vec:a' must be a bare space name"):
        naming_task(space="vec:a")
