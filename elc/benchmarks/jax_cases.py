"""The measurements of the accelerator suite that run elc itself, one per process.

Each function measures one case on the default JAX backend and returns a dict of plain
numbers; ``elc.benchmarks.worker`` runs one of them in a fresh process, so that every
case starts with an empty device and its peak memory is its own.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from elc.model.elm import ELM
from elc.model.gemma import Gemma3
from elc.generation.sampler import generate
from elc.sharding import logical_rules, make_mesh, strip_boxes
from elc.train.build import build_elm, init_params, preset_backbone, stages_from_config
from elc.train.default_config import elm_config
from elc.train.stage_program import random_batch, stage_program
from elc.train.token_statistics import full_logits_statistics

ADAPTER_INPUT_DIM = 64  # width of the benchmark's embedding vectors


def case_config(preset: str, rows: int, length: int, stage: str = "full",
                attention: str = "xla", remat: str = "none", dtype: str = "bfloat16"):
    """The training config of one benchmark case: a random-init backbone at ``preset``'s
    shapes, float32 master weights, one stage, ``rows`` x ``length`` token batches."""
    config = elm_config()
    config.backbone.update(format="random", preset=preset, dtype=dtype, param_dtype="float32",
                           attention_impl=attention, remat_policy=remat)
    config.data.update(batch_size=rows, eval_batch_size=rows, max_length=length)
    config.data.synthetic.dim = ADAPTER_INPUT_DIM
    if stage not in config.stage:
        raise ValueError(f"stage {stage!r} is not one of the config's stages "
                         f"{sorted(config.stage.keys())}")
    config.train.stages = (stage,)
    return config


def peak_device_bytes() -> int | None:
    """Peak bytes in use on the first device since the process started (None where the
    backend keeps no statistics, as on CPU)."""
    stats = jax.local_devices()[0].memory_stats()
    return None if not stats else int(stats.get("peak_bytes_in_use", 0)) or None


def _best_seconds(call: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(call())
        best = min(best, time.perf_counter() - start)
    return best


def ceilings(matmul_size: int, copy_mib: int, repeats: int = 10) -> dict[str, float]:
    """The device's measured bfloat16 matrix-product rate (FLOP/s, an n x n x n product on
    random data) and copy bandwidth (bytes read + written per second), and which device
    and backend these are."""
    keys = jax.random.split(jax.random.key(0), 2)
    a = jax.random.normal(keys[0], (matmul_size, matmul_size), jnp.bfloat16)
    b = jax.random.normal(keys[1], (matmul_size, matmul_size), jnp.bfloat16)
    matmul = jax.jit(lambda a, b: a @ b)
    jax.block_until_ready(matmul(a, b))
    matmul_s = _best_seconds(lambda: matmul(a, b), repeats)
    source = jax.random.uniform(keys[0], (copy_mib * 2**20 // 4,), jnp.float32)
    copy = jax.jit(lambda x: x + 1.0)  # one read and one write per element
    jax.block_until_ready(copy(source))
    copy_s = _best_seconds(lambda: copy(source), repeats)
    return {"matmul_flops": 2.0 * matmul_size ** 3 / matmul_s,
            "copy_bytes_per_second": 2.0 * source.nbytes / copy_s,
            "matmul_size": matmul_size, "copy_mib": copy_mib,
            "device": jax.devices()[0].device_kind, "backend": jax.default_backend()}


def correctness(preset: str, rows: int, length: int) -> dict[str, Any]:
    """The device's bfloat16 numbers against float32 on the host CPU, same params and tokens.

    Returns the relative error ||device - host|| / ||host|| of the logits, the same for
    the fused cuDNN attention against XLA's on the device (GPU only), and the loss of one
    train step on the device beside the host's float32 loss of the same batch.
    """
    config = case_config(preset, rows, length)
    elm = build_elm(config)
    host = jax.devices("cpu")[0]
    batch = random_batch(config, seed=1)
    with jax.default_device(host):
        params = jax.jit(lambda: _fresh_params(elm))()
        host_elm = elm.clone(backbone_config=elm.backbone_config.replace(dtype="float32"))
        host_stats, host_logits = jax.jit(lambda p, b: (
            full_logits_statistics(host_elm, p, b), host_elm.apply({"params": p}, b)))(
                params, batch)
        host_logits = np.asarray(host_logits)
    device_params = jax.device_put(params, jax.devices()[0])

    def device_logits(model):
        return np.asarray(jax.jit(lambda p, b: model.apply({"params": p}, b))(device_params,
                                                                              batch))

    def relative(a, b):
        return float(np.linalg.norm(a - b) / np.linalg.norm(b))

    xla_logits = device_logits(elm)
    result = {"device": jax.devices()[0].device_kind, "logits_rel_error": relative(
        xla_logits, host_logits), "host_loss": float(host_stats["loss_sum"] / host_stats["tokens"])}
    if jax.default_backend() == "gpu":
        cudnn = elm.clone(backbone_config=elm.backbone_config.replace(attention_impl="cudnn"))
        result["cudnn_vs_xla_rel_error"] = relative(device_logits(cudnn), xla_logits)
    mesh = make_mesh(config.mesh)
    rules = logical_rules(config.mesh.rules)
    program = stage_program(config, elm, stages_from_config(config)[0], mesh, rules)
    state = program.init_state()
    state = state.replace(trainable=jax.device_put(params, program.state_shardings.trainable))
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        _, metrics = program.step(state, batch)
    result["device_train_loss"] = float(metrics["loss"])
    result["loss_rel_difference"] = abs(result["device_train_loss"] - result["host_loss"]) / \
        result["host_loss"]
    return result


def _fresh_params(elm: ELM) -> dict:
    """The planned model's random initial params, as ``stage_program``'s init draws them."""
    return strip_boxes(init_params(elm, jax.random.key(0)))


def train_speed(preset: str, rows: int, length: int, stage: str, attention: str = "xla",
                remat: str = "none", steps: int = 10) -> dict[str, Any]:
    """Tokens per second of ``stage``'s train step (every position of every row counts),
    its compile time, and the device's peak memory."""
    config = case_config(preset, rows, length, stage, attention, remat)
    elm = build_elm(config)
    mesh = make_mesh(config.mesh)
    rules = logical_rules(config.mesh.rules)
    program = stage_program(config, elm, stages_from_config(config)[0], mesh, rules)
    batch = jax.device_put(random_batch(config), program.batch_shardings)
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        start = time.perf_counter()
        compiled = program.step.lower(program.abstract_state, batch).compile()
        compile_seconds = time.perf_counter() - start
        state = program.init_state()
        for _ in range(2):  # warm-up
            state, metrics = compiled(state, batch)
        jax.block_until_ready(state)
        start = time.perf_counter()
        for _ in range(steps):
            state, metrics = compiled(state, batch)
        loss = float(metrics["loss"])  # waits for the last step
        jax.block_until_ready(state)
        seconds = (time.perf_counter() - start) / steps
    return {"tokens_per_second": rows * length / seconds, "step_seconds": seconds,
            "compile_seconds": compile_seconds, "peak_bytes": peak_device_bytes(), "loss": loss,
            "trainable_params": int(sum(x.size for x in jax.tree_util.tree_leaves(
                state.trainable)))}


def decode_speed(preset: str, batches: list[int], prompt_length: int, new_tokens: int,
                 repeats: int = 2) -> list[dict[str, Any]]:
    """New tokens per second of KV-cache generation (greedy, every row runs all
    ``new_tokens``) at each batch size, with bfloat16 weights as an inference server
    keeps them."""
    model = Gemma3(preset_backbone(case_config(preset, 1, prompt_length).backbone).replace(
        param_dtype="bfloat16"))
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 1), jnp.int32))
    rng = np.random.default_rng(0)
    results = []
    for batch in batches:
        prompts = [list(rng.integers(3, model.config.vocab_size, size=prompt_length))
                   for _ in range(batch)]

        def call(prompts=prompts):
            return generate(model, params, prompts, max_new_tokens=new_tokens)

        start = time.perf_counter()
        call()
        first = time.perf_counter() - start
        best = _best_seconds(call, repeats)
        results.append({"batch": batch, "tokens_per_second": batch * new_tokens / best,
                        "seconds": best, "first_call_seconds": first})
    return results
