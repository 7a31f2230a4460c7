"""The ELM on the real Gemma 3 270M (the packaged GGUF), on the synthetic naming task.

A few steps of both stages on CPU (about 5 s a step on 2 cores):

  python -m launch.train --config=configs/elm_270m.py --workdir=/tmp/elm_270m \
      --config.stage.adapter.steps=10 --config.stage.full.steps=10

Other data: --config.data.source=jsonl with data.train / data.eval and data.spaces.
"""

from elc.config_variants import config_variant
from elc.train.default_config import elm_config


def get_config(arg: str | None = None):
    config_variant(arg, (), "configs/elm_270m.py")  # takes no variant suffix
    config = elm_config()
    config.data.update(max_length=32, batch_size=8, eval_batch_size=8)
    config.train.update(log_every=1, eval_every=1000, max_eval_batches=4, checkpoint_every=10)
    config.stage.adapter.update(steps=30, learning_rate=1e-3, warmup_steps=3)
    config.stage.full.update(steps=30, learning_rate=2e-5, warmup_steps=3)
    return config
