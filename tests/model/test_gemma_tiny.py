"""Properties of the Gemma 3 decoder on a random tiny config."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.core import meta

from elc.model.attention import _attend, attention_mask
from elc.model.config import get_preset
from elc.model.gemma import Gemma3, positions_from_mask, unstack_layer_groups
from elc.checkpoints.layer_stack import stack_layers, unstack_layers
from elc.model.rope import apply_rope

TINY = get_preset("tiny")


class Jitted:
    """A Gemma3 whose apply (any method) runs under jit: eager scans are slow on CPU."""

    def __init__(self, config):
        self.module = Gemma3(config)
        self._fns = {}

    def apply(self, params, *args, method=None):
        if method not in self._fns:
            self._fns[method] = jax.jit(lambda p, *a: self.module.apply(p, *a, method=method))
        return self._fns[method](params, *args)


def random_params(config, seed=0):
    """Random params with nonzero norm scales (init gives zeros, hiding 1+scale bugs)."""
    variables = jax.jit(Gemma3(config).init)(jax.random.key(seed), jnp.zeros((1, 4), jnp.int32))
    params = meta.unbox(variables["params"])
    leaves, tree = jax.tree_util.tree_flatten_with_path(params)
    key = jax.random.key(seed + 1)
    new = []
    for path, leaf in leaves:
        key, sub = jax.random.split(key)
        if "scale" in jax.tree_util.keystr(path):
            leaf = 0.3 * jax.random.normal(sub, leaf.shape, leaf.dtype)
        new.append(leaf)
    return {"params": jax.tree_util.tree_unflatten(tree, new)}


@pytest.fixture(scope="module")
def tiny():
    return Jitted(TINY), random_params(TINY)


def random_tokens(shape, seed=0, vocab=TINY.vocab_size):
    return jax.random.randint(jax.random.key(seed), shape, 3, vocab, jnp.int32)


def test_logits_shape_and_finite(tiny):
    model, params = tiny
    logits = model.apply(params, random_tokens((2, 20)))
    assert logits.shape == (2, 20, TINY.vocab_size) and logits.dtype == jnp.float32
    assert bool(jnp.isfinite(logits).all())


def test_causal_future_tokens_do_not_change_the_past(tiny):
    model, params = tiny
    tokens = random_tokens((1, 16))
    changed = tokens.at[0, 10].set((tokens[0, 10] + 1) % TINY.vocab_size)
    a, b = model.apply(params, tokens), model.apply(params, changed)
    np.testing.assert_allclose(a[:, :10], b[:, :10], atol=1e-6)
    assert float(jnp.abs(a[:, 10:] - b[:, 10:]).max()) > 1e-3


def test_sliding_window_hides_tokens_beyond_the_window():
    # All-local decoder of one layer: position t sees t-window+1..t only.
    window = 4
    config = TINY.replace(num_layers=1, attention_pattern=("local",), sliding_window=window)
    model, params = Jitted(config), random_params(config)
    tokens = random_tokens((1, 12))
    t = 9
    outside = tokens.at[0, t - window].set((tokens[0, t - window] + 1) % TINY.vocab_size)
    inside = tokens.at[0, t - window + 1].set((tokens[0, t - window + 1] + 1) % TINY.vocab_size)
    base = model.apply(params, tokens)[0, t]
    np.testing.assert_allclose(model.apply(params, outside)[0, t], base, atol=1e-6)
    assert float(jnp.abs(model.apply(params, inside)[0, t] - base).max()) > 1e-3
    # The same edit is visible to a global layer.
    global_config = config.replace(attention_pattern=("global",))
    global_params = random_params(global_config)
    g = Jitted(global_config)
    assert float(jnp.abs(g.apply(global_params, outside)[0, t]
                         - g.apply(global_params, tokens)[0, t]).max()) > 1e-3


def test_left_padding_gives_the_same_logits(tiny):
    model, params = tiny
    tokens = random_tokens((1, 10))
    padded = jnp.concatenate([jnp.zeros((1, 5), jnp.int32), tokens], axis=1)
    mask = jnp.arange(15)[None] >= 5
    a = model.apply(params, tokens)
    b = model.apply(params, padded, mask)[:, 5:]
    np.testing.assert_allclose(a, b, atol=2e-5, rtol=2e-5)


def test_packed_segments_are_independent(tiny):
    model, params = tiny
    first, second = random_tokens((1, 6), 1), random_tokens((1, 9), 2)
    packed = jnp.concatenate([first, second], axis=1)
    segments = jnp.array([[1] * 6 + [2] * 9])
    positions = jnp.array([list(range(6)) + list(range(9))])
    mask = jnp.ones((1, 15), bool)
    hidden = model.apply(params, model.apply(params, packed, method=Gemma3.embed), positions, mask,
                         segments, method=Gemma3.hidden_states)
    logits = model.apply(params, hidden, method=Gemma3.logits)
    np.testing.assert_allclose(logits[:, 6:], model.apply(params, second), atol=2e-5, rtol=2e-5)
    np.testing.assert_allclose(logits[:, :6], model.apply(params, first), atol=2e-5, rtol=2e-5)


def test_rope_is_relative_shifting_all_positions_changes_nothing(tiny):
    model, params = tiny
    tokens = random_tokens((2, 12))
    mask = jnp.ones(tokens.shape, bool)
    embeds = model.apply(params, tokens, method=Gemma3.embed)
    positions = positions_from_mask(mask)
    run = lambda pos: model.apply(params, embeds, pos, mask, method=Gemma3.hidden_states)
    np.testing.assert_allclose(run(positions), run(positions + 37), atol=3e-5, rtol=3e-5)


def test_rope_matches_complex_rotation():
    # Independent formulation: pairs (x_i, x_{i+d/2}) as complex numbers times e^{i p theta_i}.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 5, 2, 8)).astype(np.float32)
    pos = np.array([[0, 1, 7, 100, 4000]])
    base, scale = 10_000.0, 8.0
    theta = base ** (-np.arange(4) * 2 / 8)
    z = (x[..., :4] + 1j * x[..., 4:]) * np.exp(1j * (pos[..., None, None] / scale) * theta)
    expected = np.concatenate([z.real, z.imag], axis=-1)
    got = apply_rope(jnp.asarray(x), jnp.asarray(pos), base=base, scale=scale)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_attention_matches_jax_dot_product_attention():
    # jax.nn.dot_product_attention (XLA path) is an independent implementation with GQA,
    # a causal flag and a sliding window.
    rng = np.random.default_rng(1)
    b, t, n, k, h = 2, 11, 4, 2, 8
    q, kk, v = (jnp.asarray(rng.normal(size=s), jnp.float32)
                for s in [(b, t, n, h), (b, t, k, h), (b, t, k, h)])
    mask_in = jnp.ones((b, t), bool)
    positions = positions_from_mask(mask_in)
    for window in (None, 3):
        mask = attention_mask(positions, mask_in, None, window)
        ours = _attend(q, kk, v, mask, 0.3, window, "xla")
        theirs = jax.nn.dot_product_attention(
            q, kk, v, scale=0.3, is_causal=True,
            local_window_size=None if window is None else (window - 1, 0), implementation="xla")
        np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=1e-5)


def test_input_embeddings_path_equals_token_path(tiny):
    model, params = tiny
    tokens = random_tokens((2, 9))
    mask = jnp.ones(tokens.shape, bool)
    embeds = model.apply(params, tokens, method=Gemma3.embed)
    np.testing.assert_allclose(embeds[0, 0], params["params"]["embedder"]["embedding"][tokens[0, 0]]
                               * np.sqrt(TINY.embed_dim), rtol=1e-6)
    hidden = model.apply(params, embeds, positions_from_mask(mask), mask,
                         method=Gemma3.hidden_states)
    np.testing.assert_allclose(model.apply(params, hidden, method=Gemma3.logits),
                               model.apply(params, tokens), atol=1e-4)


def test_remat_policies_give_identical_values_and_gradients(tiny):
    _, params = tiny
    tokens = random_tokens((2, 10))

    def value_and_grad(config):
        loss = lambda p: jnp.mean(Gemma3(config).apply(p, tokens) ** 2)
        return jax.jit(jax.value_and_grad(loss))(params)

    base_value, base_grad = value_and_grad(TINY)
    for policy in ("full", "dots_saveable"):
        value, grad = value_and_grad(TINY.replace(remat_policy=policy))
        np.testing.assert_allclose(value, base_value, rtol=1e-6)
        jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-5),
                               grad, base_grad)


def test_bfloat16_compute_stays_close_to_float32(tiny):
    _, params = tiny
    tokens = random_tokens((2, 10))
    full = Jitted(TINY).apply(params, tokens)
    half = Jitted(TINY.replace(dtype="bfloat16")).apply(params, tokens)
    assert half.dtype == jnp.float32  # logits are always float32
    rel = float(jnp.linalg.norm(half - full) / jnp.linalg.norm(full))
    assert rel < 3e-2, rel
    assert float(jnp.mean(jnp.argmax(half, -1) == jnp.argmax(full, -1))) > 0.9


def test_cudnn_attention_refuses_float32_with_a_clear_error(tiny):
    _, params = tiny
    with pytest.raises(ValueError, match="cudnn.*bfloat16"):
        Jitted(TINY.replace(attention_impl="cudnn")).apply(params, random_tokens((1, 4)))


def test_every_parameter_has_logical_axis_names():
    allowed = {"layers", "vocab", "embed", "heads", "kv_heads", "head_dim", "mlp"}
    variables = jax.eval_shape(lambda: Gemma3(TINY).init(jax.random.key(0),
                                                         jnp.zeros((1, 4), jnp.int32)))
    boxes = jax.tree_util.tree_leaves(variables["params"],
                                      is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
    assert boxes and all(isinstance(b, nn.LogicallyPartitioned) for b in boxes)
    for box in boxes:
        assert len(box.names) == box.value.ndim and set(box.names) <= allowed, box.names
    # Scanned layers carry the extra leading 'layers' axis.
    groups = variables["params"]["groups"]["layer_0"]["attention"]["q_proj"]
    assert groups.names == ("layers", "embed", "heads", "head_dim")
    assert groups.value.shape[0] == TINY.num_scanned_groups


def test_layer_stack_round_trip(tiny):
    _, params = tiny
    weights = unstack_layers(TINY, params["params"])
    assert len(weights.layers) == TINY.num_layers
    restacked = stack_layers(TINY, weights)
    jax.tree_util.tree_map(np.testing.assert_array_equal, restacked,
                           jax.tree_util.tree_map(np.asarray, params["params"]))
    # Layer 6 of the 7-layer tiny config is the first layer of the unscanned tail.
    np.testing.assert_array_equal(
        weights.layers[6]["mlp/up_proj"], params["params"]["tail"]["layer_0"]["mlp"]["up_proj"])
    np.testing.assert_array_equal(
        weights.layers[1]["mlp/up_proj"], params["params"]["groups"]["layer_1"]["mlp"]["up_proj"][0])


def test_unscanned_decoder_with_unstacked_params_gives_the_scanned_logits():
    # 13 layers: two scanned groups (so their order matters) and a one-layer tail.
    config = get_preset("tiny", num_layers=13)
    params = random_params(config)
    unscanned = config.replace(scan_layers=False)
    unstacked = {"params": unstack_layer_groups(params["params"])}
    # The unstacked tree has exactly the names and shapes the unscanned module creates.
    fresh = jax.eval_shape(Gemma3(unscanned).init, jax.random.key(0), jnp.zeros((1, 4), jnp.int32))
    assert (jax.tree_util.tree_structure(meta.unbox(fresh["params"]))
            == jax.tree_util.tree_structure(unstacked["params"]))
    np.testing.assert_array_equal(unstacked["params"]["group_1"]["layer_2"]["mlp"]["up_proj"],
                                  params["params"]["groups"]["layer_2"]["mlp"]["up_proj"][1])
    tokens = random_tokens((2, 20))
    np.testing.assert_allclose(Jitted(unscanned).apply(unstacked, tokens),
                               Jitted(config).apply(params, tokens), atol=1e-5, rtol=1e-5)


def test_stack_layers_names_the_misshapen_tensor(tiny):
    _, params = tiny
    weights = unstack_layers(TINY, params["params"])
    weights.layers[3]["mlp/down_proj"] = weights.layers[3]["mlp/down_proj"][:, :-1]
    with pytest.raises(ValueError, match=r"layer 3 mlp/down_proj has shape \(128, 63\)"):
        stack_layers(TINY, weights)
