"""Target-only, chunked statistics against logits at every position: values and gradients,
on packed rows of a tiny ELM and on the real Gemma 3 270M."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.core import meta

from elc.data.example_encoder import ExampleEncoder, SpaceSpec
from elc.data.examples import Example
from elc.data.iterator import BatchIterator
from elc.data.packing import RowLayout, measure_examples
from elc.model.config import get_preset
from elc.model.elm import ELM, AdapterConfig, init_adapters, space_dims
from elc.tokenizers.byte_level import byte_level_tokenizer
from elc.train.token_statistics import full_logits_statistics, target_statistics
from helpers import random_backbone

TINY = get_preset("tiny")
LENGTH = 40


def packed_batch(max_target_tokens=24, group_rows=1, examples_per_row=3):
    """Four rows packed from short examples with vector slots (ids from the byte-level
    tokenizer fit the tiny vocabulary), target positions per group of ``group_rows``."""
    rng = np.random.default_rng(0)
    words = ["ab", "cde", "f", "ghij", "kl", "mnopq"]
    examples = [Example(f"{words[i % 6]} <vec> {words[(i + 2) % 6]}",
                        " ".join(words[(i + j) % 6] for j in range(1 + i % 3)),
                        {"vec": rng.normal(size=3).tolist()}) for i in range(24)]
    encoder = ExampleEncoder(byte_level_tokenizer(), {"vec": SpaceSpec(dim=3, max_slots=1)},
                             num_soft_tokens=1, max_length=LENGTH,
                             examples_per_row=examples_per_row)
    layout = RowLayout(measure_examples(examples, encoder), LENGTH, max_target_tokens,
                       examples_per_row, group_rows)
    batch = next(BatchIterator(examples, encoder, batch_size=4, seed=1, layout=layout))
    assert batch["segment_ids"].max() >= min(2, examples_per_row)  # really packed
    assert batch["target_positions"].shape == (4 // group_rows, max_target_tokens * group_rows)
    return batch


# (max_target_tokens, group_rows, examples_per_row): rows bounded one by one; groups of
# rows that each hold one example (their segment ids are all 1); packed groups, one of
# which closes early and leaves an empty row.
LAYOUTS = [(24, 1, 3), (24, 4, 1), (9, 2, 3)]


@pytest.fixture(scope="module")
def tiny():
    elm = ELM(TINY, space_dims({"vec": 3}), AdapterConfig(hidden_dims=(8,)))
    params = {"backbone": random_backbone(TINY),
              "adapters": meta.unbox(init_adapters(elm, jax.random.key(1)))}
    return elm, jax.tree_util.tree_map(jnp.asarray, params)


def numpy_statistics(logits, batch):
    """The statistics from full logits, example by example, in float64."""
    logits = np.asarray(logits, np.float64)
    lse = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    totals = dict(loss_sum=0.0, tokens=0.0, correct=0.0, exact=0.0, examples=0.0)
    for row in range(logits.shape[0]):
        for segment in np.unique(batch["segment_ids"][row]):
            where = np.flatnonzero((batch["segment_ids"][row] == segment)
                                   & (batch["loss_mask"][row] > 0))
            if segment == 0 or where.size == 0:
                continue
            targets = batch["targets"][row, where]
            hits = logits[row, where].argmax(-1) == targets
            totals["loss_sum"] += float(np.sum(lse[row, where] - logits[row, where, targets]))
            totals["tokens"] += where.size
            totals["correct"] += float(hits.sum())
            totals["exact"] += float(hits.all())
            totals["examples"] += 1
    return totals


def test_a_group_closed_early_leaves_an_empty_row():
    assert (packed_batch(*LAYOUTS[2])["segment_ids"].max(axis=1) == 0).any()


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("chunk_size", [1, 5, 128])
def test_target_statistics_equal_full_logits_on_packed_rows(tiny, chunk_size, layout):
    elm, params = tiny
    batch = packed_batch(*layout)
    target = jax.jit(functools.partial(target_statistics, elm, chunk_size=chunk_size))(
        params, batch)
    full = jax.jit(functools.partial(full_logits_statistics, elm))(params, batch)
    expected = numpy_statistics(jax.jit(elm.apply)({"params": params}, batch), batch)
    assert expected["examples"] == int(np.sum([len(set(row[row > 0])) for row in
                                               batch["segment_ids"]]))
    for key, value in expected.items():
        assert float(target[key]) == pytest.approx(value, rel=1e-5), key
        assert float(full[key]) == pytest.approx(value, rel=1e-5), key


@pytest.mark.parametrize("layout", LAYOUTS[::2])
def test_target_statistics_gradients_equal_full_logits(tiny, layout):
    elm, params = tiny
    batch = packed_batch(*layout)

    def gradients(statistics):
        """Gradients for all params, and for the adapters alone with the table frozen (its
        gradient is then never formed), in one program."""
        def loss(p):
            return statistics(elm, p, batch)["loss_sum"]

        def both(p):
            return jax.grad(loss)(p), jax.grad(lambda a: loss({**p, "adapters": a}))(
                p["adapters"])
        return jax.jit(both)(params)

    target = gradients(functools.partial(target_statistics, chunk_size=7))
    full = gradients(full_logits_statistics)
    jax.tree_util.tree_map(assert_close, target, full)
    assert float(jnp.abs(target[0]["backbone"]["embedder"]["embedding"]).sum()) > 0


def assert_close(actual, expected):
    """Equal within float32 rounding of sums in another order: relative to each entry,
    and to the array's largest entry."""
    expected = np.asarray(expected)
    np.testing.assert_allclose(actual, expected, rtol=1e-4,
                               atol=1e-5 * float(np.abs(expected).max()))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_exact_match_counts_each_packed_example(tiny, layout):
    elm, params = tiny
    batch = packed_batch(*layout)
    # Make every target the model's own argmax: then every example is an exact match.
    logits = jax.jit(elm.apply)({"params": params}, batch)
    batch["targets"] = np.where(batch["loss_mask"] > 0, np.asarray(logits.argmax(-1)),
                                batch["targets"]).astype(np.int32)
    stats = jax.jit(functools.partial(target_statistics, elm))(params, batch)
    examples = float(stats["examples"])
    assert examples == sum(len(set(row[row > 0])) for row in batch["segment_ids"]) >= 4
    assert float(stats["exact"]) == examples
    # One wrong token spoils exactly its own example.
    row, position = divmod(int(batch["target_positions"][0, 0]), LENGTH)
    batch["targets"][row, position] = (batch["targets"][row, position] + 1) % TINY.vocab_size
    stats = jax.jit(functools.partial(target_statistics, elm))(params, batch)
    assert float(stats["exact"]) == examples - 1


@pytest.mark.slow
def test_target_statistics_equal_full_logits_on_the_270m(gemma3_270m):
    elm = ELM(gemma3_270m.config, space_dims({"vec": 4}), AdapterConfig(hidden_dims=(16,)))
    params = {"backbone": gemma3_270m.params,
              "adapters": meta.unbox(init_adapters(elm, jax.random.key(1)))}
    rng = np.random.default_rng(0)
    rows, length = 2, 24
    tokens = rng.integers(10, 20000, size=(rows, length)).astype(np.int32)
    segment_ids = np.repeat(np.array([[1] * 10 + [2] * 14]), rows, 0).astype(np.int32)
    positions = np.concatenate([np.arange(10), np.arange(14)]).astype(np.int32)
    loss_mask = np.zeros((rows, length), np.float32)
    loss_mask[:, 4:9] = 1.0
    loss_mask[:, 16:23] = 1.0
    batch = {"tokens": tokens, "input_mask": np.ones((rows, length), bool),
             "segment_ids": segment_ids, "positions": np.tile(positions, (rows, 1)),
             "targets": np.concatenate([tokens[:, 1:], np.zeros((rows, 1), np.int32)], 1),
             "loss_mask": loss_mask,
             "target_positions": np.tile(np.flatnonzero(loss_mask[0]).astype(np.int32),
                                         (rows, 1)),
             "slots": {"vec": {"vectors": rng.normal(size=(rows, 1, 4)).astype(np.float32),
                               "mask": np.ones((rows, 1), bool),
                               "positions": np.full((rows, 1, 1), 1, np.int32)}}}
    trainable = {"embedding": params["backbone"]["embedder"]["embedding"],
                 "adapters": params["adapters"]}

    def loss(statistics, part, backbone, batch):
        merged = {"backbone": {**backbone, "embedder": {"embedding": part["embedding"]}},
                  "adapters": part["adapters"]}
        stats = statistics(elm, merged, batch)
        return stats["loss_sum"], stats

    # The backbone is an argument, not a closure: XLA would fold a captured 1 GB of weights
    # into the program as constants, which takes minutes to compile.
    frozen = {k: v for k, v in params["backbone"].items() if k != "embedder"}
    results = [jax.jit(jax.value_and_grad(functools.partial(loss, statistics), has_aux=True))(
        trainable, frozen, batch) for statistics in (
            functools.partial(target_statistics, chunk_size=4), full_logits_statistics)]
    (_, target), target_grads = results[0]
    (_, full), full_grads = results[1]
    for key in target:
        assert float(target[key]) == pytest.approx(float(full[key]), rel=1e-5), key
    assert float(target["tokens"]) == 24 and float(target["examples"]) == 4
    jax.tree_util.tree_map(assert_close, target_grads, full_grads)
