"""Plan before you pay: parameter counts and per-device memory of each training stage on a
target mesh, for the model the config trains.

  python -m launch.plan --config=configs/elm_270m.py --devices=1 --chip=h100
  python -m launch.plan --config=configs/elm_270m.py --config.backbone.preset=27b \
      --devices=64 --chip=v5p --config.mesh.data=1 --config.mesh.fsdp=64 \
      --config.backbone.remat_policy=full --config.data.batch_size=64 --config.data.max_length=512

Nothing is allocated and no checkpoint is read: the model is the config's (its backbone
preset, every space of ``data.spaces`` with the dimension in its table's header, every
adapter setting), and its train step is lowered and compiled for ``--devices`` fake CPU
devices from abstract shapes, on batches of the config's shape and ``max_slots``. Parameters, optimizer state and
the batch are counted exactly from their shardings; activations, gradients and other
temporaries come from the compiled step's memory analysis (XLA's CPU compiler; a TPU or
GPU compiler lays buffers out somewhat differently). The batch holds
``data.max_target_tokens`` target positions per row (the whole row when it is 0).

With --compare_full_logits (the default) each stage is compiled a second time with the
old loss, logits at every position of the row, and the table shows what the target-only,
chunked loss saves.
"""

import sys

import jax
from absl import app, flags
from ml_collections import config_flags

from elc.data.space_spec import model_spaces
from elc.train.build import stages_from_config
from elc.train.config_check import check_run_config
from elc.train.stage_program import memory_plan
from elc.train.token_statistics import full_logits_statistics

# Memory per chip in GiB (vendor figures).
CHIPS = {"v4": 32, "v5e": 16, "v5p": 95, "v6e": 32, "a100-40": 40, "a100-80": 80, "h100": 80,
         "h200": 141, "cpu": 0}

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_DEVICES = flags.DEFINE_integer("devices", 1, "Devices in the target mesh (faked on the CPU).",
                                lower_bound=1)
_CHIP = flags.DEFINE_enum("chip", "cpu", sorted(CHIPS), "Target chip, for the fits/does-not-fit line.")
_STAGE = flags.DEFINE_string("stage", "", "Stage to plan (default: every stage).")
_COMPARE = flags.DEFINE_bool("compare_full_logits", True, "Also plan each stage with logits at "
                             "every position (the old loss) and show the memory saved.")
flags.mark_flags_as_required(["config"])


def _gib(n: float) -> float:
    return n / 2**30


def plan(config, stage: str = "", compare_full_logits: bool = False) -> list[dict]:
    """Parameter counts and per-device bytes of each stage's train step under ``config``'s
    mesh (see ``elc.train.stage_program.memory_plan``); with ``compare_full_logits``, also
    ``full_logits_total``: the total of the same step with logits at every position."""
    rows = []
    for s in stages_from_config(config):
        if stage and s.name != stage:
            continue
        row = memory_plan(config, s)
        if compare_full_logits:
            row["full_logits_total"] = memory_plan(config, s, full_logits_statistics)["total"]
        rows.append(row)
    return rows


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # The fake devices, before anything starts JAX's CPU backend (absl has parsed the flags).
    jax.config.update("jax_num_cpu_devices", _DEVICES.value)
    config = _CONFIG.value
    # Tables not built yet are reported below, with the command that builds them.
    check_run_config(config, _DEVICES.value, require_files=False)
    try:
        rows = plan(config, _STAGE.value, _COMPARE.value)
    except FileNotFoundError as error:  # an embedding table not built yet
        config_arg = "--config=" + config_flags.get_config_filename(flags.FLAGS["config"])
        sys.exit(f"launch.plan: {str(error).replace('--config=...', config_arg)}")
    capacity = CHIPS[_CHIP.value]
    mesh = {a: config.mesh[a] for a in ("data", "fsdp", "tensor", "dcn_data")}
    print(f"backbone {config.backbone.preset} ({config.backbone.param_dtype} params, "
          f"{config.backbone.dtype} compute, remat {config.backbone.remat_policy}); "
          f"batch {config.data.batch_size}x{config.data.max_length}; "
          f"{jax.device_count()} devices, mesh {mesh}, rules {config.mesh.rules}")
    print("spaces: " + ", ".join(f"{s.name} (dim {s.dim}, {s.max_slots} slots)"
                                 for s in model_spaces(config.data)))
    for r in rows:
        print(f"stage {r['stage']}: {r['trainable_parameters']} trainable of "
              f"{r['total_parameters']} parameters")
    compare = _COMPARE.value
    print("| stage | params GiB | optimizer GiB | batch GiB | temporaries GiB | total GiB/device |"
          + (" with full logits GiB | saved |" if compare else "")
          + (f" fits {_CHIP.value} ({capacity} GiB)? |" if capacity else ""))
    print("|---|---|---|---|---|---|" + ("---|---|" if compare else "")
          + ("---|" if capacity else ""))
    for r in rows:
        line = (f"| {r['stage']} | {_gib(r['params']):.3f} | {_gib(r['optimizer']):.3f} | "
                f"{_gib(r['batch']):.4f} | {_gib(r['temporaries']):.3f} | {_gib(r['total']):.3f} |")
        if compare:
            old = r["full_logits_total"]
            line += f" {_gib(old):.3f} | {100 * (1 - r['total'] / old):.0f}% |"
        if capacity:
            line += " yes |" if _gib(r["total"]) <= capacity else " NO |"
        print(line)


if __name__ == "__main__":
    app.run(main)
