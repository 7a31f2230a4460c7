"""Describe-the-entity ELM on embeddings you bring: a table of vectors and a JSONL of
{"id", "text"} descriptions (see elc/projects/describe).

  python -m elc.projects.describe.example --out=data/describe_example          # or your own
  python -m launch.prepare_data --config=configs/describe.py \
      --config.prepare.table=data/describe_example/table.npz \
      --config.prepare.texts=data/describe_example/texts.jsonl
  python -m launch.train --config=configs/describe.py --workdir=workdir/describe
  python -m launch.eval --config=configs/describe.py --workdir=workdir/describe
  python -m launch.sample --config=configs/describe.py --workdir=workdir/describe --entity=ID

prepare.table is an .npz with 'ids' and 'vectors', or an .npy of vectors with prepare.ids
(a .txt of one id per line or a .json list). Everything lands in prepare.out_dir, which
data.* read.
"""

from ml_collections import config_dict

from elc.config_variants import config_variant
from elc.train.default_config import elm_config

SPACE = "entity"  # elc.projects.describe.SPACE


def get_config(arg: str | None = None):
    config_variant(arg, (), "configs/describe.py")  # takes no variant suffix
    config = elm_config()
    config.project = "describe"
    out_dir = config_dict.FieldReference("data/describe")
    config.prepare = config_dict.ConfigDict(dict(
        table="",                 # .npz (ids + vectors) or .npy (+ ids)
        ids="",                   # ids file of an .npy table: .txt (one per line) or .json list
        texts="",                 # JSONL: {"id": ..., "text": ...} per line
        dim=0,                    # > 0: the dimension the vectors must have
        out_dir=out_dir,
        holdout=0.1,              # fraction of entities held out whole for evaluation
        seed=0,
        phrasings_per_entity=2,   # examples per entity, each with a different prompt
    ))
    config.data.update(source="jsonl", train=out_dir + "/train.jsonl",
                       eval=out_dir + "/eval.jsonl", max_length=128, batch_size=8,
                       eval_batch_size=8)
    config.data.spaces = config_dict.ConfigDict({
        SPACE: dict(table=out_dir + f"/{SPACE}.npz", ids="", dim=0, max_slots=1)})
    config.train.update(log_every=10, eval_every=1000, max_eval_batches=8,
                        checkpoint_every=100)
    config.stage.adapter.update(steps=200, learning_rate=1e-3, warmup_steps=20)
    config.stage.full.update(steps=200, learning_rate=3e-5, warmup_steps=20)
    config.eval = config_dict.ConfigDict(dict(
        entities=64,              # held-out entities asked (0: all), one prompt each
        max_new_tokens=64,
        batch_size=32,
        seed=0,
        sentence_encoder="",      # empty: the packaged all-MiniLM-L6-v2; or its directory
        samples=5,                # answers shown in report.md
    ))
    return config
