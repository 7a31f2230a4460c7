"""The generation phase of the MovieLens evaluation: every variant answers the held-out
prompts, and the trained model the text-only prompts, interpolations and CAV shifts; the
answers go to ``WORKDIR/eval/answers.jsonl`` (see :mod:`elc.evaluation.answers`).

Variants, each answering the same held-out prompts:
  * ``untrained``: the backbone with freshly initialised adapters (the training start);
  * one per training stage, with the parameters at the end of that stage;
  * ``text_only``: the last stage's model given the movie's title in place of its vector
    (the paper's comparison; movie tasks only);
  * ``reference``: the true target texts, the ceiling of the consistency metrics.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from typing import Callable, Sequence

import flax.linen as nn
import jax
import numpy as np

from elc.data.examples import Example
from elc.projects.movielens.tasks import TASKS
from elc.evaluation import concepts
from elc.host_memory import release_freed_host_memory
from elc.evaluation.answers import Answer, AnswersMeta, write_answers
from elc.generation.answering import GenerationConfig, Request, answer
from elc.evaluation.phases import eval_dir, generation_config, variant_params
from elc.projects.movielens.eval_data import (
    USER_BEHAVIOURAL, EvalData, entity, eval_tasks, generation_settings, genre_cav,
    held_out_examples, interpolation_space)
from elc.train.metrics_log import stage_end_evals
from elc.train.trainer import Run, setup_run


def _spaces(slots) -> list[str]:
    return sorted({key.split(":")[0] for key in slots})


@dataclasses.dataclass
class _Asker:
    """Answers requests with one variant's parameters."""

    run: Run
    params: dict
    generation: GenerationConfig
    variant: str

    def __call__(self, requests: Sequence[Request], label: str) -> list[str]:
        return answer(self.run.elm, self.params, self.run.pipeline.encoder, requests,
                      self.generation, label=f"{self.variant} {label}")


def _text_only(example: Example, data: EvalData) -> Request | None:
    """The prompt with each movie slot replaced by the movie's title; None if the example
    has a slot that is not a movie (a user has no name to give)."""
    prompt = example.prompt
    for key, value in example.slots.items():
        if not key.startswith("movie_") or not isinstance(value, str):
            return None
        prompt = prompt.replace(f"<{key}>", data.title(value))
    return Request(prompt, {})


def _held_out(variant: str, examples: dict[str, list[Example]],
              requests: dict[str, list[Request]], ask: Callable | None, label: str
              ) -> list[Answer]:
    """Answers to the requests of every task, asked in one stream (full batches); without
    ``ask``, the true targets (the reference)."""
    flat = [(key, i, r) for key, key_requests in requests.items()
            for i, r in enumerate(key_requests)]
    texts = (ask([r for _, _, r in flat], label) if ask
             else [examples[key][i].target for key, i, _ in flat])
    rows = []
    for (label, i, request), text in zip(flat, texts):
        example = examples[label][i]
        rows.append(Answer(variant, "held_out", example.task, request.prompt, dict(request.slots),
                           _spaces(request.slots), text, example=i,
                           origin=example.origin or None, entities=dict(example.slots),
                           target=example.target))
    return rows


def _interpolations(data: EvalData, examples: dict[str, list[Example]], ask: _Asker,
                    eval_config, movie_space: str) -> list[Answer]:
    """Answers about points between two held-out movies, weight by weight."""
    task = eval_config.interpolation_task
    movies = sorted({entity(e, "movie") for es in examples.values() for e in es
                     if TASKS[e.task].kind == "movie"}, key=int)
    rng = np.random.default_rng(eval_config.seed)
    pairs = [tuple(str(m) for m in rng.choice(movies, size=2, replace=False))
             for _ in range(eval_config.interpolation_pairs)]
    weights = list(eval_config.interpolation_weights)
    points = concepts.interpolate(data.rows(movie_space, [a for a, _ in pairs]),
                                  data.rows(movie_space, [b for _, b in pairs]), weights)
    phrasing = TASKS[task].prompts({"movie": movie_space})[0]
    asked = [(weights[w], pairs[p], Request(phrasing, {movie_space: points[w, p].tolist()}))
             for w in range(len(weights)) for p in range(len(pairs))]
    texts = ask([r for _, _, r in asked], "interpolation")
    return [Answer(ask.variant, "interpolation", task, r.prompt, r.slots, [movie_space], text,
                   pair=list(pair), weight=weight)
            for (weight, pair, r), text in zip(asked, texts)]


def _cavs(data: EvalData, ask: _Asker, eval_config) -> tuple[list[Answer], dict[str, dict]]:
    """Answers about held-out users moved along genre directions fitted on training users,
    and each direction with its training labels' counts."""
    task = eval_config.cav_task
    users = data.tables[USER_BEHAVIOURAL]
    eval_ids = sorted(data.split.eval_users)[:eval_config.cav_users]
    start = data.rows(USER_BEHAVIOURAL, eval_ids)
    amounts = list(eval_config.cav_amounts)
    phrasing = TASKS[task].prompts({"user": USER_BEHAVIOURAL})[0]
    rows, cavs = [], {}
    for genre in eval_config.cav_genres:
        direction, labels = genre_cav(data.ml, data.split, users, genre)
        cavs[genre] = {"direction": direction.tolist(), "positive_users": int(labels.sum()),
                       "train_users": len(labels)}
        shifted = concepts.shift(start, direction, amounts)
        asked = [(amounts[a], eval_ids[u], Request(phrasing,
                                                   {USER_BEHAVIOURAL: shifted[a, u].tolist()}))
                 for a in range(len(amounts)) for u in range(len(eval_ids))]
        texts = ask([r for _, _, r in asked], f"CAV {genre}")
        rows += [Answer(ask.variant, "cav", task, r.prompt, r.slots, [USER_BEHAVIOURAL], text,
                        user=str(user), genre=genre, amount=amount)
                 for (amount, user, r), text in zip(asked, texts)]
    return rows, cavs


def generate_answers(config, workdir: str) -> str:
    """Answers every variant's prompts for the run of ``config`` (a movielens_elm config)
    trained in ``workdir``; writes them with their header into ``WORKDIR/eval`` and returns
    the answers' path."""
    started = time.time()
    eval_config, prepare = config.eval, config.prepare
    tasks = eval_tasks(config)
    run = setup_run(config)
    data = EvalData.load(prepare)
    examples = held_out_examples(run.pipeline.eval, tasks, eval_config.examples_per_task,
                                 eval_config.seed)
    if not examples:
        raise ValueError(f"no held-out examples of tasks {tasks} in {config.data.eval}; the "
                         "examples need a 'task' field (prepare the data again)")
    requests = {task: [Request(e.prompt, e.slots) for e in es] for task, es in examples.items()}
    text_only = {task: [_text_only(e, data) for e in es] for task, es in examples.items()}
    text_only = {task: rs for task, rs in text_only.items() if None not in rs}
    generation = generation_config(eval_config)
    rows: list[Answer] = []
    cavs: dict[str, dict] = {}
    loaders = variant_params(config, workdir, run)
    with jax.set_mesh(run.mesh), nn.logical_axis_rules(run.rules):
        for index, (variant, load) in enumerate(loaders):
            ask = _Asker(run, load(), generation, variant)
            rows += _held_out(variant, examples, requests, ask, "held-out prompts")
            if index == len(loaders) - 1:  # the trained model: baselines and novel entities
                rows += _held_out("text_only", examples, text_only, ask, "text-only prompts")
                if eval_config.interpolation_pairs:
                    rows += _interpolations(data, examples, ask, eval_config,
                                            interpolation_space(config))
                if eval_config.cav_genres:
                    cav_rows, cavs = _cavs(data, ask, eval_config)
                    rows += cav_rows
            del ask
            release_freed_host_memory()  # the variant's params, before the next one loads
    rows += _held_out("reference", examples, requests, None, "")
    stage_evals = stage_end_evals(workdir)
    meta = AnswersMeta(
        settings=generation_settings(config),
        stages=[{"name": s.name, "steps": s.steps, "trainable": list(s.trainable_patterns),
                 "eval": stage_evals.get(s.name, {})} for s in run.stages],
        variants=[v for v, _ in loaders] + ["text_only", "reference"],
        tasks=list(examples), generation=dataclasses.asdict(generation), cav=cavs,
        seconds=round(time.time() - started, 1),
        devices=f"{jax.device_count()} x {jax.devices()[0].device_kind}",
        created=datetime.datetime.now().isoformat(timespec="seconds"))
    return write_answers(eval_dir(workdir), rows, meta)
