"""Writes the configured backbone as a Hugging Face Gemma3ForCausalLM directory.

  python -m launch.export_hf --config=configs/gemma3_270m.py --out=/tmp/gemma3-270m-hf
  python -m launch.export_hf --config=configs/gemma3_270m.py --out=DIR \
      --config.backbone.format=orbax --config.backbone.preset=1b --config.backbone.path=CKPT

The directory holds config.json, model.safetensors and, when the backbone has one,
tokenizer.model; transformers' from_pretrained reads it as it is.
"""

import os

from absl import app, flags
from ml_collections import config_flags

from elc.checkpoints.backbone import backbone_weights, load_backbone
from elc.checkpoints.hf_safetensors import save_hf

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_OUT = flags.DEFINE_string("out", None, "Output directory (created; must be empty if it exists).")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16", "float16"],
                           "Storage dtype of the exported tensors.")
flags.mark_flags_as_required(["config", "out"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    out = _OUT.value
    if os.path.isdir(out) and os.listdir(out):
        raise app.UsageError(f"--out {out} exists and is not empty")
    backbone = load_backbone(_CONFIG.value.backbone)
    save_hf(out, backbone.config, backbone_weights(backbone), dtype=_DTYPE.value)
    if backbone.tokenizer is not None:
        backbone.tokenizer.save(os.path.join(out, "tokenizer.model"))
    print(f"wrote {sorted(os.listdir(out))} to {out}")


if __name__ == "__main__":
    app.run(main)
