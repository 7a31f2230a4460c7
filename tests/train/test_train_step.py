"""Parameter partitioning, the optimizer schedule and the train step, on a tiny ELM."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax.core import meta

from elc.model.config import get_preset
from elc.model.elm import ELM, AdapterConfig, init_adapters, space_dims
from elc.model.gemma import Gemma3
from elc.train.optimizer import OptimizerConfig, learning_rate_schedule, make_optimizer
from elc.train.partition import merge_params, param_paths, split_params
from elc.train.state import create_state
from elc.train.step import make_train_step

TINY = get_preset("tiny")


@pytest.fixture(scope="module")
def elm_and_params():
    elm = ELM(TINY, space_dims({"vec": 6}), AdapterConfig(hidden_dims=(16,), output_scale=2.0))
    backbone = meta.unbox(jax.jit(Gemma3(TINY).init)(jax.random.key(0),
                                                     jnp.zeros((1, 4), jnp.int32))["params"])
    adapters = meta.unbox(init_adapters(elm, jax.random.key(1)))
    return elm, {"backbone": backbone, "adapters": adapters}


def make_batch(rows=4, length=12, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(3, TINY.vocab_size, size=(rows, length)).astype(np.int32)
    loss_mask = np.zeros((rows, length), np.float32)
    loss_mask[:, 5:-1] = 1.0
    return {
        "tokens": tokens, "input_mask": np.ones((rows, length), bool),
        "positions": np.tile(np.arange(length, dtype=np.int32), (rows, 1)),
        "targets": np.concatenate([tokens[:, 1:], np.zeros((rows, 1), np.int32)], axis=1),
        "loss_mask": loss_mask,
        "segment_ids": np.ones((rows, length), np.int32),
        "target_positions": np.tile(np.arange(5, length - 1, dtype=np.int32), (rows, 1)),
        "slots": {"vec": {"vectors": rng.normal(size=(rows, 1, 6)).astype(np.float32),
                          "mask": np.ones((rows, 1), bool),
                          "positions": np.full((rows, 1, 1), 2, np.int32)}},
    }


def test_split_and_merge(elm_and_params):
    _, params = elm_and_params
    trainable, frozen = split_params(params, ["adapters/.*", r"backbone/final_norm/scale"])
    assert set(param_paths(trainable)) == {p for p in param_paths(params)
                                           if p.startswith("adapters/")} | {"backbone/final_norm/scale"}
    assert "backbone/embedder/embedding" in param_paths(frozen)
    merged = merge_params(trainable, frozen)
    jax.tree_util.tree_map(np.testing.assert_array_equal, merged, params)


def test_split_errors(elm_and_params):
    _, params = elm_and_params
    with pytest.raises(ValueError, match=r"regexes \['adapter/.\*'\] match no parameter"):
        split_params(params, ["adapter/.*"])
    with pytest.raises(ValueError, match="invalid"):
        split_params(params, ["("])
    with pytest.raises(ValueError, match="list of regexes"):
        split_params(params, "adapters/.*")


def test_schedule_warmup_then_cosine():
    config = OptimizerConfig(learning_rate=1e-3, warmup_steps=10, decay_steps=110,
                             final_lr_ratio=0.1)
    lr = learning_rate_schedule(config)
    assert float(lr(0)) == 0.0
    assert float(lr(5)) == pytest.approx(5e-4)
    assert float(lr(10)) == pytest.approx(1e-3)
    # Cosine from the peak to 10% over the remaining 100 steps: halfway is the midpoint.
    assert float(lr(60)) == pytest.approx(1e-4 + 0.5 * 9e-4 * (1 + math.cos(math.pi * 0.5)))
    assert float(lr(110)) == pytest.approx(1e-4)


def test_frozen_backbone_is_bit_identical_and_has_no_optimizer_state(elm_and_params):
    elm, params = elm_and_params
    config = OptimizerConfig(learning_rate=1e-2, warmup_steps=0, decay_steps=5)
    optimizer = make_optimizer(config)
    state = create_state(params, ["adapters/.*"], optimizer, 0,
                         jax.random.key_data(jax.random.key(0)))
    # Adam keeps two moments per trainable leaf and nothing for the backbone.
    state_leaves = sum(x.size for x in jax.tree_util.tree_leaves(state.opt_state))
    adapter_size = sum(x.size for x in jax.tree_util.tree_leaves(params["adapters"]))
    assert adapter_size * 2 <= state_leaves <= adapter_size * 2 + 8
    step = jax.jit(make_train_step(elm, optimizer, learning_rate_schedule(config), 0))
    before = jax.tree_util.tree_map(np.array, params["backbone"])
    for i in range(3):
        state, metrics = step(state, make_batch(seed=i))
    jax.tree_util.tree_map(np.testing.assert_array_equal, state.params["backbone"], before)
    changed = jax.tree_util.tree_map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                                     state.params["adapters"], params["adapters"])
    assert all(jax.tree_util.tree_leaves(changed))
    assert int(state.step) == 3


def test_gradient_accumulation_matches_one_big_batch(elm_and_params):
    elm, params = elm_and_params
    # Plain SGD, so that the update is the gradient itself (Adam would amplify rounding
    # differences of near-zero gradients).
    optimizer, schedule = optax.sgd(1.0), optax.constant_schedule(1.0)
    batch = make_batch(rows=4)
    batch["loss_mask"][0, 5:8] = 0.0  # unequal target counts per micro-batch
    results = []
    for accumulate in (1, 2):
        state = create_state(params, [".*"], optimizer, 0, jax.random.key_data(jax.random.key(0)))
        step = jax.jit(make_train_step(elm, optimizer, schedule, 0, accumulate))
        results.append(step(state, batch))
    (one, m1), (two, m2) = results
    assert float(m1["loss"]) == pytest.approx(float(m2["loss"]), rel=1e-5)
    assert float(m1["grad_norm"]) == pytest.approx(float(m2["grad_norm"]), rel=1e-4)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-4),
                           one.trainable, two.trainable)


def test_loss_counts_only_target_tokens(elm_and_params):
    elm, params = elm_and_params
    config = OptimizerConfig(learning_rate=1e-3, warmup_steps=0, decay_steps=5)
    optimizer = make_optimizer(config)
    state = create_state(params, ["adapters/.*"], optimizer, 0, jax.random.key_data(jax.random.key(0)))
    batch = make_batch()
    logits = jax.jit(elm.apply)({"params": params}, batch)
    logits = np.asarray(logits, np.float64)
    log_probs = logits - logits.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs, batch["targets"][..., None], axis=-1)[..., 0]
    expected = -(picked * batch["loss_mask"]).sum() / batch["loss_mask"].sum()
    _, metrics = jax.jit(make_train_step(elm, optimizer, learning_rate_schedule(config), 0))(
        state, batch)
    assert float(metrics["loss"]) == pytest.approx(expected, rel=1e-5)
    assert float(metrics["target_tokens"]) == batch["loss_mask"].sum()
