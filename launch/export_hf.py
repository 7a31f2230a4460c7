"""Writes a Gemma 3 backbone as a Hugging Face Gemma3ForCausalLM directory: the configured
one, or with --workdir the backbone an ELM run trained (at the end of --stage, default the
last; LoRA pairs merged into their kernels). The adapters are not part of the export.

  python -m launch.export_hf --config=configs/gemma3_270m.py --out=/tmp/gemma3-270m-hf
  python -m launch.export_hf --config=configs/gemma3_270m.py --out=DIR \
      --config.backbone.format=orbax --config.backbone.preset=1b --config.backbone.path=CKPT
  python -m launch.export_hf --config=configs/movielens_elm.py --workdir=workdir/movielens_elm \
      --out=DIR

The directory holds config.json, model.safetensors and, when the backbone has one,
tokenizer.model; transformers' from_pretrained reads it as it is.
"""

import dataclasses
import os

import flax.linen as nn
import jax
from absl import app, flags
from ml_collections import config_flags

from elc.checkpoints.backbone import backbone_weights, load_backbone
from elc.checkpoints.hf_safetensors import save_hf
from elc.train.trainer import restore_stage_params, setup_run

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_OUT = flags.DEFINE_string("out", None, "Output directory (created; must be empty if it exists).")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16", "float16"],
                           "Storage dtype of the exported tensors.")
_WORKDIR = flags.DEFINE_string("workdir", "", "A training run's workdir: export the backbone it "
                                "trained instead of the configured one.")
_STAGE = flags.DEFINE_string("stage", "", "With --workdir: the stage whose end to export "
                             "(default: the last).")
flags.mark_flags_as_required(["config", "out"])


def _trained_backbone(config, workdir: str, stage: str):
    """The configured backbone with the params at the end of ``stage`` of ``workdir``."""
    run = setup_run(config)
    stage = stage or run.stages[-1].name
    with jax.set_mesh(run.mesh), nn.logical_axis_rules(run.rules):
        params = restore_stage_params(config, workdir, run, stage)
    return dataclasses.replace(run.backbone, params=jax.device_get(params["backbone"]))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    out = _OUT.value
    if os.path.isdir(out) and os.listdir(out):
        raise app.UsageError(f"--out {out} exists and is not empty")
    if _STAGE.value and not _WORKDIR.value:
        raise app.UsageError("--stage needs --workdir (the run whose stage to export)")
    if _WORKDIR.value:
        try:
            backbone = _trained_backbone(_CONFIG.value, _WORKDIR.value, _STAGE.value)
        except (ValueError, FileNotFoundError) as error:
            raise app.UsageError(str(error)) from None
    else:
        backbone = load_backbone(_CONFIG.value.backbone)
    save_hf(out, backbone.config, backbone_weights(backbone), dtype=_DTYPE.value)
    if backbone.tokenizer is not None:
        backbone.tokenizer.save(os.path.join(out, "tokenizer.model"))
    print(f"wrote {sorted(os.listdir(out))} to {out}")


if __name__ == "__main__":
    app.run(main)
