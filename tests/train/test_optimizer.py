"""Per-parameter learning-rate multipliers (OptimizerConfig.lr_multipliers)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from elc.train.optimizer import OptimizerConfig, make_optimizer


def _first_update(multipliers):
    config = OptimizerConfig(learning_rate=1e-2, warmup_steps=0, decay_steps=10, clip_norm=0,
                             lr_multipliers=multipliers)
    optimizer = make_optimizer(config)
    params = {"adapters": {"space": {"kernel": jnp.ones((2, 3))}},
              "backbone": {"layer": {"kernel": jnp.ones((2, 3))}}}
    grads = jax.tree_util.tree_map(lambda p: jnp.full(p.shape, 0.5), params)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    return updates


def test_matching_parameters_move_factor_times_as_far():
    plain = _first_update(())
    scaled = _first_update((("adapters/.*", 30.0),))
    # Adam's first step is -lr * g / (|g| + eps), about -0.01 for every element.
    np.testing.assert_allclose(plain["backbone"]["layer"]["kernel"], -0.01, rtol=1e-5)
    np.testing.assert_allclose(scaled["adapters"]["space"]["kernel"], -0.3, rtol=1e-5)
    np.testing.assert_array_equal(scaled["backbone"]["layer"]["kernel"],
                                  plain["backbone"]["layer"]["kernel"])


def test_first_matching_pair_applies():
    updates = _first_update((("adapters/space/.*", 2.0), ("adapters/.*", 5.0)))
    np.testing.assert_allclose(updates["adapters"]["space"]["kernel"], -0.02, rtol=1e-5)


def test_a_regex_that_matches_nothing_is_named():
    with pytest.raises(ValueError, match=r"\['embedder/.\*'\] match no trained parameter"):
        _first_update((("embedder/.*", 2.0),))


@pytest.mark.parametrize("pair", [("adapters/.*", 0.0), ("adapters/.*", float("nan")),
                                  ("adapters/(", 2.0), ("adapters/.*",)])
def test_bad_pairs_are_rejected(pair):
    with pytest.raises(ValueError, match="lr_multipliers"):
        OptimizerConfig(learning_rate=1e-3, warmup_steps=0, decay_steps=5,
                        lr_multipliers=(pair,))


@pytest.mark.parametrize("rate", [0.0, -1e-3, float("nan"), float("inf")])
def test_a_learning_rate_that_is_not_finite_and_positive_is_rejected(rate):
    with pytest.raises(ValueError, match=f"learning_rate must be a finite number > 0, got {rate}"):
        OptimizerConfig(learning_rate=rate, warmup_steps=0, decay_steps=5)
