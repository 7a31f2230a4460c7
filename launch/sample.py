"""Generates continuations of text prompts with a Gemma 3 backbone.

  python -m launch.sample --config=configs/gemma3_270m.py --prompt="The capital of France is"
  python -m launch.sample --config=configs/gemma3_270m.py --prompt="Hello" \
      --config.sample.temperature=0.8 --config.sample.max_new_tokens=64
"""

import time

from absl import app, flags, logging
from ml_collections import config_flags

from elc.checkpoints.backbone import load_backbone
from elc.sampling import generate

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_PROMPT = flags.DEFINE_multi_string("prompt", None, "Prompt text; repeat for a batch.")
flags.mark_flags_as_required(["config", "prompt"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = _CONFIG.value
    start = time.time()
    backbone = load_backbone(config.backbone)
    if backbone.tokenizer is None:
        raise app.UsageError("this backbone has no tokenizer; set --config.backbone.tokenizer")
    logging.info("loaded %s backbone in %.1fs", config.backbone.format, time.time() - start)
    tokenizer = backbone.tokenizer
    prompts = [tokenizer.encode(p) for p in _PROMPT.value]
    start = time.time()
    outputs = generate(backbone.model, backbone.variables, prompts,
                       max_new_tokens=config.sample.max_new_tokens,
                       temperature=config.sample.temperature, seed=config.sample.seed,
                       stop_ids=[tokenizer.eos_id] if config.sample.stop_at_eos else [])
    elapsed = time.time() - start
    for text, new in zip(_PROMPT.value, outputs):
        print(f"{text}{tokenizer.decode(new)}")
    new_tokens = sum(len(o) for o in outputs)
    logging.info("%d new tokens in %.1fs (%.1f tokens/s, compilation included)",
                 new_tokens, elapsed, new_tokens / elapsed)


if __name__ == "__main__":
    app.run(main)
