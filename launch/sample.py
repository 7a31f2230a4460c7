"""Generates text: continuations of prompts from a backbone, or an ELM's answers about vectors.

Text prompts:

  python -m launch.sample --config=configs/gemma3_270m.py --prompt="The capital of France is"
  python -m launch.sample --config=configs/gemma3_270m.py --prompt="Hello" \
      --config.sample.temperature=0.8 --config.sample.top_p=0.9 --config.sample.max_new_tokens=64

A trained MovieLens ELM (--workdir of the run, with its config), asked about vectors:

  python -m launch.sample --config=configs/movielens_elm.py --workdir=workdir/movielens_elm \
      --movie=50 --interpolate=50,181,0.5 --user=12 --cav=12,Horror,1.5

  --movie=ID               the movie's vector
  --interpolate=A,B[,W]    (1 - W) * vector(A) + W * vector(B), W = 0.5 by default
  --user=ID                the user's vector
  --cav=USER,GENRE,AMOUNT  the user moved AMOUNT x (mean user norm) along the direction of
                           liking GENRE (a concept activation vector fitted on training users)

Each is asked with the first phrasing of --movie_task / --user_task.

A trained describe ELM (configs/describe.py) describes entities of its table:

  python -m launch.sample --config=configs/describe.py --workdir=workdir/describe --entity=ID

  --entity=ID              the entity's vector, asked with the first describe phrasing
"""

import time

import flax.linen as nn
import jax
from absl import app, flags, logging
from ml_collections import config_flags

from elc.checkpoints.backbone import load_backbone
from elc.generation.answering import GenerationConfig, Request, answer
from elc.generation.sampler import GenerationLengthError, generate
from elc.projects.movielens import questions
from elc.train.trainer import restore_stage_params, setup_run
from launch.projects import config_project
from launch.quiet_logs import quiet_third_party_logs

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_PROMPT = flags.DEFINE_multi_string("prompt", [], "Prompt text; repeat for a batch.")
_WORKDIR = flags.DEFINE_string("workdir", "", "A trained ELM run: ask it about vectors.")
_STAGE = flags.DEFINE_string("stage", "", "Which stage's parameters (default: the last).")
_MOVIE = flags.DEFINE_multi_string("movie", [], "Movie id.")
_INTERPOLATE = flags.DEFINE_multi_string("interpolate", [], "A,B[,W]: movie interpolation.")
_USER = flags.DEFINE_multi_string("user", [], "User id.")
_CAV = flags.DEFINE_multi_string("cav", [], "USER,GENRE,AMOUNT: a user moved along a CAV.")
_ENTITY = flags.DEFINE_multi_string("entity", [], "Entity id (describe project).")
_MOVIE_TASK = flags.DEFINE_string("movie_task", "movie_summary", "Task asked about movies.")
_USER_TASK = flags.DEFINE_string("user_task", "user_profile", "Task asked about users.")
flags.mark_flags_as_required(["config"])


def _fields(flag: str, value: str, count: tuple[int, ...]) -> list[str]:
    fields = [f.strip() for f in value.split(",")]
    if len(fields) not in count:
        raise app.UsageError(f"--{flag}={value!r}: expected {' or '.join(map(str, count))} "
                             "comma-separated fields")
    return fields


def _number(flag: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise app.UsageError(f"--{flag}: {text!r} is not a number") from None


def _vector(flag: str, table, entity_id: str):
    """The vector of ``entity_id`` in ``table``; a usage error naming the flag if absent."""
    try:
        return table.lookup(entity_id)
    except ValueError as error:
        raise app.UsageError(f"--{flag}: {error}") from None


def _movielens_requests(config, run) -> list[tuple[str, Request]]:
    """(label, request) for every --movie, --interpolate, --user and --cav flag."""
    interpolations = []
    for value in _INTERPOLATE.value:
        fields = _fields("interpolate", value, (2, 3))
        weight = _number("interpolate", fields[2]) if len(fields) == 3 else 0.5
        interpolations.append((fields[0], fields[1], weight))
    cavs = []
    for value in _CAV.value:
        user, genre, amount = _fields("cav", value, (3,))
        cavs.append((user, genre, _number("cav", amount)))
    asked = questions.Questions(movies=_MOVIE.value, interpolations=interpolations,
                                users=_USER.value, cavs=cavs, movie_task=_MOVIE_TASK.value,
                                user_task=_USER_TASK.value)
    tables = {name: space.table for name, space in run.pipeline.spaces.items()}
    try:
        return questions.requests(asked, config.prepare, tables)
    except questions.QuestionError as error:
        where = "the config" if error.kind == "config" else f"--{error.kind}"
        raise app.UsageError(f"{where}: {error}") from None


def _describe_requests(run) -> list[tuple[str, Request]]:
    """(label, request) for every --entity flag of a describe run."""
    from elc.projects.describe import SPACE
    from elc.projects.describe.phrasings import PHRASINGS
    space = run.pipeline.spaces.get(SPACE)
    if space is None or space.table is None:
        raise app.UsageError(f"the config's data.spaces has no table for {SPACE!r}")
    for entity in _ENTITY.value:
        _vector("entity", space.table, entity)
    return [(f"entity {entity}", Request(PHRASINGS[0], {SPACE: entity}))
            for entity in _ENTITY.value]


def _sample_elm(config) -> None:
    try:
        project = config_project(config, "launch.sample --workdir")
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    movielens_flags = _MOVIE.value or _INTERPOLATE.value or _USER.value or _CAV.value
    if project == "describe":
        if movielens_flags:
            raise app.UsageError("--movie, --interpolate, --user and --cav ask a MovieLens ELM; "
                                 "a describe ELM takes --entity")
        if not _ENTITY.value:
            raise app.UsageError("give at least one --entity=ID")
    elif _ENTITY.value:
        raise app.UsageError("--entity asks a describe ELM (configs/describe.py); a MovieLens "
                             "ELM takes --movie, --interpolate, --user, --cav")
    run = setup_run(config)
    requests = _describe_requests(run) if project == "describe" else _movielens_requests(config, run)
    if not requests:
        raise app.UsageError("give at least one of --movie, --interpolate, --user, --cav")
    stage = _STAGE.value or run.stages[-1].name
    generation = GenerationConfig.from_sample_config(config.sample)
    with jax.set_mesh(run.mesh), nn.logical_axis_rules(run.rules):
        params = restore_stage_params(config, _WORKDIR.value, run, stage)
        texts = answer(run.elm, params, run.pipeline.encoder, [r for _, r in requests],
                       generation)
    for (label, request), text in zip(requests, texts):
        print(f"[{label}] {request.prompt}\n  {text}")


def _sample_text(config) -> None:
    if _MOVIE.value or _INTERPOLATE.value or _USER.value or _CAV.value or _ENTITY.value:
        raise app.UsageError("--movie, --interpolate, --user, --cav and --entity ask a trained "
                             "ELM: "
                             "give its --workdir")
    if not _PROMPT.value:
        raise app.UsageError("give --prompt (or --workdir to ask a trained ELM about vectors)")
    start = time.time()
    backbone = load_backbone(config.backbone)
    if backbone.tokenizer is None:
        raise app.UsageError("this backbone has no tokenizer; set --config.backbone.tokenizer")
    logging.info("loaded %s backbone in %.1fs", config.backbone.format, time.time() - start)
    tokenizer, sample = backbone.tokenizer, config.sample
    prompts = [tokenizer.encode(p) for p in _PROMPT.value]
    start = time.time()
    outputs = generate(backbone.model, backbone.variables, prompts,
                       max_new_tokens=sample.max_new_tokens, temperature=sample.temperature,
                       top_k=sample.top_k, top_p=sample.top_p, seed=sample.seed,
                       stop_ids=[tokenizer.eos_id] if sample.stop_at_eos else [])
    elapsed = time.time() - start
    for text, new in zip(_PROMPT.value, outputs):
        print(f"{text}{tokenizer.decode(new)}")
    new_tokens = sum(len(o) for o in outputs)
    logging.info("%d new tokens in %.1fs (%.1f tokens/s, compilation included)",
                 new_tokens, elapsed, new_tokens / elapsed)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_third_party_logs()
    try:
        if _WORKDIR.value:
            _sample_elm(_CONFIG.value)
        else:
            _sample_text(_CONFIG.value)
    except GenerationLengthError as error:  # found before generation starts
        raise app.UsageError(f"{error} (--config.sample.max_new_tokens)") from None


if __name__ == "__main__":
    app.run(main)
