"""Benchmarks. Results go to BENCHMARKS.md with the machine named.

  python -m launch.benchmark --config=configs/elm_270m.py --suite=stage_memory

stage_memory: compiles the train step of every stage for the configured backbone size
and batch (from abstract shapes: nothing is allocated) and reports the bytes the
compiled step needs (arguments = params + optimizer state + batch, and temporaries),
so the saving of a frozen backbone is measured, not estimated.
"""

import platform

import jax
import jax.numpy as jnp
from absl import app, flags
from flax.core import meta
from ml_collections import config_flags

from elc.model.config import get_preset
from elc.model.elm import ELM, AdapterConfig, init_adapters, space_dims
from elc.model.gemma import Gemma3
from elc.train.optimizer import learning_rate_schedule, make_optimizer
from elc.train.state import create_state
from elc.train.step import make_train_step
from elc.train.trainer import stages_from_config

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_SUITE = flags.DEFINE_enum("suite", "stage_memory", ["stage_memory"], "What to measure.")
flags.mark_flags_as_required(["config"])


def _abstract_batch(batch_size: int, length: int, dim: int) -> dict:
    shape = jax.ShapeDtypeStruct
    return {"tokens": shape((batch_size, length), jnp.int32),
            "input_mask": shape((batch_size, length), jnp.bool_),
            "positions": shape((batch_size, length), jnp.int32),
            "targets": shape((batch_size, length), jnp.int32),
            "loss_mask": shape((batch_size, length), jnp.float32),
            "slots": {"vec": {"vectors": shape((batch_size, 1, dim), jnp.float32),
                              "mask": shape((batch_size, 1), jnp.bool_),
                              "positions": shape((batch_size, 1, 1), jnp.int32)}}}


def _gib(n: float) -> str:
    return f"{n / 2**30:.3f}"


def stage_memory(config) -> None:
    backbone_config = get_preset(config.backbone.preset, dtype=config.backbone.dtype,
                                 param_dtype=config.backbone.param_dtype,
                                 remat_policy=config.backbone.remat_policy)
    dim = config.data.synthetic.dim
    elm = ELM(backbone_config, space_dims({"vec": dim}),
              AdapterConfig(num_soft_tokens=config.model.adapter.num_soft_tokens,
                            hidden_dims=tuple(config.model.adapter.hidden_dims)))

    def init_params():
        backbone = Gemma3(backbone_config).init(jax.random.key(0), jnp.zeros((1, 1), jnp.int32))
        return {"backbone": meta.unbox(backbone["params"]),
                "adapters": meta.unbox(init_adapters(elm, jax.random.key(1)))}

    params = jax.eval_shape(init_params)
    batch = _abstract_batch(config.data.batch_size, config.data.max_length, dim)
    print(f"machine: {platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}, "
          f"jax {jax.__version__}; backbone {config.backbone.preset}, batch "
          f"{config.data.batch_size}x{config.data.max_length}, dtype {backbone_config.dtype}")
    print("| stage | trainable params | optimizer state GiB | step arguments GiB | "
          "step temporaries GiB | step total GiB |")
    print("|---|---|---|---|---|---|")
    for stage in stages_from_config(config):
        optimizer = make_optimizer(stage.optimizer)
        state = jax.eval_shape(lambda p: create_state(p, list(stage.trainable), optimizer, 0,
                                                      jax.random.key_data(jax.random.key(0))),
                               params)
        step = jax.jit(make_train_step(elm, optimizer, learning_rate_schedule(stage.optimizer), 0,
                                       config.train.grad_accum_steps), donate_argnums=0)
        stats = step.lower(state, batch).compile().memory_analysis()
        trainable = sum(x.size for x in jax.tree_util.tree_leaves(state.trainable))
        opt_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(state.opt_state))
        total = stats.argument_size_in_bytes + stats.temp_size_in_bytes
        print(f"| {stage.name} | {trainable:,} | {_gib(opt_bytes)} | "
              f"{_gib(stats.argument_size_in_bytes)} | {_gib(stats.temp_size_in_bytes)} | "
              f"{_gib(total)} |")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if _SUITE.value == "stage_memory":
        stage_memory(_CONFIG.value)


if __name__ == "__main__":
    app.run(main)
