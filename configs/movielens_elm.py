"""The paper's domain: an ELM over MovieLens movies and users on the real Gemma 3 270M.

The whole job (prepare data, both stages, evaluation, report) is one command:

  python -m launch.pipeline --config=configs/movielens_elm.py --workdir=workdir/movielens_elm

or step by step:

  python -m launch.prepare_data --config=configs/movielens_elm.py     # once: embeddings + tasks
  python -m launch.train --config=configs/movielens_elm.py --workdir=/tmp/movielens_elm
  python -m launch.eval --config=configs/movielens_elm.py --workdir=/tmp/movielens_elm

Variants, chosen by the suffix of the config path:
  ``:full``       all tasks, longer sequences, thousands of steps; for a GPU or TPU.
  ``:cpu_quick``  the movie-description tasks plus two user tasks, a few dozen steps and a
                  small evaluation: about half an hour on 2 CPU cores.
  ``:auto``       (or no suffix) ``full`` where JAX has a GPU or TPU, else ``cpu_quick``.

Data come from the ML-100k files inside the recbole wheel unless prepare.source says
otherwise (grouplens: a GroupLens directory in prepare.path; tfds: TFDS movielens).
Everything lands in prepare.out_dir, which data.* read.
"""

from ml_collections import config_dict

from elc.projects.movielens.tasks import TASKS
from elc.distributed import accelerator_available
from elc.train.default_config import elm_config

VARIANTS = ("auto", "full", "cpu_quick")
QUICK_TASKS = ("movie_identity", "movie_genres", "movie_era", "movie_summary",
               "user_profile", "user_demographics")


def get_config(arg: str | None = None):
    variant = arg or "auto"
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} of configs/movielens_elm.py; expected one "
                         f"of {VARIANTS}")
    if variant == "auto":
        variant = "full" if accelerator_available() else "cpu_quick"
    quick = variant == "cpu_quick"
    tasks = QUICK_TASKS if quick else tuple(TASKS)

    config = elm_config()
    config.variant = variant
    out_dir = config_dict.FieldReference("data/movielens")
    config.prepare = config_dict.ConfigDict(dict(
        source="recbole", path="", out_dir=out_dir, seed=0,
        holdout_movies=0.1, holdout_users=0.1,      # whole entities held out for eval
        movie_space="movie_behavioural",             # or movie_semantic
        tasks=tasks, examples_per_entity=1,
    ))
    # Mixing: task -> fraction of its examples kept, e.g. --config.prepare.weights.movie_era=0.5
    config.prepare.weights = config_dict.ConfigDict({name: 1.0 for name in tasks})
    config.prepare.als = config_dict.ConfigDict(dict(dim=64, regularization=0.1, alpha=10.0,
                                                     iterations=15))
    config.data.update(source="jsonl", train=out_dir + "/train.jsonl",
                       eval=out_dir + "/eval.jsonl", max_length=96 if quick else 160,
                       batch_size=8 if quick else 32, eval_batch_size=8 if quick else 32)
    config.data.spaces = config_dict.ConfigDict({
        name: dict(table=out_dir + f"/{name}.npz", ids="", dim=0, max_slots=2)
        for name in ("movie_behavioural", "movie_semantic", "user_behavioural")})
    if not quick:
        # bf16 matmuls with float32 master weights.
        config.backbone.update(dtype="bfloat16", param_dtype="float32")
    config.train.update(log_every=5 if quick else 50, eval_every=1000,
                        max_eval_batches=8 if quick else 16, checkpoint_every=20 if quick else 500)
    config.stage.adapter.update(steps=60 if quick else 1500, learning_rate=1e-3,
                                warmup_steps=6 if quick else 100)
    config.stage.full.update(steps=60 if quick else 1500, learning_rate=3e-5 if quick else 2e-5,
                             warmup_steps=6 if quick else 100)

    config.eval = config_dict.ConfigDict(dict(
        tasks=(),                        # empty: prepare.tasks
        examples_per_task=12 if quick else 128,
        samples_per_task=3,              # examples shown in the report
        max_new_tokens=64 if quick else 112,
        batch_size=32 if quick else 128,
        seed=0,
        ridge_examples=400 if quick else 2000,  # training examples per task for the BC map
        ridge_l2=1.0,
        interpolation_task="movie_summary",
        interpolation_pairs=3 if quick else 16,
        interpolation_weights=(0.0, 0.25, 0.5, 0.75, 1.0),
        cav_task="user_profile",
        cav_genres=("Comedy", "Horror") if quick else ("Comedy", "Horror", "Romance", "Sci-Fi"),
        cav_amounts=(0.0, 1.0, 2.0) if quick else (0.0, 0.5, 1.0, 1.5, 2.0),
        cav_users=6 if quick else 64,
    ))
    return config
