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

from elc.config_variants import config_variant
from elc.projects.movielens.tasks import TASKS
from elc.distributed import accelerator_available
from elc.train.default_config import elm_config

VARIANTS = ("auto", "full", "cpu_quick")
QUICK_TASKS = ("movie_identity", "movie_genres", "movie_era", "movie_summary",
               "user_profile", "user_demographics")


def _shared(config, tasks) -> None:
    """Settings every variant shares, written once."""
    out_dir = config_dict.FieldReference("data/movielens")
    config.prepare = config_dict.ConfigDict(dict(
        source="recbole", path="", out_dir=out_dir, seed=0,
        holdout_movies=0.1, holdout_users=0.1,      # whole entities held out for eval
        # Movie tasks are asked about each of these spaces' vectors (users: behavioural).
        movie_spaces=("movie_behavioural", "movie_semantic"),
        tasks=tasks, examples_per_entity=1,
    ))
    # Mixing: task -> fraction of its examples kept, e.g. --config.prepare.weights.movie_era=0.5
    config.prepare.weights = config_dict.ConfigDict({name: 1.0 for name in tasks})
    config.prepare.als = config_dict.ConfigDict(dict(dim=64, regularization=0.1, alpha=10.0,
                                                     iterations=15))
    # Packed rows: about 2 examples per row at max_length 96 instead of 1 (examples are
    # about 36 tokens), so each step trains on twice the examples for the same arithmetic.
    config.data.update(source="jsonl", train=out_dir + "/train.jsonl",
                       eval=out_dir + "/eval.jsonl", examples_per_row=4)
    config.data.spaces = config_dict.ConfigDict({
        name: dict(table=out_dir + f"/{name}.npz", ids="", dim=0, max_slots=2, standardize=False)
        for name in ("movie_behavioural", "movie_semantic", "user_behavioural")})
    config.train.update(eval_every=1000)
    # Stage 1 at 1e-2: after 25 steps of cpu_quick the held-out loss was 3.20, against
    # 3.48 at 1e-3.
    config.stage.adapter.update(learning_rate=1e-2)
    # Stage 1 also trains rank-8 LoRA pairs on the attention projections (the backbone's
    # weights stay frozen; the pairs are merged into them for stage 2). Without them the
    # adapters had to teach the frozen model the answers' format as well as the vectors:
    # after cpu_quick's stage 1 the held-out loss was 2.67 with a vector gain of 0.029 nats
    # per token; with them 0.805 and 0.146, and semantic genre F1 0.808 against 0.250.
    config.stage.adapter.lora.rank = 8
    # In stage 2 the adapters keep learning at 10x the backbone's rate (30x: the same
    # held-out loss, behavioural genre F1 0.537 against 0.579 on cpu_quick).
    config.stage.full.update(lr_multipliers=(("adapters/.*", 10.0),))
    # Evaluation; its sizes (examples_per_task, max_new_tokens, batch_size, ridge_examples:
    # training examples per task for the BC map, interpolation_pairs, cav_genres,
    # cav_amounts, cav_users) are set by each variant.
    config.eval = config_dict.ConfigDict(dict(
        tasks=(),                        # empty: prepare.tasks
        samples_per_task=3,              # examples per task shown in the report
        seed=0,
        ridge_l2=1.0,
        interpolation_task="movie_summary",
        interpolation_space="",          # empty: the last of prepare.movie_spaces
        interpolation_weights=(0.0, 0.25, 0.5, 0.75, 1.0),
        cav_task="user_profile",
    ))


def _full(config) -> None:
    """All tasks, longer sequences, thousands of steps; for a GPU or TPU."""
    config.backbone.update(dtype="bfloat16", param_dtype="float32")  # bf16 matmuls, f32 master
    config.data.update(max_length=160, batch_size=32, eval_batch_size=32)
    config.train.update(log_every=50, max_eval_batches=16, checkpoint_every=500)
    config.stage.adapter.update(steps=1500, warmup_steps=100)
    config.stage.full.update(steps=1500, learning_rate=2e-5, warmup_steps=100)
    config.eval.update(examples_per_task=128, max_new_tokens=112, batch_size=128,
                       ridge_examples=2000, interpolation_pairs=16,
                       cav_genres=("Comedy", "Horror", "Romance", "Sci-Fi"),
                       cav_amounts=(0.0, 0.5, 1.0, 1.5, 2.0), cav_users=64)


def _cpu_quick(config) -> None:
    """A few tasks, short sequences, a few dozen steps, a small evaluation: about half an
    hour on 2 CPU cores."""
    config.data.update(max_length=96, batch_size=8, eval_batch_size=8)
    config.train.update(log_every=5, max_eval_batches=8, checkpoint_every=20)
    # Stage 1 is where the model learns to read its vectors (after 60 + 60 steps the
    # stage-2 model gave one answer to most prompts, stage 1 different ones), and its
    # steps cost about 60% of stage 2's; stage 2's training loss levels off after about
    # 25 steps.
    # Adapters start aligned with the answers' token embeddings, and stage 1 learns at
    # 1e-3: 20 steps of it left a held-out vector gain of 0.061 nats per target token,
    # against 0.007 at 3e-3 and 0.005 from a random init at 1e-2, which collapses to one
    # soft token for all vectors (held-out loss 3.28, 3.12 and 3.10).
    config.model.adapter.init = "aligned"
    config.stage.adapter.update(steps=80, warmup_steps=8, learning_rate=1e-3)
    # The 168M-parameter embedding table stays frozen: stage 2 steps take 9.4 s instead
    # of 12.2 s on 2 cores, at the same loss after 10 steps. After stage 1 with LoRA,
    # stage 2 at 3e-5 undid part of it (vector gain 0.146 -> 0.129, semantic genre F1
    # 0.808 -> 0.604); at 1e-5 the gain rose to 0.170 and genre F1 stayed at 0.729.
    config.stage.full.update(steps=30, learning_rate=1e-5, warmup_steps=3,
                             trainable=("adapters/.*", "backbone/(?!embedder/).*"))
    # 8 held-out prompts per task and movie space: 80 prompts per variant.
    config.eval.update(examples_per_task=8, max_new_tokens=64, batch_size=32,
                       ridge_examples=400, interpolation_pairs=3,
                       cav_genres=("Comedy", "Horror"), cav_amounts=(0.0, 1.0, 2.0), cav_users=6)


OVERRIDES = {"full": (tuple(TASKS), _full), "cpu_quick": (QUICK_TASKS, _cpu_quick)}


def get_config(arg: str | None = None):
    variant = config_variant(arg, VARIANTS, "configs/movielens_elm.py")
    if variant == "auto":
        variant = "full" if accelerator_available() else "cpu_quick"
    tasks, override = OVERRIDES[variant]
    config = elm_config()
    config.variant = variant
    _shared(config, tasks)
    override(config)
    return config
