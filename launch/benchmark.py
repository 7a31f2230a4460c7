"""Speed benchmarks, each against a peer measured in the same run; prints a table.

  python -m launch.benchmark --suite=accelerator --out=benchmark.json
  python -m launch.benchmark --suite=training --config=configs/movielens_elm.py:cpu_quick
  python -m launch.benchmark --suite=sampling --config=configs/gemma3_270m.py --batch=8 \
      --prompt_length=32 --new_tokens=64

accelerator (elc/benchmarks/suite.py): the device's bf16 matmul peak and copy bandwidth;
numerics against float32 on the host; training tokens/s, MFU and peak memory of the 270M
and 1B shapes (random init) per stage, batch shape and attention implementation, beside
launch.plan's prediction; KV-cache decoding at batch 1, 32 and 256 against the HBM
floor; and Hugging Face transformers (torch.compile) at the same shapes where torch and
transformers are importable, with every ratio. Each case runs in its own process, under
--budget_s. On a machine without a GPU the same suite runs at tiny shapes.

training (elc/benchmarks/training.py): the config's real backbone and train data, stage 1
and stage 2, the old step (logits at every position of padded rows) against target-only
logits, + sequence packing, and a LoRA stage 2; examples/s and target tokens/s with the
ratios. Needs the config's data prepared (python -m launch.prepare_data).

validation (elc/benchmarks/example_validation.py): an example file of --lines lines (the
config's train file repeated) read and checked as training does before step 1, against
json.loads of every line alone. Needs the config's data prepared.

sampling: elc's KV-cache generation (one compiled while_loop) against the same model
generating by full recomputation, one compiled loop that re-runs the decoder over the
whole token buffer at every step (what a sampler without a cache does). Both decode
greedily from the same random prompts; the table gives the compile-inclusive first call,
the best of --repeats timed calls, new tokens per second and the speed-up ratio, and
checks that both produce the same tokens.
"""

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from elc.benchmarks.example_validation import run_validation_suite
from elc.benchmarks.training import run_training_suite, training_table
from elc.benchmarks.suite import (Settings, default_settings, parse_shapes, peer_available,
                                  run_suite, summary)
from elc.checkpoints.backbone import default_gguf_path, load_backbone
from elc.model.config import PRESETS
from elc.model.gemma import Gemma3, positions_from_mask
from elc.generation.sampler import generate
from elc.tokenizers.from_gguf import tokenizer_from_gguf
from launch.quiet_logs import quiet_third_party_logs

_SUITE = flags.DEFINE_enum("suite", "sampling",
                           ["sampling", "accelerator", "training", "validation"],
                           "Which benchmark.")
_LINES = flags.DEFINE_integer("lines", 1_000_000, "validation: lines of the example file.",
                              lower_bound=1)
_CONFIG = config_flags.DEFINE_config_file("config", None, "sampling, training: config file "
                                          "(configs/*.py).", lock_config=True)
_STEPS = flags.DEFINE_integer("steps", 4, "training: timed steps per stage and path (after one "
                              "untimed first step).")
_EXAMPLES_PER_ROW = flags.DEFINE_integer("examples_per_row", 4, "training: the packed paths' "
                                         "most examples per row.")
_OUT = flags.DEFINE_string("out", "benchmark_accelerator.json", "accelerator: JSON results file.")
_BUDGET = flags.DEFINE_float("budget_s", 480.0, "accelerator: seconds for all cases; cases that "
                             "no longer fit are reported as skipped.")
_CASE_TIMEOUT = flags.DEFINE_float("case_timeout_s", 300.0, "accelerator: seconds per case.")
_PRESETS = flags.DEFINE_list("presets", [], "accelerator: backbone presets (default: 270m,1b on "
                             "a GPU, tiny elsewhere).")
_SHAPES = flags.DEFINE_list("shapes", [], "accelerator: training batches ROWSxLENGTH (default: "
                            "16x1024,8x2048 on a GPU).")
_STAGES = flags.DEFINE_list("stages", [], "accelerator: stages (default: full,adapter).")
_ATTENTION = flags.DEFINE_list("attention", [], "accelerator: attention implementations "
                               "(default: xla,cudnn on a GPU, xla elsewhere).")
_DECODE_BATCHES = flags.DEFINE_list("decode_batches", [], "accelerator: decode batch sizes "
                                    "(default: 1,32,256 on a GPU).")
_PEER = flags.DEFINE_enum("peer", "auto", ["auto", "on", "off"], "accelerator: run the "
                          "transformers peer (auto: where torch and transformers import).")
_BATCH = flags.DEFINE_integer("batch", 8, "Prompts per batch.")
_PROMPT_LENGTH = flags.DEFINE_integer("prompt_length", 32, "Tokens per prompt (BOS included).")
_NEW_TOKENS = flags.DEFINE_integer("new_tokens", 64, "Tokens generated per prompt.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed calls after the first.")


@functools.partial(jax.jit, static_argnames=("model", "new_tokens"))
def _recompute_generate(model: Gemma3, params, tokens: jax.Array, new_tokens: int) -> jax.Array:
    """Greedy decoding without a cache: every step runs the decoder over the whole buffer."""
    batch, length = tokens.shape
    prompt_length = length - new_tokens

    def step(i, tokens):
        filled = prompt_length + i
        mask = jnp.broadcast_to(jnp.arange(length)[None, :] < filled, (batch, length))
        hidden = model.apply(params, model.apply(params, tokens, method=Gemma3.embed),
                             positions_from_mask(mask), mask, method=Gemma3.hidden_states)
        # Logits of the last filled position only, as a sampler would compute them.
        logits = model.apply(params, hidden[:, filled - 1], method=Gemma3.logits)
        return tokens.at[:, filled].set(jnp.argmax(logits, axis=-1).astype(tokens.dtype))

    return jax.lax.fori_loop(0, new_tokens, step, tokens)[:, prompt_length:]


def _timed(call, repeats: int) -> tuple[float, float, object]:
    """(first call's seconds, best of ``repeats`` later calls, the output)."""
    start = time.perf_counter()
    out = jax.block_until_ready(call())
    first = time.perf_counter() - start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(call())
        best = min(best, time.perf_counter() - start)
    return first, best, out


def _accelerator_settings() -> Settings:
    """The suite's defaults for this backend, with the flags' overrides."""
    peer = _PEER.value == "on" or (_PEER.value == "auto" and peer_available())
    settings = default_settings(peer)
    changes = {"peer": peer}
    if _PRESETS.value:
        unknown = [p for p in _PRESETS.value if p not in PRESETS]
        if unknown:
            raise app.UsageError(f"--presets: unknown {unknown}; expected some of {sorted(PRESETS)}")
        changes["presets"] = tuple(_PRESETS.value)
    if _SHAPES.value:
        try:
            changes["shapes"] = parse_shapes(_SHAPES.value)
        except ValueError as error:
            raise app.UsageError(f"--shapes: {error}") from None
    for flag, field, allowed in ((_STAGES, "stages", ("full", "adapter")),
                                 (_ATTENTION, "attentions", ("xla", "cudnn"))):
        bad = [v for v in flag.value if v not in allowed]
        if bad:
            raise app.UsageError(f"--{flag.name}: unknown {bad}; expected some of {allowed}")
        if flag.value:
            changes[field] = tuple(flag.value)
    if _DECODE_BATCHES.value:
        try:
            batches = tuple(int(b) for b in _DECODE_BATCHES.value)
        except ValueError:
            batches = ()
        if not batches or min(batches) < 1:
            raise app.UsageError(f"--decode_batches must be positive integers, got "
                                 f"{_DECODE_BATCHES.value}")
        changes["decode_batches"] = batches
    return dataclasses.replace(settings, **changes)


def _run_accelerator_suite() -> None:
    if _BUDGET.value <= 0 or _CASE_TIMEOUT.value <= 0:
        raise app.UsageError("--budget_s and --case_timeout_s must be > 0")
    settings = _accelerator_settings()
    report = run_suite(settings, _BUDGET.value, _OUT.value, _CASE_TIMEOUT.value)
    print(summary(report))
    print(f"results: {_OUT.value}")


def _run_validation_suite() -> None:
    backbone = _CONFIG.value.backbone
    if backbone.format == "gguf":  # the tokenizer alone, without dequantising the weights
        from gguf import GGUFReader
        tokenizer = tokenizer_from_gguf(GGUFReader(backbone.path or default_gguf_path()))
    else:
        tokenizer = load_backbone(backbone).tokenizer
    rows = run_validation_suite(_CONFIG.value, tokenizer, _LINES.value)
    print(f"{_LINES.value:,} lines of {_CONFIG.value.data.train} (repeated)")
    print("| what | seconds | lines/s | / floor |\n|---|---|---|---|")
    floor = rows[0]["seconds"]
    for row in rows:
        print(f"| {row['what']} | {row['seconds']:.2f} | {row['lines_per_second']:,.0f} | "
              f"{row['seconds'] / floor:.2f}x |")


def _run_training_suite() -> None:
    try:
        results = run_training_suite(_CONFIG.value, _STEPS.value, _EXAMPLES_PER_ROW.value)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    print(f"{jax.devices()[0].device_kind}, jax {jax.__version__}, batch "
          f"{_CONFIG.value.data.batch_size} x {_CONFIG.value.data.max_length}")
    print(training_table(results))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_third_party_logs()
    if _SUITE.value == "accelerator":
        _run_accelerator_suite()
        return
    if _CONFIG.value is None:
        example = {"training": "movielens_elm.py:cpu_quick", "validation": "movielens_elm.py:cpu_quick"
                   }.get(_SUITE.value, "gemma3_270m.py")
        raise app.UsageError(f"--suite={_SUITE.value} needs --config (e.g. configs/{example})")
    if _SUITE.value == "training":
        _run_training_suite()
        return
    if _SUITE.value == "validation":
        _run_validation_suite()
        return
    batch, prompt_length, new_tokens = _BATCH.value, _PROMPT_LENGTH.value, _NEW_TOKENS.value
    for name, value in (("batch", batch), ("prompt_length", prompt_length),
                        ("new_tokens", new_tokens), ("repeats", _REPEATS.value)):
        if value < 1:
            raise app.UsageError(f"--{name} must be >= 1, got {value}")
    backbone = load_backbone(_CONFIG.value.backbone)
    model, params = backbone.model, backbone.variables
    rng = np.random.default_rng(0)
    # Random ordinary tokens after BOS (ids below 1000 avoid special and unused pieces).
    bos = backbone.tokenizer.bos_id if backbone.tokenizer is not None else 2
    prompts = np.concatenate([np.full((batch, 1), bos), rng.integers(
        1000, 100_000, size=(batch, prompt_length - 1))], axis=1).astype(np.int32)

    cached = _timed(lambda: generate(model, params, list(prompts), max_new_tokens=new_tokens),
                    _REPEATS.value)
    buffer = np.concatenate([prompts, np.zeros((batch, new_tokens), np.int32)], axis=1)
    recompute = _timed(lambda: _recompute_generate(model, params, jnp.asarray(buffer), new_tokens),
                       _REPEATS.value)
    same = np.array_equal(np.asarray(cached[2]), np.asarray(recompute[2]))
    tokens = batch * new_tokens
    print(f"device: {jax.devices()[0].device_kind} x {jax.device_count()}, backbone "
          f"{_CONFIG.value.backbone.format} {backbone.config.num_layers} layers, "
          f"{_CONFIG.value.backbone.dtype}; batch {batch}, prompt {prompt_length}, "
          f"{new_tokens} new tokens")
    print("| sampler | first call (s) | best call (s) | new tokens/s |")
    print("| --- | ---: | ---: | ---: |")
    for name, (first, best, _) in (("KV cache (elc.generation.sampler)", cached),
                                   ("full recompute (peer)", recompute)):
        print(f"| {name} | {first:.2f} | {best:.2f} | {tokens / best:.1f} |")
    print(f"speed-up of the KV cache: {recompute[1] / cached[1]:.2f}x; same greedy tokens: {same}")


if __name__ == "__main__":
    app.run(main)
