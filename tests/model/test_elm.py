"""The adapter and the splicing of soft tokens into the decoder input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.core import meta

from elc.model.adapter import EmbeddingAdapter
from elc.model.config import get_preset
from elc.model.elm import ELM, AdapterConfig, init_adapters, soft_token_scale, space_dims
from elc.model.gemma import Gemma3

TINY = get_preset("tiny")


def test_adapter_soft_tokens_start_at_the_requested_rms():
    adapter = EmbeddingAdapter(embed_dim=64, num_soft_tokens=3, hidden_dims=(32, 32),
                               output_scale=7.5)
    vectors = jax.random.normal(jax.random.key(0), (5, 12))
    params = adapter.init(jax.random.key(1), vectors)
    out = adapter.apply(params, vectors)
    assert out.shape == (5, 3, 64)
    rms = np.sqrt(np.mean(np.square(np.asarray(out)), axis=-1))
    np.testing.assert_allclose(rms, 7.5, rtol=1e-4)
    layers = meta.unbox(params)["params"]
    assert layers["hidden_0"]["kernel"].shape == (12, 32)
    assert layers["hidden_1"]["kernel"].shape == (32, 32)
    assert layers["output_kernel"].shape == (32, 3, 64)


def test_adapter_l2_input_norm_ignores_vector_length():
    adapter = EmbeddingAdapter(embed_dim=16, hidden_dims=(8,), input_norm="l2")
    v = jax.random.normal(jax.random.key(0), (4, 6))
    params = adapter.init(jax.random.key(1), v)
    np.testing.assert_allclose(adapter.apply(params, v), adapter.apply(params, 9.0 * v), atol=1e-5)
    unnormed = EmbeddingAdapter(embed_dim=16, hidden_dims=(8,))
    assert not np.allclose(unnormed.apply(params, v), unnormed.apply(params, 9.0 * v), atol=1e-3)


def test_adapter_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation 'swish2'"):
        EmbeddingAdapter(embed_dim=8, activation="swish2").init(jax.random.key(0), jnp.ones((1, 2)))


def test_soft_token_scale_is_the_median_scaled_row_rms():
    # Rows with RMS 1, 2 and 10 in a 4-wide table: median 2, times sqrt(4).
    table = np.array([[1, 1, 1, 1], [2, -2, 2, -2], [10, 10, -10, 10]], np.float32)
    assert soft_token_scale(table) == pytest.approx(4.0)


@pytest.fixture(scope="module")
def tiny_elm():
    elm = ELM(TINY, space_dims({"movie": 6, "user": 4}),
              AdapterConfig(num_soft_tokens=2, hidden_dims=(16,), output_scale=3.0))
    backbone = meta.unbox(jax.jit(Gemma3(TINY).init)(jax.random.key(0),
                                                     jnp.zeros((1, 4), jnp.int32))["params"])
    params = {"backbone": backbone, "adapters": meta.unbox(init_adapters(elm, jax.random.key(1)))}
    return elm, params


def batch_with_slots():
    tokens = jnp.arange(2 * 10, dtype=jnp.int32).reshape(2, 10) + 10
    return {
        "tokens": tokens, "positions": jnp.tile(jnp.arange(10), (2, 1)),
        "input_mask": jnp.ones((2, 10), bool),
        "slots": {
            "movie": {"vectors": jax.random.normal(jax.random.key(2), (2, 2, 6)),
                      "mask": jnp.array([[True, True], [True, False]]),
                      "positions": jnp.array([[[1, 2], [5, 6]], [[3, 4], [10, 10]]])},
            "user": {"vectors": jax.random.normal(jax.random.key(3), (2, 1, 4)),
                     "mask": jnp.array([[False], [True]]),
                     "positions": jnp.array([[[10, 10]], [[7, 8]]])},
        },
    }


def test_soft_tokens_replace_exactly_the_slot_positions(tiny_elm):
    elm, params = tiny_elm
    batch = batch_with_slots()
    spliced = jax.jit(lambda p, t, s: elm.apply({"params": p}, t, s, method=ELM.embed))(
        params, batch["tokens"], batch["slots"])
    plain = Gemma3(TINY).apply({"params": params["backbone"]}, batch["tokens"], method=Gemma3.embed)
    adapter = lambda space, v: elm.apply({"params": params}, space, v,
                                         method=lambda m, s, x: m.adapters(s, x))
    movie = adapter("movie", batch["slots"]["movie"]["vectors"])  # [2, 2, 2, embed]
    user = adapter("user", batch["slots"]["user"]["vectors"])
    expected = np.array(plain)
    expected[0, [1, 2]] = movie[0, 0]
    expected[0, [5, 6]] = movie[0, 1]
    expected[1, [3, 4]] = movie[1, 0]
    expected[1, [7, 8]] = user[1, 0]
    np.testing.assert_allclose(spliced, expected, atol=1e-6)


def test_placeholder_embeddings_do_not_leak_into_the_decoder(tiny_elm):
    elm, params = tiny_elm
    batch = batch_with_slots()
    # Token 11 occurs only at (0, 1), a slot position: its embedding row must not matter.
    perturbed = jax.tree_util.tree_map(lambda x: x, params)
    table = perturbed["backbone"]["embedder"]["embedding"]
    perturbed["backbone"]["embedder"]["embedding"] = table.at[11].add(5.0)
    hidden = jax.jit(lambda p: elm.apply({"params": p}, batch, method=ELM.hidden_states))
    np.testing.assert_array_equal(hidden(params), hidden(perturbed))
    # Token 13 sits at (0, 3), not a slot: the same change shows.
    perturbed["backbone"]["embedder"]["embedding"] = table.at[13].add(5.0)
    assert float(jnp.abs(hidden(params) - hidden(perturbed)).max()) > 1e-3


def test_gradient_reaches_every_used_adapter(tiny_elm):
    elm, params = tiny_elm
    batch = batch_with_slots()
    grads = jax.jit(jax.grad(lambda p: jnp.mean(elm.apply({"params": p}, batch) ** 2)))(params)
    for space in ("movie", "user"):
        assert float(jnp.abs(grads["adapters"][space]["output_kernel"]).max()) > 0, space


def test_wrong_vector_dimension_is_named(tiny_elm):
    elm, params = tiny_elm
    batch = batch_with_slots()
    batch["slots"]["user"]["vectors"] = jnp.zeros((2, 1, 5))
    with pytest.raises(ValueError, match="space 'user' has dim 4, but the batch carries vectors of dim 5"):
        jax.eval_shape(lambda: elm.apply({"params": params}, batch))


@pytest.mark.parametrize("rules_name", ["fsdp", "fsdp_tp"])
def test_deep_adapters_get_shardings_under_every_rule_set(rules_name):
    """Two hidden layers: the hidden-to-hidden kernel must not name one logical axis twice
    (which the mapping to mesh axes rejects)."""
    from elc.sharding import logical_rules, make_mesh, tree_shardings
    elm = ELM(get_preset("tiny"), space_dims({"vec": 8}), AdapterConfig(hidden_dims=(16, 12)))
    boxed = jax.eval_shape(lambda: init_adapters(elm, jax.random.key(0)))
    mesh = make_mesh({"data": 1, "fsdp": 1, "tensor": -1, "dcn_data": 1}, jax.devices()[:1])
    shardings = tree_shardings(boxed, mesh, logical_rules(rules_name))
    assert set(shardings["vec"]) == {"hidden_0", "hidden_1", "output_kernel", "output_bias",
                                     "output_scale"}
    assert meta.unbox(boxed)["vec"]["hidden_1"]["kernel"].shape == (16, 12)
