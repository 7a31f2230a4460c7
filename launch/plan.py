"""Plan before you pay: per-device memory of a training stage on a target mesh.

  python -m launch.plan --config=configs/elm_270m.py --devices=1 --chip=h100
  python -m launch.plan --config=configs/elm_270m.py --config.backbone.preset=27b \
      --devices=64 --chip=v5p --config.mesh.data=1 --config.mesh.fsdp=64 \
      --config.backbone.remat_policy=full --config.data.batch_size=64 --config.data.max_length=512

Nothing is allocated and no checkpoint is read: the train step is lowered and compiled
for ``--devices`` fake CPU devices from abstract shapes. Parameters, optimizer state and
the batch are counted exactly from their shardings; activations, gradients and other
temporaries come from the compiled step's memory analysis (XLA's CPU compiler; a TPU or
GPU compiler lays buffers out somewhat differently).
"""

import os
import sys

# Fake devices must be requested before JAX starts.
_DEVICES = next((int(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--devices=")), 1)
if _DEVICES > 1:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + f" --xla_force_host_platform_device_count={_DEVICES}")

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from absl import app, flags  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from elc.model.config import get_preset  # noqa: E402
from elc.model.elm import ELM, AdapterConfig, init_adapters, space_dims  # noqa: E402
from elc.model.gemma import Gemma3  # noqa: E402
from elc.sharding import (batch_sharding, logical_rules, make_mesh, strip_boxes,  # noqa: E402
                          tree_shardings)
from elc.train.optimizer import learning_rate_schedule, make_optimizer  # noqa: E402
from elc.train.state import create_state  # noqa: E402
from elc.train.step import make_train_step  # noqa: E402
from elc.train.trainer import stages_from_config  # noqa: E402

# Memory per chip in GiB (vendor figures).
CHIPS = {"v4": 32, "v5e": 16, "v5p": 95, "v6e": 32, "a100-40": 40, "a100-80": 80, "h100": 80,
         "h200": 141, "cpu": 0}

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
flags.DEFINE_integer("devices", 1, "Devices in the target mesh (faked on the CPU).")
_CHIP = flags.DEFINE_enum("chip", "cpu", sorted(CHIPS), "Target chip, for the fits/does-not-fit line.")
_STAGE = flags.DEFINE_string("stage", "", "Stage to plan (default: every stage).")
flags.mark_flags_as_required(["config"])


def _gib(n: float) -> float:
    return n / 2**30


def _per_device_bytes(abstract, shardings) -> int:
    total = 0
    for leaf, sharding in zip(jax.tree_util.tree_leaves(abstract), jax.tree_util.tree_leaves(
            shardings, is_leaf=lambda x: isinstance(x, NamedSharding))):
        shard = sharding.shard_shape(leaf.shape)
        total += int(jnp.dtype(leaf.dtype).itemsize) * int(jnp.prod(jnp.array(shard or (1,))))
    return total


def plan(config) -> list[dict]:
    """Per-device bytes of each stage's train step under ``config``'s mesh."""
    backbone = get_preset(config.backbone.preset, dtype=config.backbone.dtype,
                          param_dtype=config.backbone.param_dtype,
                          remat_policy=config.backbone.remat_policy,
                          attention_impl=config.backbone.attention_impl)
    dim = config.data.synthetic.dim
    adapter = config.model.adapter
    elm = ELM(backbone, space_dims({"vec": dim}),
              AdapterConfig(num_soft_tokens=adapter.num_soft_tokens,
                            hidden_dims=tuple(adapter.hidden_dims)))
    mesh = make_mesh(config.mesh)
    rules = logical_rules(config.mesh.rules)
    rows, length = config.data.batch_size, config.data.max_length
    shape = jax.ShapeDtypeStruct
    batch = {"tokens": shape((rows, length), jnp.int32),
             "input_mask": shape((rows, length), jnp.bool_),
             "positions": shape((rows, length), jnp.int32),
             "targets": shape((rows, length), jnp.int32),
             "loss_mask": shape((rows, length), jnp.float32),
             "slots": {"vec": {"vectors": shape((rows, 1, dim), jnp.float32),
                               "mask": shape((rows, 1), jnp.bool_),
                               "positions": shape((rows, 1, adapter.num_soft_tokens), jnp.int32)}}}
    batch_shardings = jax.tree_util.tree_map(lambda x: batch_sharding(mesh, len(x.shape)), batch)
    rows_out = []
    for stage in stages_from_config(config):
        if _STAGE.value and stage.name != _STAGE.value:
            continue
        optimizer = make_optimizer(stage.optimizer)

        def init(stage=stage, optimizer=optimizer):
            params = {"backbone": Gemma3(backbone).init(jax.random.key(0), jnp.zeros(
                (1, 1), jnp.int32))["params"], "adapters": init_adapters(elm, jax.random.key(1))}
            return create_state(params, list(stage.trainable), optimizer, 0,
                                jax.random.key_data(jax.random.key(2)))

        boxed = jax.eval_shape(init)  # outside the mesh, as in the trainer
        with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
            shardings = tree_shardings(boxed, mesh, rules)
            state = jax.tree_util.tree_map(lambda x, s: shape(x.shape, x.dtype, sharding=s),
                                           strip_boxes(boxed), shardings)
            step = jax.jit(make_train_step(elm, optimizer, learning_rate_schedule(stage.optimizer),
                                           0, config.train.grad_accum_steps),
                           in_shardings=(shardings, batch_shardings),
                           out_shardings=(shardings, NamedSharding(mesh, PartitionSpec())),
                           donate_argnums=0)
            compiled = step.lower(state, batch).compile()
            stats = compiled.memory_analysis()
            params = _per_device_bytes(strip_boxes(boxed.trainable), shardings.trainable) + \
                _per_device_bytes(strip_boxes(boxed.frozen), shardings.frozen)
            optimizer_bytes = _per_device_bytes(strip_boxes(boxed.opt_state), shardings.opt_state)
            batch_bytes = _per_device_bytes(batch, batch_shardings)
            rows_out.append({"stage": stage.name, "params": params, "optimizer": optimizer_bytes,
                             "batch": batch_bytes, "temporaries": stats.temp_size_in_bytes,
                             "total": params + optimizer_bytes + batch_bytes
                             + stats.temp_size_in_bytes})
    return rows_out


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = _CONFIG.value
    rows = plan(config)
    capacity = CHIPS[_CHIP.value]
    mesh = {a: config.mesh[a] for a in ("data", "fsdp", "tensor", "dcn_data")}
    print(f"backbone {config.backbone.preset} ({config.backbone.param_dtype} params, "
          f"{config.backbone.dtype} compute, remat {config.backbone.remat_policy}); "
          f"batch {config.data.batch_size}x{config.data.max_length}; {_DEVICES} devices, "
          f"mesh {mesh}, rules {config.mesh.rules}")
    print("| stage | params GiB | optimizer GiB | batch GiB | temporaries GiB | total GiB/device |"
          + (f" fits {_CHIP.value} ({capacity} GiB)? |" if capacity else ""))
    print("|---|---|---|---|---|---|" + ("---|" if capacity else ""))
    for r in rows:
        line = (f"| {r['stage']} | {_gib(r['params']):.3f} | {_gib(r['optimizer']):.3f} | "
                f"{_gib(r['batch']):.4f} | {_gib(r['temporaries']):.3f} | {_gib(r['total']):.3f} |")
        if capacity:
            line += " yes |" if _gib(r["total"]) <= capacity else " NO |"
        print(line)


if __name__ == "__main__":
    app.run(main)
