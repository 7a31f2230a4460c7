"""Adapters aligned with the answers' token embeddings (elc/train/adapter_alignment.py)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.core import meta

from elc.data.example_encoder import ExampleEncoder, SpaceSpec
from elc.data.examples import Example
from elc.data.synthetic import naming_task
from elc.model.config import PRESETS
from elc.model.elm import ELM, AdapterConfig, adapter_bank, init_adapters
from elc.tokenizers.byte_level import byte_level_tokenizer
from elc.train.adapter_alignment import align_adapters, answer_targets, ridge_readout


def test_answer_targets_weight_tokens_by_inverse_document_frequency():
    embedding = np.array([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0], [9.0, 9.0]])
    # Token 0 is in every answer: idf log(3/3) = 0. Tokens 1 and 2 are in one each.
    targets = answer_targets([[0, 1, 1], [0, 2]], embedding)
    np.testing.assert_allclose(targets, [[0.0, 2.0], [4.0, 4.0]])
    # Answers of tokens that every answer holds fall back on the plain mean.
    np.testing.assert_allclose(answer_targets([[0, 3], [3, 0]], embedding), [[5.0, 4.5]] * 2)
    # Three answers: idf(1) = log(4/3) (in two), idf(2) = log(4/2) (in one).
    targets = answer_targets([[1, 2], [1], [3]], embedding)
    w1, w2 = math.log(4 / 3), math.log(2)
    np.testing.assert_allclose(targets[0], (w1 * embedding[1] + w2 * embedding[2]) / (w1 + w2),
                               rtol=1e-6)


def test_ridge_readout_recovers_a_linear_map_and_reports_r2():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((200, 5))
    kernel, bias = rng.standard_normal((5, 3)), rng.standard_normal(3)
    targets = features @ kernel + bias
    fitted_kernel, fitted_bias, r2 = ridge_readout(features, targets, ridge=1e-9)
    np.testing.assert_allclose(fitted_kernel, kernel, atol=1e-6)
    np.testing.assert_allclose(fitted_bias, bias, atol=1e-6)
    assert r2 == pytest.approx(1.0)
    # Noise the features cannot explain: R^2 is the explained share, as numpy's lstsq has it.
    noisy = targets + 3 * rng.standard_normal(targets.shape)
    _, _, r2 = ridge_readout(features, noisy, ridge=1e-9)
    design = np.hstack([features, np.ones((200, 1))])
    residual = noisy - design @ np.linalg.lstsq(design, noisy, rcond=None)[0]
    expected = 1 - np.square(residual).sum() / np.square(noisy - noisy.mean(0)).sum()
    assert r2 == pytest.approx(expected, rel=1e-6)
    # The predictions are scaled to vary as much as the targets.
    fitted_kernel, fitted_bias, _ = ridge_readout(features, noisy, ridge=1e-9)
    predicted = features @ fitted_kernel + fitted_bias
    np.testing.assert_allclose(predicted.mean(0), noisy.mean(0), atol=1e-9)
    assert np.square(predicted - predicted.mean(0)).sum() == pytest.approx(
        np.square(noisy - noisy.mean(0)).sum(), rel=1e-9)
    # A strong penalty leaves the direction of the cross-covariance (ridge's limit).
    strong, _, _ = ridge_readout(features, noisy, ridge=1e8)
    cross = (features - features.mean(0)).T @ (noisy - noisy.mean(0))
    cosine = (strong * cross).sum() / np.linalg.norm(strong) / np.linalg.norm(cross)
    assert cosine == pytest.approx(1.0, abs=1e-6)


def _nearest_name_accuracy(soft, examples, tokenizer, embedding):
    """Share of examples whose soft token is nearer (cosine) to its own name's target than
    to any other name's."""
    names = sorted({e.target for e in examples})
    name_targets = answer_targets([tokenizer.encode(n, add_bos=False) for n in names], embedding)
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    nearest = np.argmax(unit(soft) @ unit(name_targets).T, axis=1)
    return np.mean([names[i] == e.target for i, e in zip(nearest, examples)])


def test_aligned_soft_tokens_point_at_their_answers():
    tokenizer = byte_level_tokenizer()
    train, held_out = naming_task(num_entities=16, dim=8, noise=0.1, train_size=400,
                                  eval_size=100, space="vec")
    # A second space that no single-vector example uses keeps its init.
    train = train + [Example("<other:a> or <other:b>?", "x", {"other:a": [0.0] * 4,
                                                              "other:b": [1.0] * 4})]
    encoder = ExampleEncoder(tokenizer, {"vec": SpaceSpec(dim=8, max_slots=1),
                                         "other": SpaceSpec(dim=4, max_slots=2)},
                             num_soft_tokens=2, max_length=48)
    backbone = PRESETS["tiny"]
    elm = ELM(backbone, (("other", 4), ("vec", 8)), AdapterConfig(num_soft_tokens=2,
                                                                  hidden_dims=(64,)))
    embedding = np.random.default_rng(1).standard_normal((tokenizer.vocab_size,
                                                         backbone.embed_dim))
    adapters = jax.device_get(meta.unbox(init_adapters(elm, jax.random.key(0))))
    aligned = align_adapters(elm, adapters, train, encoder, tokenizer, embedding)
    np.testing.assert_array_equal(aligned["other"]["output_kernel"],
                                  adapters["other"]["output_kernel"])

    vectors = jnp.asarray([e.slots["vec"] for e in held_out], jnp.float32)
    soft = {name: np.asarray(adapter_bank(elm).apply({"params": params}, "vec", vectors))
            for name, params in (("random", adapters), ("aligned", aligned))}
    np.testing.assert_allclose(soft["aligned"][:, 0], soft["aligned"][:, 1], rtol=1e-5)
    accuracy = {name: _nearest_name_accuracy(s[:, 0], held_out, tokenizer, embedding)
                for name, s in soft.items()}
    # 16 names: chance is 1/16. The fit sees the train vectors, these are held out.
    assert accuracy["aligned"] >= 0.75 and accuracy["random"] <= 0.25, accuracy


@pytest.mark.parametrize("init", ["random", "aligned"])
def test_the_trainer_starts_from_aligned_adapters_when_the_config_says_so(init):
    import flax.linen as nn

    from elc.train.trainer import initial_params, setup_run
    from tests.helpers import load_config

    config = load_config("tiny_elm")
    config.model.adapter.init = init
    run = setup_run(config)
    with jax.set_mesh(run.mesh), nn.logical_axis_rules(run.rules):
        params = initial_params(run, jax.random.key(0))
    (space, _), = run.elm.spaces
    held_out = list(run.pipeline.eval)
    vectors = jnp.asarray([e.slots[space] for e in held_out], jnp.float32)
    soft = adapter_bank(run.elm).apply({"params": jax.device_get(params["adapters"])}, space,
                                       vectors)
    embedding = np.asarray(params["backbone"]["embedder"]["embedding"])
    accuracy = _nearest_name_accuracy(np.asarray(soft)[:, 0], held_out, run.backbone.tokenizer,
                                      embedding)
    assert (accuracy >= 0.75) if init == "aligned" else (accuracy <= 0.35), accuracy
