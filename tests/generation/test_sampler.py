"""KV-cached generation (elc/generation/sampler.py) against full forward passes, on random tiny models.

The references recompute the whole sequence for every new token with the models' plain
forward (``Gemma3.__call__``, ``ELM.__call__``), which has no cache, so they check the
cache, its masks and the bucketing independently.
"""

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.core import meta

from elc.tokenizers.byte_level import byte_level_tokenizer
from elc.data.example_encoder import ExampleEncoder, SpaceSpec
from elc.model.config import get_preset
from elc.model.elm import ELM, AdapterConfig, init_adapters, space_dims
from elc.model.gemma import Gemma3, init_cache, positions_from_mask
from elc.generation import answering
from elc.generation.answering import GenerationConfig, Request, answer
from elc.generation.sampler import GenerationLengthError, _filter_logits, generate

from helpers import ROOT, fake_devices_env, random_backbone

# A window of 6 is far below prompt + generation, so the local layers' mask matters.
CONFIG = dataclasses.replace(get_preset("tiny"), sliding_window=6)
# Different lengths, two of them longer than the window.
PROMPTS = [[2, 17, 40], [2] + list(range(30, 50)), [2] + list(range(300, 311)), [2, 99]]
MAX_NEW = 10


def continue_greedily(forward, prompts, max_new):
    """Greedy continuations by full forward passes over a right-padded buffer: each step
    appends the argmax at every row's last token (causal attention never sees the
    padding to its right)."""
    lengths = np.array([len(p) for p in prompts])
    tokens = np.zeros((len(prompts), lengths.max() + max_new), np.int32)
    for row, prompt in enumerate(prompts):
        tokens[row, :len(prompt)] = prompt
    rows = np.arange(len(prompts))
    for _ in range(max_new):
        logits = np.asarray(forward(tokens, np.arange(tokens.shape[1])[None] < lengths[:, None]))
        tokens[rows, lengths] = logits[rows, lengths - 1].argmax(-1)
        lengths = lengths + 1
    return [tokens[row, len(p):len(p) + max_new].tolist() for row, p in enumerate(prompts)]


def logits_of_continuations(forward, prompts, outputs):
    """Full-forward logits [new token, vocab] that predicted each generated token."""
    full = [list(p) + list(o) for p, o in zip(prompts, outputs)]
    tokens = np.zeros((len(full), max(map(len, full))), np.int32)
    for row, sequence in enumerate(full):
        tokens[row, :len(sequence)] = sequence
    mask = tokens != 0
    logits = np.asarray(forward(tokens, mask))
    return [logits[row, len(p) - 1:len(p) - 1 + len(o)] for row, (p, o)
            in enumerate(zip(prompts, outputs))]


@pytest.fixture(scope="module")
def gemma():
    model, params = Gemma3(CONFIG), {"params": random_backbone(CONFIG)}
    forward = jax.jit(lambda t, m: model.apply(params, t, m))
    return model, params, forward


@pytest.fixture(scope="module")
def greedy_reference(gemma):
    _, _, forward = gemma
    return continue_greedily(forward, PROMPTS, MAX_NEW)


def test_greedy_generation_matches_full_forward_passes(gemma, greedy_reference):
    model, params, _ = gemma
    assert max(map(len, PROMPTS)) > CONFIG.sliding_window
    assert generate(model, params, PROMPTS, max_new_tokens=MAX_NEW) == greedy_reference


def test_cached_logits_match_full_forward_logits(gemma, greedy_reference):
    # Sharper than tokens: prefill and every decode step, teacher-forced on the greedy
    # tokens, give the full forward's logits. Prefill leaves junk past the shorter
    # prompts; decode must overwrite it before it is seen.
    model, params, forward = gemma
    lengths = np.array([len(p) for p in PROMPTS])
    block = 24
    tokens = np.zeros((len(PROMPTS), block), np.int32)
    for row, prompt in enumerate(PROMPTS):
        tokens[row, :len(prompt)] = prompt
    step = jax.jit(lambda tokens, start, cache: model.apply(
        params, model.apply(params, tokens, method=Gemma3.embed), start, cache,
        method=Gemma3.cached_hidden_states))
    to_logits = jax.jit(lambda h: model.apply(params, h, method=Gemma3.logits))
    cache = init_cache(CONFIG, len(PROMPTS), block + MAX_NEW)
    hidden, cache = step(tokens, np.zeros(len(PROMPTS), np.int32), cache)
    full = [list(p) + o for p, o in zip(PROMPTS, greedy_reference)]
    reference = logits_of_continuations(forward, PROMPTS, greedy_reference)
    prefill = np.asarray(to_logits(hidden))
    want_prompt = np.asarray(forward(tokens, np.arange(block)[None] < lengths[:, None]))
    for row, length in enumerate(lengths):
        np.testing.assert_allclose(prefill[row, :length], want_prompt[row, :length], atol=1e-4)
    for i in range(MAX_NEW - 1):
        last = np.array([[f[length + i]] for f, length in zip(full, lengths)], np.int32)
        hidden, cache = step(last, (lengths + i).astype(np.int32), cache)
        got = np.asarray(to_logits(hidden))[:, 0]
        for row in range(len(PROMPTS)):
            np.testing.assert_allclose(got[row], reference[row][i + 1], atol=1e-4)


def test_stop_ids_end_their_row_only(gemma, greedy_reference):
    model, params, _ = gemma
    # Tokens of rows 0 and 2's continuations (not their first) that row 1 never emits.
    stop = next(t for t in greedy_reference[0][1:] if t not in greedy_reference[1])
    other = next(t for t in greedy_reference[2][1:] if t not in greedy_reference[1] + [stop])
    outputs = generate(model, params, PROMPTS, max_new_tokens=MAX_NEW, stop_ids=[stop, other])
    for got, want in zip(outputs, greedy_reference):
        stops = [j for j, t in enumerate(want) if t in (stop, other)]
        assert got == (want[:stops[0] + 1] if stops else want)
    assert outputs[0][-1] == stop and len(outputs[0]) < MAX_NEW
    assert outputs[2][-1] == other and len(outputs[2]) < MAX_NEW
    assert len(outputs[1]) == MAX_NEW  # went on to max_new_tokens


def test_sampling_is_deterministic_per_seed(gemma):
    model, params, _ = gemma
    sample = lambda seed: generate(model, params, PROMPTS, max_new_tokens=MAX_NEW,
                                   temperature=1.5, seed=seed)
    first = sample(0)
    assert sample(0) == first
    assert sample(1) != first


def test_top_k_1_and_a_tiny_top_p_are_greedy(gemma, greedy_reference):
    model, params, _ = gemma
    assert generate(model, params, PROMPTS, max_new_tokens=MAX_NEW, temperature=1.5, top_k=1,
                    seed=3) == greedy_reference
    assert generate(model, params, PROMPTS, max_new_tokens=MAX_NEW, temperature=1.5, top_p=1e-6,
                    seed=3) == greedy_reference


def ranks_and_nucleus_sizes(forward, outputs, temperature, top_p):
    """Rank of every sampled token under its full-forward logits (0: the most likely),
    and the size of the top-p nucleus of those logits at that temperature."""
    ranks, nucleus = [], []
    for logits, sampled in zip(logits_of_continuations(forward, PROMPTS, outputs), outputs):
        order = np.argsort(-logits, axis=-1)
        ranks += [int(np.flatnonzero(o == t)[0]) for o, t in zip(order, sampled)]
        z = np.take_along_axis(logits, order, axis=-1) / temperature
        probs = np.exp(z - z.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        nucleus += (np.argmax(np.cumsum(probs, axis=-1) >= top_p, axis=-1) + 1).tolist()
    return np.array(ranks), np.array(nucleus)


def test_top_k_and_top_p_never_sample_outside_their_sets(gemma):
    model, params, forward = gemma
    hot = dict(max_new_tokens=MAX_NEW, temperature=4.0)
    # Unfiltered, such a hot temperature leaves the top 3 often: the check below can fail.
    free = [generate(model, params, PROMPTS, seed=s, **hot) for s in range(2)]
    ranks = np.concatenate([ranks_and_nucleus_sizes(forward, o, 4.0, 1.0)[0] for o in free])
    assert (ranks >= 3).mean() > 0.3, ranks
    top_k = [generate(model, params, PROMPTS, top_k=3, seed=s, **hot) for s in range(2)]
    ranks = np.concatenate([ranks_and_nucleus_sizes(forward, o, 4.0, 1.0)[0] for o in top_k])
    assert ranks.max() < 3 and (ranks > 0).any(), ranks
    for seed in range(2):
        outputs = generate(model, params, PROMPTS, top_p=0.3, seed=seed, **hot)
        ranks, nucleus = ranks_and_nucleus_sizes(forward, outputs, 4.0, 0.3)
        assert (ranks < nucleus).all(), (ranks, nucleus)
        assert (nucleus > 1).any()


def test_filter_keeps_top_k_then_the_smallest_nucleus():
    probs = np.array([[0.05, 0.5, 0.15, 0.3]], np.float32)
    kept = lambda top_k, top_p: np.isfinite(np.asarray(_filter_logits(
        jnp.log(probs), jnp.int32(top_k), jnp.float32(top_p))))[0].tolist()
    assert kept(0, 0.45) == [False, True, False, False]
    assert kept(0, 0.7) == [False, True, False, True]
    assert kept(0, 0.9) == [False, True, True, True]
    assert kept(0, 1.0) == [True] * 4
    assert kept(3, 1.0) == [False, True, True, True]
    assert kept(4, 1.0) == kept(9, 1.0) == [True] * 4
    assert kept(2, 0.9) == [False, True, False, True]  # 0.3 / 0.8 renormalised is needed


def test_arguments_are_checked(gemma):
    model, params, _ = gemma
    call = lambda **kw: generate(model, params, PROMPTS, **{"max_new_tokens": 4, **kw})
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\].*got 0"):
        call(top_p=0.0)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\].*got 1.5"):
        call(top_p=1.5)
    with pytest.raises(ValueError, match="top_k must be an int >= 0.*got -1"):
        call(top_k=-1)
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0, got -0.5"):
        call(temperature=-0.5)
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0, got nan"):
        call(temperature=float("nan"))
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\].*got nan"):
        call(top_p=float("nan"))
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1, got 0"):
        call(max_new_tokens=0)
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, params, [[2], []], max_new_tokens=4)
    with pytest.raises(ValueError, match="slots were given, but the model is a Gemma3"):
        call(slots=[{}] * len(PROMPTS))


# ELM: a tiny backbone with random adapters; prompts encoded as at inference time.
SPACES = {"movie": SpaceSpec(dim=6, max_slots=2), "user": SpaceSpec(dim=4)}
ENCODER = ExampleEncoder(byte_level_tokenizer(CONFIG.vocab_size), SPACES, num_soft_tokens=2,
                         max_length=48)
VECTORS = np.random.default_rng(0).normal(size=(4, 6)).round(3).tolist()
ELM_PROMPTS = [("Tell me about <movie>.", {"movie": VECTORS[0]}),
               ("<user> liked <movie:a> more than <movie:b>?",
                {"user": VECTORS[1][:4], "movie:a": VECTORS[2], "movie:b": VECTORS[3]}),
               ("Say hi", {})]


@pytest.fixture(scope="module")
def elm(gemma):
    model = ELM(CONFIG, space_dims({name: s.dim for name, s in SPACES.items()}),
                AdapterConfig(num_soft_tokens=2, hidden_dims=(16,), output_scale=3.0))
    adapters = jax.jit(lambda key: meta.unbox(init_adapters(model, key)))(jax.random.key(5))
    params = {"params": {"backbone": gemma[1]["params"], "adapters": adapters}}
    encoded = [ENCODER.encode_prompt(text, slots) for text, slots in ELM_PROMPTS]
    return model, params, [e["tokens"].tolist() for e in encoded], [e["slots"] for e in encoded]


def elm_reference(model, params, prompts, slots):
    stacked = {space: {key: np.stack([s[space][key] for s in slots]) for key in s0}
               for space, s0 in slots[0].items()}
    forward = jax.jit(lambda t, m: model.apply(params, {
        "tokens": t, "input_mask": m, "positions": positions_from_mask(m), "slots": stacked}))
    return continue_greedily(forward, prompts, MAX_NEW)


def copy_slots(slots):
    return [{space: {k: v.copy() for k, v in arrays.items()} for space, arrays in s.items()}
            for s in slots]


def test_elm_greedy_generation_with_slots_matches_full_forward_passes(elm):
    model, params, prompts, slots = elm
    assert max(map(len, prompts)) > CONFIG.sliding_window
    outputs = generate(model, params, prompts, max_new_tokens=MAX_NEW, slots=slots)
    assert outputs == elm_reference(model, params, prompts, slots)
    # Changing row 0's movie vector changes row 0's output, and only that.
    changed = copy_slots(slots)
    changed[0]["movie"]["vectors"][0] = -3 * changed[0]["movie"]["vectors"][0]
    other = generate(model, params, prompts, max_new_tokens=MAX_NEW, slots=changed)
    assert other[0] != outputs[0]
    assert other[1:] == outputs[1:]


def test_elm_masked_slots_write_nothing(elm):
    model, params, prompts, slots = elm
    outputs = generate(model, params, prompts, max_new_tokens=MAX_NEW, slots=slots)
    # Row 0 uses one movie slot of two and no user slot: aim the unused ones at real
    # prompt tokens (the last ones), with vectors that would show.
    junk = copy_slots(slots)
    assert not junk[0]["movie"]["mask"][1] and not junk[0]["user"]["mask"][0]
    end = len(prompts[0])
    junk[0]["movie"]["vectors"][1] = 10.0
    junk[0]["movie"]["positions"][1] = [end - 4, end - 3]
    junk[0]["user"]["vectors"][0] = -10.0
    junk[0]["user"]["positions"][0] = [end - 2, end - 1]
    assert generate(model, params, prompts, max_new_tokens=MAX_NEW, slots=junk) == outputs
    # Unmasked, the same junk changes the output: the check above can fail.
    junk[0]["movie"]["mask"][1] = True
    junk[0]["user"]["mask"][0] = True
    assert generate(model, params, prompts, max_new_tokens=MAX_NEW, slots=junk)[0] != outputs[0]


def test_elm_slot_arguments_are_checked(elm):
    model, params, prompts, slots = elm
    with pytest.raises(ValueError, match="got 2 slot dicts for 3 prompts"):
        generate(model, params, prompts, max_new_tokens=4, slots=slots[:2])
    missing = copy_slots(slots)
    del missing[2]["user"]
    with pytest.raises(ValueError, match=r"slots\[2\] has spaces \['movie'\].*every prompt"):
        generate(model, params, prompts, max_new_tokens=4, slots=missing)
    late = copy_slots(slots)
    late[0]["movie"]["positions"][0] = [30, 31]
    with pytest.raises(ValueError, match=r"slots\[0\]\['movie'\].*positions \[\[30, 31\]\].*"
                                         r"only \d+ tokens"):
        generate(model, params, prompts, max_new_tokens=4, slots=late)


def test_generation_beyond_the_backbones_context_fails_at_once(gemma):
    model, params, _ = gemma
    limit = CONFIG.context_length
    longest = max(map(len, PROMPTS))
    with pytest.raises(GenerationLengthError,
                       match=rf"max_new_tokens={limit} after a prompt of {longest} tokens "
                             rf"\(prompt 1\) needs {limit + longest} positions, beyond the "
                             rf"backbone's context of {limit} .*at most {limit - longest} new"):
        generate(model, params, PROMPTS, max_new_tokens=limit)


def test_answers_check_every_prompt_before_the_first_batch(elm, monkeypatch):
    model, params, _, _ = elm
    batches = []
    monkeypatch.setattr(answering, "generate", lambda *a, **kw: batches.append(a) or [[1]])
    short, long = Request("Say hi", {}), Request("Tell me about <movie>.", {"movie": VECTORS[0]})
    fits_short = CONFIG.context_length - len(ENCODER.encode_prompt("Say hi", {})["tokens"])
    with pytest.raises(GenerationLengthError, match=rf"max_new_tokens={fits_short} .*\(prompt 1\)"):
        answer(model, params["params"], ENCODER, [short, long],
               GenerationConfig(max_new_tokens=fits_short, batch_size=1))
    assert not batches  # the short prompt's batch was not generated first


@pytest.mark.slow
def test_sharded_greedy_generation_matches_one_device():
    env = dict(fake_devices_env(8),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "probes", "sampling_probe.py")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    assert out["fsdp 1x8x1"]["q_proj"] == [None, "fsdp", None, None]  # really sharded
    assert out["fsdp_tp 2x2x2"]["q_proj"] == [None, "fsdp", "tensor", None]
    assert out["fsdp 1x8x1"]["tokens"] == out["single"]
    assert out["fsdp_tp 2x2x2"]["tokens"] == out["single"]
