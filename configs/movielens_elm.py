"""The paper's domain: an ELM over MovieLens movies and users on the real Gemma 3 270M.

  python -m launch.prepare_data --config=configs/movielens_elm.py     # once: embeddings + tasks
  python -m launch.train --config=configs/movielens_elm.py --workdir=/tmp/movielens_elm

Data come from the ML-100k files inside the recbole wheel unless prepare.source says
otherwise (grouplens: a GroupLens directory in prepare.path; tfds: TFDS movielens).
Everything lands in prepare.out_dir, which data.* read.
"""

from ml_collections import config_dict

from elc.data.tasks import TASKS
from elc.train.default_config import elm_config


def get_config(arg: str | None = None):
    del arg
    config = elm_config()
    out_dir = config_dict.FieldReference("data/movielens")
    config.prepare = config_dict.ConfigDict(dict(
        source="recbole", path="", out_dir=out_dir, seed=0,
        holdout_movies=0.1, holdout_users=0.1,      # whole entities held out for eval
        movie_space="movie_behavioral",             # or movie_semantic
        tasks=tuple(TASKS), examples_per_entity=1,
    ))
    # Mixing: task -> fraction of its examples kept, e.g. --config.prepare.weights.movie_era=0.5
    config.prepare.weights = config_dict.ConfigDict({name: 1.0 for name in TASKS})
    config.prepare.als = config_dict.ConfigDict(dict(dim=64, regularization=0.1, alpha=10.0,
                                                     iterations=15))
    config.data.update(source="jsonl", train=out_dir + "/train.jsonl",
                       eval=out_dir + "/eval.jsonl", max_length=128, batch_size=8,
                       eval_batch_size=8)
    config.data.spaces = config_dict.ConfigDict({
        name: dict(table=out_dir + f"/{name}.npz", ids="", dim=0, max_slots=2)
        for name in ("movie_behavioral", "movie_semantic", "user_behavioral")})
    config.train.update(log_every=5, eval_every=1000, max_eval_batches=8, checkpoint_every=50)
    config.stage.adapter.update(steps=100, learning_rate=1e-3, warmup_steps=10)
    config.stage.full.update(steps=100, learning_rate=2e-5, warmup_steps=10)
    return config
