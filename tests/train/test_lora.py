"""LoRA pairs: shapes and axis names, merging against numpy, a tiny model's forward,
dropout, gradients and the errors of bad configs and targets."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from elc.model.config import get_preset
from elc.model.gemma import Gemma3
from elc.sharding import FSDP_RULES, FSDP_TP_RULES, strip_boxes
from elc.train.lora import LoraConfig, init_lora, merge_lora

from helpers import abstract_backbone, random_backbone

QKV = ("layers", "embed", "heads", "head_dim")
O = ("layers", "heads", "head_dim", "embed")


def box(shape, names, dtype=jnp.float32):
    return nn.LogicallyPartitioned(jax.ShapeDtypeStruct(shape, dtype), names)


def abstract_params(mlp_dtype=jnp.float32):
    """A small boxed tree with the backbone's layout: 3 stacked layers in a group, one
    unstacked tail layer, and parameters that are no kernels."""
    return {
        "backbone": {
            "embedder": {"embedding": box((32, 8), ("vocab", "embed"))},
            "groups": {"layer_0": {"attention": {
                "q_proj": box((3, 8, 2, 4), QKV), "o_proj": box((3, 2, 4, 8), O),
                "q_norm": {"scale": box((3, 4), ("layers", "head_dim"))}}}},
            "tail": {"layer_0": {"mlp": {
                "up_proj": box((8, 16), ("embed", "mlp"), mlp_dtype),
                "down_proj": box((16, 8), ("mlp", "embed"), mlp_dtype)}}},
        },
        "adapters": {"vec": {"output_kernel": box((16, 1, 8),
                                                  ("adapter_hidden", "soft_tokens", "embed"))}},
    }


def concrete(abstract, seed=0):
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(
        lambda s: jnp.asarray(rng.standard_normal(s.shape), s.dtype), strip_boxes(abstract))


def config(**overrides):
    fields = dict(rank=3, alpha=6.0, dropout=0.0,
                  targets=(r"backbone/groups/layer_0/attention/[qo]_proj",
                           r"backbone/tail/layer_0/mlp/down_proj"))
    fields.update(overrides)
    return LoraConfig(**fields)


def randomize(lora, seed=1):
    """The pairs with random values, as numpy float32 (b is zero at init)."""
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(
        lambda x: (0.5 * rng.standard_normal(x.shape)).astype(np.float32), lora)


def expected_kernel(w, a, b, scale, lead):
    """w + scale * a @ b by explicit loops over the stacked layers and flattened matmuls."""
    w, a, b = (np.asarray(x, np.float64) for x in (w, a, b))
    if lead == 0:
        w, a, b = w[None], a[None], b[None]
    out = w.copy()
    for layer in range(w.shape[0]):
        rank = a.shape[-1]
        a2 = a[layer].reshape(-1, rank)
        b2 = b[layer].reshape(rank, -1)
        out[layer] += scale * (a2 @ b2).reshape(w.shape[1:])
    return out if lead else out[0]


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("overrides, message", [
    (dict(rank=0), r"rank must be an integer >= 1, got 0"),
    (dict(rank=2.0), r"rank must be an integer >= 1, got 2.0"),
    (dict(alpha=0.0), r"alpha must be > 0, got 0.0"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
    (dict(dropout=-0.1), r"dropout must be in \[0, 1\), got -0.1"),
    (dict(targets=()), r"targets is empty"),
    (dict(targets="backbone/.*"), r"sequence of regexes, got the string 'backbone/\.\*'"),
    (dict(targets=("q_proj(",)), r"regex 'q_proj\(' is invalid"),
])
def test_bad_config_raises(overrides, message):
    with pytest.raises(ValueError, match=message):
        config(**overrides)


def test_config_scale_and_list_targets():
    lora = config(rank=4, alpha=8.0, targets=[".*q_proj"])
    assert lora.scale == 2.0
    assert lora.targets == (".*q_proj",)
    hash(lora)  # usable as a static argument of jax.jit


# ---------------------------------------------------------------- init: shapes, names


def test_init_shapes_axis_names_and_dtypes():
    lora = init_lora(abstract_params(mlp_dtype=jnp.bfloat16), config(), jax.random.key(0))
    attention = lora["backbone"]["groups"]["layer_0"]["attention"]
    assert set(attention) == {"q_proj", "o_proj"}
    assert set(lora["backbone"]["tail"]["layer_0"]["mlp"]) == {"down_proj"}
    q, o = attention["q_proj"], attention["o_proj"]
    down = lora["backbone"]["tail"]["layer_0"]["mlp"]["down_proj"]
    for pair in (q, o, down):
        assert all(isinstance(pair[k], nn.LogicallyPartitioned) for k in "ab")
    assert q["a"].names == ("layers", "embed", "lora_rank")
    assert q["b"].names == ("layers", "lora_rank", "heads", "head_dim")
    assert o["a"].names == ("layers", "heads", "head_dim", "lora_rank")
    assert o["b"].names == ("layers", "lora_rank", "embed")
    assert down["a"].names == ("mlp", "lora_rank")
    assert down["b"].names == ("lora_rank", "embed")
    assert (q["a"].value.shape, q["b"].value.shape) == ((3, 8, 3), (3, 3, 2, 4))
    assert (o["a"].value.shape, o["b"].value.shape) == ((3, 2, 4, 3), (3, 3, 8))
    assert (down["a"].value.shape, down["b"].value.shape) == ((16, 3), (3, 8))
    assert q["a"].value.dtype == jnp.float32
    assert down["a"].value.dtype == down["b"].value.dtype == jnp.bfloat16
    for pair in (q, o, down):
        assert not np.any(np.asarray(pair["b"].value, np.float32))


def test_init_statistics_and_path_keyed_draws():
    abstract = {"backbone": {"tail": {"layer_0": {"mlp": {
        "up_proj": box((400, 8), ("embed", "mlp")),
        "gate_proj": box((400, 8), ("embed", "mlp"))}}}}}
    both = strip_boxes(init_lora(abstract, config(rank=64, targets=(".*_proj",)),
                                 jax.random.key(0)))["backbone"]["tail"]["layer_0"]["mlp"]
    a = np.asarray(both["up_proj"]["a"])
    assert a.std() == pytest.approx(400 ** -0.5, rel=0.05)
    assert abs(a.mean()) < 0.01
    assert not np.allclose(a, both["gate_proj"]["a"])
    # A kernel's draws do not depend on which other kernels are targeted.
    alone = strip_boxes(init_lora(abstract, config(rank=64, targets=(".*up_proj",)),
                                  jax.random.key(0)))
    np.testing.assert_array_equal(alone["backbone"]["tail"]["layer_0"]["mlp"]["up_proj"]["a"], a)


def test_init_under_eval_shape_and_jit():
    abstract, lora_config = abstract_params(), config()
    shapes = jax.eval_shape(lambda r: init_lora(abstract, lora_config, r), jax.random.key(0))
    q = shapes["backbone"]["groups"]["layer_0"]["attention"]["q_proj"]
    assert q["a"].names == ("layers", "embed", "lora_rank")
    assert isinstance(q["a"].value, jax.ShapeDtypeStruct) and q["a"].value.shape == (3, 8, 3)
    jitted = jax.jit(lambda r: strip_boxes(init_lora(abstract, lora_config, r)))(
        jax.random.key(0))
    eager = strip_boxes(init_lora(abstract, lora_config, jax.random.key(0)))
    # The same draws; compiled code may fold the 1 / sqrt(fan_in) scaling differently.
    jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6),
                           jitted, eager)


def test_init_of_unboxed_params_gives_plain_arrays():
    lora = init_lora(concrete(abstract_params()), config(), jax.random.key(0))
    pair = lora["backbone"]["tail"]["layer_0"]["mlp"]["down_proj"]
    assert not isinstance(pair["a"], nn.LogicallyPartitioned)
    assert pair["a"].shape == (16, 3) and pair["b"].shape == (3, 8)


def test_lora_rank_axis_is_replicated_in_both_rule_sets():
    assert ("lora_rank", None) in FSDP_RULES and ("lora_rank", None) in FSDP_TP_RULES


# -------------------------------------------------------------------- bad targets


@pytest.mark.parametrize("target, message", [
    ("backbone/groups/layer_0/attention/q_norm/scale",
     r"'backbone/groups/layer_0/attention/q_norm/scale' matches a LoRA target but is not an "
     r"adaptable matrix; LoRA adapts .*'o_proj'.*'q_proj'"),
    ("backbone/embedder/embedding", r"'backbone/embedder/embedding' .* not an adaptable matrix"),
    ("adapters/.*", r"'adapters/vec/output_kernel' .* not an adaptable matrix"),
    ("backbone/groups/layer_0/attn/q_proj",
     r"target 'backbone/groups/layer_0/attn/q_proj' matches no parameter; adaptable paths "
     r"look like \['backbone/groups/layer_0/attention/q_proj'"),
])
def test_bad_target_raises(target, message):
    with pytest.raises(ValueError, match=message):
        init_lora(abstract_params(), config(targets=(target,)), jax.random.key(0))


def test_kernel_with_wrong_axes_raises():
    params = {"backbone": {"q_proj": box((4, 8, 2, 4), ("vocab", "embed", "heads", "head_dim"))}}
    with pytest.raises(ValueError, match=r"'backbone/q_proj' has shape \(4, 8, 2, 4\).*"
                                         r"expected leading 'layers' axes"):
        init_lora(params, config(targets=(".*",)), jax.random.key(0))


# ------------------------------------------------------------------------- merging


def test_merge_at_init_is_the_base_model():
    abstract = abstract_params()
    params = concrete(abstract)
    lora = strip_boxes(init_lora(abstract, config(), jax.random.key(0)))
    merged = merge_lora({**params, "lora": lora}, config())
    assert set(merged) == {"backbone", "adapters"}
    jax.tree_util.tree_map(np.testing.assert_array_equal, merged, params)


def test_merge_without_lora_returns_params_unchanged():
    params = concrete(abstract_params())
    assert merge_lora(params, config(), jax.random.key(1)) is params


def test_merge_matches_numpy():
    abstract, lora_config = abstract_params(), config()
    params = concrete(abstract)
    lora = randomize(strip_boxes(init_lora(abstract, lora_config, jax.random.key(0))))
    merged = jax.jit(merge_lora, static_argnums=1)({**params, "lora": lora}, lora_config)
    scale = 6.0 / 3
    for path, lead in [(("groups", "layer_0", "attention", "q_proj"), 1),
                       (("groups", "layer_0", "attention", "o_proj"), 1),
                       (("tail", "layer_0", "mlp", "down_proj"), 0)]:
        w, got, pair = params["backbone"], merged["backbone"], lora["backbone"]
        for name in path:
            w, got, pair = w[name], got[name], pair[name]
        want = expected_kernel(w, pair["a"], pair["b"], scale, lead)
        assert np.abs(want - np.asarray(w)).max() > 0.1  # the update is not negligible
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg="/".join(path))
    # Kernels that are not targeted, and everything else, are untouched.
    np.testing.assert_array_equal(merged["backbone"]["tail"]["layer_0"]["mlp"]["up_proj"],
                                  params["backbone"]["tail"]["layer_0"]["mlp"]["up_proj"])
    np.testing.assert_array_equal(merged["adapters"]["vec"]["output_kernel"],
                                  params["adapters"]["vec"]["output_kernel"])


def test_merge_keeps_the_kernel_dtype():
    abstract = abstract_params(mlp_dtype=jnp.bfloat16)
    params = concrete(abstract)
    lora = jax.tree_util.tree_map(lambda x: x.astype(jnp.bfloat16),
                                  randomize(strip_boxes(init_lora(abstract, config(),
                                                                  jax.random.key(0)))))
    down = merge_lora({**params, "lora": lora}, config())["backbone"]["tail"]["layer_0"]["mlp"]
    pair = lora["backbone"]["tail"]["layer_0"]["mlp"]["down_proj"]
    w = params["backbone"]["tail"]["layer_0"]["mlp"]["down_proj"]
    assert down["down_proj"].dtype == jnp.bfloat16
    want = expected_kernel(np.asarray(w, np.float32), np.asarray(pair["a"], np.float32),
                           np.asarray(pair["b"], np.float32), 2.0, 0)
    np.testing.assert_allclose(np.asarray(down["down_proj"], np.float32), want, rtol=1e-2,
                               atol=1e-2)


def test_merge_of_lora_that_does_not_fit_raises():
    abstract = abstract_params()
    params = concrete(abstract)
    lora = strip_boxes(init_lora(abstract, config(), jax.random.key(0)))
    pair = lora["backbone"]["tail"]["layer_0"]["mlp"]["down_proj"]
    pair["a"] = jnp.zeros((15, 3))
    with pytest.raises(ValueError, match=r"lora/backbone/tail/layer_0/mlp/down_proj: a \(15, 3\) "
                                         r"and b \(3, 8\) do not fit the kernel \(16, 8\)"):
        merge_lora({**params, "lora": lora}, config())
    lora["backbone"]["tail"]["layer_9"] = lora["backbone"]["tail"].pop("layer_0")
    with pytest.raises(ValueError, match=r"adapts 'backbone/tail/layer_9/mlp/down_proj', "
                                         r"which is not a parameter"):
        merge_lora({**params, "lora": lora}, config())


def test_forward_of_merged_model_equals_hand_patched_model():
    # 13 layers: two scanned groups of 6 and one tail layer.
    backbone_config = get_preset("tiny", num_layers=13)
    base = random_backbone(backbone_config)
    lora_config = LoraConfig(rank=2, alpha=4.0, dropout=0.0, targets=(
        "backbone/groups/layer_0/attention/q_proj", "backbone/groups/layer_5/attention/o_proj",
        "backbone/tail/layer_0/mlp/up_proj"))
    lora = init_lora({"backbone": abstract_backbone(backbone_config)}, lora_config,
                     jax.random.key(0))
    lora = jax.tree_util.tree_map(lambda x: 0.5 * x, randomize(strip_boxes(lora)))

    # The update by hand: numpy loops over the two groups, flattened head axes.
    patched = jax.tree_util.tree_map(np.array, base)
    scale, lq, lo, lu = 2.0, *(lora["backbone"][g][l][m][k] for g, l, m, k in [
        ("groups", "layer_0", "attention", "q_proj"), ("groups", "layer_5", "attention", "o_proj"),
        ("tail", "layer_0", "mlp", "up_proj")])
    q = patched["groups"]["layer_0"]["attention"]["q_proj"]
    o = patched["groups"]["layer_5"]["attention"]["o_proj"]
    assert q.shape[0] == o.shape[0] == 2
    for g in range(2):
        q[g] += scale * (lq["a"][g] @ lq["b"][g].reshape(2, -1)).reshape(q.shape[1:])
        o[g] += scale * (lo["a"][g].reshape(-1, 2) @ lo["b"][g]).reshape(o.shape[1:])
    patched["tail"]["layer_0"]["mlp"]["up_proj"] += scale * (lu["a"] @ lu["b"])

    forward = jax.jit(lambda p, t: Gemma3(backbone_config).apply({"params": p}, t))
    tokens = np.random.default_rng(0).integers(0, backbone_config.vocab_size, (2, 10))
    merged = jax.jit(merge_lora, static_argnums=1)({"backbone": base, "lora": lora}, lora_config)
    got = np.asarray(forward(merged["backbone"], tokens))
    want = np.asarray(forward(patched, tokens))
    assert np.abs(want - np.asarray(forward(base, tokens))).max() > 1e-2
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------- dropout


def merged_down_delta(lora_config, rng):
    """merged - base of the tail's down_proj, [16 inputs, 8 outputs]."""
    abstract = abstract_params()
    params = concrete(abstract)
    lora = randomize(strip_boxes(init_lora(abstract, config(), jax.random.key(0))))
    merged = merge_lora({**params, "lora": lora}, lora_config, rng)
    path = lambda p: p["backbone"]["tail"]["layer_0"]["mlp"]["down_proj"]
    return np.asarray(path(merged), np.float64) - np.asarray(path(params), np.float64)


def test_dropout_zeroes_and_rescales_input_rows_of_the_update():
    full = merged_down_delta(config(), None)
    dropped = merged_down_delta(config(dropout=0.5), jax.random.key(3))
    again = merged_down_delta(config(dropout=0.5), jax.random.key(3))
    other = merged_down_delta(config(dropout=0.5), jax.random.key(4))
    np.testing.assert_array_equal(dropped, again)
    assert not np.array_equal(dropped, other)
    # Each input feature (row) of the update is either dropped or kept and scaled by 2.
    zero = np.all(np.abs(dropped) < 1e-5, axis=1)
    assert 0 < zero.sum() < 16
    np.testing.assert_allclose(dropped[~zero], 2 * full[~zero], rtol=1e-4, atol=1e-5)


def test_dropout_is_off_without_rng_or_with_rate_zero():
    full = merged_down_delta(config(), None)
    np.testing.assert_array_equal(merged_down_delta(config(dropout=0.5), None), full)
    np.testing.assert_array_equal(merged_down_delta(config(dropout=0.0), jax.random.key(3)),
                                  full)


# ----------------------------------------------------------------------- gradients


def test_gradients_flow_to_the_pairs_only():
    abstract, lora_config = abstract_params(), config()
    params = concrete(abstract)
    lora = strip_boxes(init_lora(abstract, lora_config, jax.random.key(0)))
    weights = np.random.default_rng(5).standard_normal((16, 8)).astype(np.float32)

    def loss(pairs, base):  # linear in the merged down_proj: its gradient is `weights`
        merged = merge_lora({**base, "lora": pairs}, lora_config)
        return jnp.sum(merged["backbone"]["tail"]["layer_0"]["mlp"]["down_proj"] * weights)

    grads = jax.jit(jax.grad(loss))(lora, params)
    down = grads["backbone"]["tail"]["layer_0"]["mlp"]["down_proj"]
    a = np.asarray(lora["backbone"]["tail"]["layer_0"]["mlp"]["down_proj"]["a"], np.float64)
    # d/db sum(W' * G) = scale * a^T G; d/da = scale * G b^T = 0 while b = 0.
    np.testing.assert_allclose(down["b"], 2.0 * a.T @ weights, rtol=1e-5, atol=1e-5)
    assert np.any(down["b"])
    np.testing.assert_array_equal(down["a"], 0)
    # Pairs of other kernels do not touch the loss.
    np.testing.assert_array_equal(grads["backbone"]["groups"]["layer_0"]["attention"]
                                  ["q_proj"]["b"], 0)

    b = np.random.default_rng(6).standard_normal((3, 8)).astype(np.float32)
    lora["backbone"]["tail"]["layer_0"]["mlp"]["down_proj"]["b"] = b
    down = jax.grad(loss)(lora, params)["backbone"]["tail"]["layer_0"]["mlp"]["down_proj"]
    np.testing.assert_allclose(down["a"], 2.0 * weights @ b.T, rtol=1e-5, atol=1e-5)
