"""A tiny random backbone learning the synthetic naming task, for tests and quick demos.

N random prototype vectors each have a name; a prompt holds a noisy copy of one
prototype as a soft token and the target is its name; held-out examples use fresh noise.

  python -m launch.train --config=configs/tiny_elm.py --workdir=/tmp/tiny_elm
"""

from elc.config_variants import config_variant
from elc.train.default_config import elm_config


def get_config(arg: str | None = None):
    config_variant(arg, (), "configs/tiny_elm.py")  # takes no variant suffix
    config = elm_config()
    config.backbone.update(format="random", preset="tiny", tokenizer="byte")
    config.model.adapter.hidden_dims = (64,)
    config.data.update(max_length=32, batch_size=32, eval_batch_size=32)
    config.stage.adapter.update(steps=100, learning_rate=3e-3)
    config.stage.full.update(steps=200, learning_rate=1e-3, warmup_steps=20)
    return config
