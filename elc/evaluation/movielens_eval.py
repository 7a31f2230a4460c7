"""Evaluates a trained MovieLens ELM against its baselines, on held-out movies and users.

Variants, each answering the same held-out prompts:
  * ``untrained``: the backbone with freshly initialised adapters (the training start);
  * one per training stage, with the parameters at the end of that stage;
  * ``text_only``: the last stage's model given the movie's title in place of its vector
    (the paper's comparison; movie tasks only);
  * ``reference``: the true target texts, the ceiling of the consistency metrics.

Metrics per task (see :mod:`elc.evaluation.facts` and :mod:`elc.evaluation.consistency`):
exact facts; semantic consistency (MiniLM cosine between the answer and the movie's
semantic vector, and the movie's rank among all movies); behavioural consistency (the
answer mapped into the ALS space by a ridge regression fitted on training targets, then
the Spearman correlation of item scores and the recall of the true entity).

Novel entities: answers for interpolations between held-out movies' vectors, and for
held-out users moved along genre concept directions (CAVs) in user space.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import time
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import numpy as np
from absl import logging

from elc.data.embedding_table import EmbeddingTable
from elc.data.examples import Example
from elc.data.movielens import MovieLens, load_movielens
from elc.data.prepare_movielens import held_out_entities
from elc.data.tasks import TASKS, EntitySplit, task_data
from elc.embeddings.encoder import SentenceEncoder
from elc.evaluation import concepts, consistency
from elc.evaluation.facts import Catalogue, fact_metrics, liked_genres, mean_metrics
from elc.evaluation.generation import GenerationConfig, Request, answer
from elc.evaluation.report import write_report
from elc.train.trainer import Run, initial_params, restore_stage_params, setup_run

MOVIE_BEHAVIOURAL, USER_BEHAVIOURAL, MOVIE_SEMANTIC = (
    "movie_behavioral", "user_behavioral", "movie_semantic")
_SINGLE_ENTITY = ("movie", "user")  # task kinds whose answer describes one entity


@dataclasses.dataclass
class _Data:
    """What every variant is scored against, read once."""

    ml: MovieLens
    catalogue: Catalogue
    tables: dict[str, EmbeddingTable]
    examples: dict[str, list[Example]]  # task -> held-out examples answered by every variant
    text_vectors: SentenceEncoder


def _sample(examples: Sequence[Example], count: int, seed: int) -> list[Example]:
    """``count`` of ``examples`` (all if fewer), drawn without replacement, in file order."""
    if len(examples) <= count:
        return list(examples)
    picks = np.random.default_rng(seed).choice(len(examples), size=count, replace=False)
    return [examples[i] for i in sorted(picks)]


def _by_task(examples: Sequence[Example], tasks: Sequence[str], count: int, seed: int
             ) -> dict[str, list[Example]]:
    grouped: dict[str, list[Example]] = {task: [] for task in tasks}
    for example in examples:
        if example.task in grouped:
            grouped[example.task].append(example)
    return {task: _sample(found, count, seed) for task, found in grouped.items() if found}


def _entity(example: Example, key_prefix: str) -> str:
    """The entity id in the first slot whose key starts with ``key_prefix``."""
    return next(str(v) for k, v in example.slots.items() if k.startswith(key_prefix))


def _text_only(example: Example, ml: MovieLens) -> Request | None:
    """The prompt with each movie slot replaced by the movie's title; None if the example
    has a slot that is not a movie (a user has no name to give)."""
    prompt = example.prompt
    for key, value in example.slots.items():
        if not key.startswith("movie_") or not isinstance(value, str):
            return None
        prompt = prompt.replace(f"<{key}>", ml.movies[int(value)].full_title)
    return Request(prompt, {})


class _Scorer:
    """Scores answers of single-entity tasks: facts, semantic and behavioural consistency."""

    def __init__(self, data: _Data, train_examples: Sequence[Example], eval_config):
        self.data = data
        tables = data.tables
        self.movie_semantic = tables[MOVIE_SEMANTIC]
        self.ridge: dict[str, consistency.RidgeMap] = {}
        for task in data.examples:
            kind = TASKS[task].kind
            if kind not in _SINGLE_ENTITY:
                continue
            fit_on = _sample([e for e in train_examples if e.task == task],
                             eval_config.ridge_examples, eval_config.seed)
            if len(fit_on) < 2:
                logging.warning("no behavioural consistency for %s: %d training examples",
                                task, len(fit_on))
                continue
            space = self.behavioural_space(task)
            targets = np.stack([tables[space].lookup(_entity(e, kind)) for e in fit_on])
            self.ridge[task] = consistency.RidgeMap.fit(
                data.text_vectors.encode([e.target for e in fit_on]), targets,
                l2=eval_config.ridge_l2)

    @staticmethod
    def behavioural_space(task: str) -> str:
        return MOVIE_BEHAVIOURAL if TASKS[task].kind == "movie" else USER_BEHAVIOURAL

    def behavioural(self, task: str, text_vectors: np.ndarray, true: np.ndarray,
                    target_index: np.ndarray) -> dict[str, np.ndarray]:
        """BC of answers whose MiniLM vectors are ``text_vectors`` about entities whose
        behavioural vectors are ``true`` (rows of the task's space at ``target_index``)."""
        space = self.behavioural_space(task)
        other = USER_BEHAVIOURAL if space == MOVIE_BEHAVIOURAL else MOVIE_BEHAVIOURAL
        result = consistency.behavioural_consistency(
            self.ridge[task].predict(text_vectors), true, self.data.tables[other].vectors,
            self.data.tables[space].vectors, target_index, ks=(10,))
        return {f"bc_{k}": v for k, v in result.items()}

    def score(self, task: str, examples: Sequence[Example], answers: Sequence[str]
              ) -> dict[str, float]:
        """Mean metrics of ``answers`` to ``examples`` of ``task``."""
        rows = [fact_metrics(task, a, e.target, self.data.catalogue)
                for e, a in zip(examples, answers)]
        kind = TASKS[task].kind
        per_example: dict[str, np.ndarray] = {}
        if kind in _SINGLE_ENTITY:
            vectors = self.data.text_vectors.encode(list(answers))
            ids = [_entity(e, kind) for e in examples]
            if kind == "movie":
                semantic = self.movie_semantic
                index = np.array([semantic.index_of(i) for i in ids])
                sc = consistency.semantic_consistency(
                    vectors, semantic.vectors[index], semantic.vectors, index, ks=(1, 10))
                per_example.update({f"sc_{k}": v for k, v in sc.items()})
            if task in self.ridge:
                table = self.data.tables[self.behavioural_space(task)]
                index = np.array([table.index_of(i) for i in ids])
                per_example.update(self.behavioural(task, vectors, table.vectors[index], index))
        for row_index, row in enumerate(rows):
            row.update({k: float(v[row_index]) for k, v in per_example.items()})
        # mean_metrics also counts the defined values of each metric ("<name>_n"); the
        # report shows one count per task and variant.
        means = {k: v for k, v in mean_metrics(rows).items() if not k.endswith("_n")}
        return {**means, "n": len(rows)}


def _answer_by_task(requests: dict[str, list[Request]], answer_with: Callable, label: str
                    ) -> dict[str, list[str]]:
    """Answers the requests of every task in one stream (full batches), split back by task."""
    flat = [r for task_requests in requests.values() for r in task_requests]
    texts = answer_with(flat, label)
    answers, first = {}, 0
    for task, task_requests in requests.items():
        answers[task] = texts[first:first + len(task_requests)]
        first += len(task_requests)
    return answers


def _generation_config(eval_config) -> GenerationConfig:
    return GenerationConfig(max_new_tokens=eval_config.max_new_tokens,
                            batch_size=eval_config.batch_size, seed=eval_config.seed)


def _variant_params(config, workdir: str, run: Run) -> list[tuple[str, Callable[[], dict]]]:
    """(variant, params loader) for the untrained model and the end of every stage."""
    loaders = [("untrained", lambda: initial_params(run, jax.random.key(config.train.seed)))]
    for stage in run.stages:
        loaders.append((stage.name, lambda s=stage.name: restore_stage_params(
            config, workdir, run, s)))
    return loaders


def _interpolations(data: _Data, answer_with: Callable, eval_config, movie_space: str,
                    scorer: _Scorer) -> dict[str, Any]:
    """Answers about points between two held-out movies, scored against the interpolated
    semantic and behavioural vectors, and by whether they drift from movie a to movie b."""
    task = eval_config.interpolation_task
    movies = sorted({_entity(e, "movie") for es in data.examples.values() for e in es
                     if TASKS[e.task].kind == "movie"}, key=int)
    rng = np.random.default_rng(eval_config.seed)
    pairs = [tuple(rng.choice(movies, size=2, replace=False))
             for _ in range(eval_config.interpolation_pairs)]
    weights = list(eval_config.interpolation_weights)
    space, semantic = data.tables[movie_space], data.tables[MOVIE_SEMANTIC]
    behavioural = data.tables[MOVIE_BEHAVIOURAL]

    def rows_of(table: EmbeddingTable, ids) -> np.ndarray:
        return np.stack([table.lookup(i) for i in ids])

    a_ids, b_ids = [p[0] for p in pairs], [p[1] for p in pairs]
    points = concepts.interpolate(rows_of(space, a_ids), rows_of(space, b_ids), weights)
    phrasing = TASKS[task].prompts({"movie": movie_space})[0]
    requests = [Request(phrasing, {movie_space: point.tolist()})
                for per_weight in points for point in per_weight]
    texts = answer_with(requests, "interpolation")
    vectors = data.text_vectors.encode(texts).reshape(len(weights), len(pairs), -1)
    sem_a, sem_b = rows_of(semantic, a_ids), rows_of(semantic, b_ids)
    sem_target = concepts.interpolate(sem_a, sem_b, weights)
    beh_target = concepts.interpolate(rows_of(behavioural, a_ids), rows_of(behavioural, b_ids),
                                      weights)
    metrics: dict[str, list[float]] = {"sc_cosine": [], "cosine_to_a": [], "cosine_to_b": []}
    drift = np.zeros((len(weights), len(pairs)))
    for w in range(len(weights)):
        metrics["sc_cosine"].append(float(consistency.cosine_rows(vectors[w], sem_target[w]).mean()))
        to_a = consistency.cosine_rows(vectors[w], sem_a)
        to_b = consistency.cosine_rows(vectors[w], sem_b)
        metrics["cosine_to_a"].append(float(to_a.mean()))
        metrics["cosine_to_b"].append(float(to_b.mean()))
        drift[w] = to_b - to_a
        if task in scorer.ridge:
            bc = scorer.behavioural(task, vectors[w], beh_target[w], np.full(len(pairs), -1))
            metrics.setdefault("bc_spearman", []).append(float(np.nanmean(bc["bc_spearman"])))
    titles = {i: data.ml.movies[int(i)].full_title for i in a_ids + b_ids}
    samples = [{"a": titles[a_ids[p]], "b": titles[b_ids[p]], "weight": weights[w],
                "text": texts[w * len(pairs) + p]}
               for p in range(min(2, len(pairs))) for w in range(len(weights))]
    return {"weights": weights, "task": task, "metrics": metrics,
            "trend": {f"b_minus_a_{k}": v
                      for k, v in concepts.trend_agreement(weights, drift).items()},
            "samples": samples, "pairs": [[titles[a], titles[b]] for a, b in pairs],
            "_points": points, "_texts": texts}


def genre_cav(ml: MovieLens, split: EntitySplit, users: EmbeddingTable, genre: str
              ) -> tuple[np.ndarray, np.ndarray]:
    """The unit direction in user space of liking ``genre`` more than most, fitted on the
    training users' vectors and ratings; returns it with the users' labels."""
    genres = {m: movie.genres for m, movie in ml.movies.by_id.items()}
    known = sorted({g for movie_genres in genres.values() for g in movie_genres})
    if genre not in known:
        raise ValueError(f"genre {genre!r} is not one of the dataset's genres {known}")
    train_ids = sorted(split.train_users)
    ratings = task_data(ml, split, "train").user_ratings
    labels = concepts.genre_preference_labels(train_ids, ratings, genres, genre)
    return concepts.fit_cav(np.stack([users.lookup(u) for u in train_ids]), labels), labels


def _cavs(data: _Data, answer_with: Callable, eval_config, scorer: _Scorer, split: EntitySplit
          ) -> dict[str, Any]:
    """Held-out users moved along genre directions fitted on training users: do the
    generated profiles like the genre more, and does their recovered vector move along it?"""
    task = eval_config.cav_task
    users = data.tables[USER_BEHAVIOURAL]
    eval_ids = sorted(split.eval_users)[:eval_config.cav_users]
    start = np.stack([users.lookup(u) for u in eval_ids])
    amounts = list(eval_config.cav_amounts)
    phrasing = TASKS[task].prompts({"user": USER_BEHAVIOURAL})[0]
    results = {}
    for genre in eval_config.cav_genres:
        direction, labels = genre_cav(data.ml, split, users, genre)
        shifted = concepts.shift(start, direction, amounts)
        requests = [Request(phrasing, {USER_BEHAVIOURAL: v.tolist()})
                    for per_amount in shifted for v in per_amount]
        texts = answer_with(requests, f"CAV {genre}")
        likes = np.array([genre in (liked_genres(text, data.catalogue) or ())
                          for text in texts], float).reshape(len(amounts), len(eval_ids))
        metrics = {"likes_genre": likes.mean(axis=1).tolist()}
        trend = {f"likes_{k}": v for k, v in concepts.trend_agreement(amounts, likes).items()}
        if task in scorer.ridge:
            vectors = data.text_vectors.encode(texts).reshape(len(amounts), len(eval_ids), -1)
            along = np.stack([scorer.ridge[task].predict(v) @ direction for v in vectors])
            metrics["recovered_along_cav"] = along.mean(axis=1).tolist()
            metrics["bc_spearman"] = [float(np.nanmean(scorer.behavioural(
                task, vectors[a], shifted[a], np.full(len(eval_ids), -1))["bc_spearman"]))
                for a in range(len(amounts))]
            trend.update({f"recovered_{k}": v
                          for k, v in concepts.trend_agreement(amounts, along).items()})
        results[genre] = {"amounts": amounts, "task": task, "metrics": metrics, "trend": trend,
                          "positive_users": int(labels.sum()), "train_users": len(labels),
                          "samples": [{"user": eval_ids[u], "amount": amounts[a],
                                       "text": texts[a * len(eval_ids) + u]}
                                      for u in range(min(2, len(eval_ids)))
                                      for a in range(len(amounts))]}
    return results


def _embedding_map(data: _Data, movie_space: str, split, interpolation, samples_by_movie
                   ) -> dict[str, Any]:
    """All movies projected on the top 2 principal components of their vectors, with some
    held-out movies and interpolation midpoints annotated by what the ELM said about them."""
    table = data.tables[movie_space]
    mean = table.vectors.mean(axis=0)
    _, _, components = np.linalg.svd(table.vectors - mean, full_matrices=False)

    def project(v):
        return (np.asarray(v) - mean) @ components[:2].T

    xy = project(table.vectors)
    held_out = [int(i) in split.eval_movies for i in table.ids]
    annotations = []
    for movie_id, text in list(samples_by_movie.items())[:6]:
        x, y = xy[table.index_of(movie_id)]
        annotations.append({"x": float(x), "y": float(y), "kind": "held_out",
                            "text": f"{data.ml.movies[int(movie_id)].full_title}: {text}"})
    if interpolation:
        middle = len(interpolation["weights"]) // 2
        points = interpolation["_points"][middle]
        for p in range(min(3, points.shape[0])):
            x, y = project(points[p])
            a, b = interpolation["pairs"][p]
            text = interpolation["_texts"][middle * points.shape[0] + p]
            annotations.append({"x": float(x), "y": float(y), "kind": "interpolation",
                                "text": f"{a} + {b}: {text}"})
    return {"x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(), "held_out": held_out,
            "labels": [data.ml.movies[int(i)].full_title for i in table.ids],
            "annotations": annotations}


def evaluate_movielens(config, workdir: str) -> dict[str, Any]:
    """Runs every variant on the held-out examples of ``config`` (a movielens_elm config)
    trained in ``workdir``; returns the results (the report's input, JSON-able)."""
    started = time.time()
    eval_config, prepare = config.eval, config.prepare
    tasks = list(eval_config.tasks or prepare.tasks)
    for field, names in (("eval.tasks", tasks), ("eval.interpolation_task",
                                                 [eval_config.interpolation_task]),
                         ("eval.cav_task", [eval_config.cav_task])):
        unknown = [name for name in names if name not in TASKS]
        if unknown:
            raise ValueError(f"config.{field} names unknown tasks {unknown}; known tasks: "
                             f"{sorted(TASKS)}")
    run = setup_run(config)
    out_dir = prepare.out_dir
    tables = {name: EmbeddingTable.load(name, os.path.join(out_dir, f"{name}.npz"))
              for name in (MOVIE_BEHAVIOURAL, USER_BEHAVIOURAL, MOVIE_SEMANTIC)}
    ml = load_movielens(prepare.source, prepare.path)
    split = held_out_entities(ml, prepare)
    data = _Data(ml, Catalogue.from_movielens(ml), tables,
                 _by_task(run.pipeline.eval, tasks, eval_config.examples_per_task,
                          eval_config.seed),
                 SentenceEncoder.from_package())
    if not data.examples:
        raise ValueError(f"no held-out examples of tasks {tasks} in {config.data.eval}; the "
                         "examples need a 'task' field (prepare the data again)")
    scorer = _Scorer(data, run.pipeline.train, eval_config)
    generation = _generation_config(eval_config)
    answers: dict[str, dict[str, list[str]]] = {}  # variant -> task -> answers
    novel: dict[str, Any] = {}
    loaders = _variant_params(config, workdir, run)
    with jax.set_mesh(run.mesh), nn.logical_axis_rules(run.rules):
        for index, (variant, load) in enumerate(loaders):
            params = load()

            def answer_with(requests, label, params=params, variant=variant):
                return answer(run.elm, params, run.pipeline.encoder, requests, generation,
                              label=f"{variant} {label}")

            answers[variant] = _answer_by_task(
                {task: [Request(e.prompt, e.slots) for e in es]
                 for task, es in data.examples.items()}, answer_with, "held-out prompts")
            if index == len(loaders) - 1:  # the trained model: baselines and novel entities
                text_only = {task: [_text_only(e, ml) for e in es]
                             for task, es in data.examples.items()}
                answers["text_only"] = _answer_by_task(
                    {task: requests for task, requests in text_only.items()
                     if None not in requests}, answer_with, "text-only prompts")
                if eval_config.interpolation_pairs:
                    novel["interpolation"] = _interpolations(
                        data, answer_with, eval_config, prepare.movie_space, scorer)
                    novel["interpolation"]["variant"] = variant
                if eval_config.cav_genres:
                    novel["cav"] = _cavs(data, answer_with, eval_config, scorer, split)
                    for result in novel["cav"].values():
                        result["variant"] = variant
            del params
    answers["reference"] = {task: [e.target for e in es] for task, es in data.examples.items()}

    variants = [v for v, _ in loaders] + ["text_only", "reference"]
    per_task = {task: {variant: scorer.score(task, examples, answers[variant][task])
                       for variant in variants if task in answers[variant]}
                for task, examples in data.examples.items()}
    samples = []
    for task, examples in data.examples.items():
        for i, example in enumerate(examples[:eval_config.samples_per_task]):
            samples.append({
                "task": task, "prompt": example.prompt, "reference": example.target,
                "entities": ", ".join(
                    ml.movies[int(v)].full_title if k.startswith("movie_") else f"user {v}"
                    for k, v in example.slots.items()),
                "generated": {v: answers[v][task][i] for v in variants
                              if v != "reference" and task in answers[v]}})
    last = loaders[-1][0]
    movie_answers = {}
    for task in ("movie_summary", "movie_identity", "movie_genres"):
        for example, text in zip(data.examples.get(task, []), answers[last].get(task, [])):
            movie_answers.setdefault(_entity(example, "movie"), text)
    results = {
        "title": f"MovieLens ELM evaluation: {config.backbone.format} {config.backbone.preset}",
        "created": datetime.date.today().isoformat(),
        "setup": {"workdir": workdir, "data": out_dir, "backbone": config.backbone.format,
                  "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
                  "examples per task": eval_config.examples_per_task,
                  "max new tokens": eval_config.max_new_tokens,
                  **{f"{s.name} steps": s.steps for s in run.stages}},
        "variants": variants,
        "variant_notes": {
            "untrained": "the backbone with freshly initialised adapters",
            **{s.name: f"after stage {i + 1} ({s.name}: {', '.join(s.trainable)})"
               for i, s in enumerate(run.stages)},
            "text_only": f"the {last} model given the title instead of the vector (movie tasks)",
            "reference": "the true target text: the ceiling of the consistency metrics"},
        "per_task": per_task, "samples": samples,
        "map": _embedding_map(data, prepare.movie_space, split, novel.get("interpolation"),
                              movie_answers),
    }
    if "interpolation" in novel:
        results["interpolation"] = {k: v for k, v in novel["interpolation"].items()
                                    if not k.startswith("_")}
    if "cav" in novel:
        results["cav"] = novel["cav"]
    results["setup"]["seconds"] = round(time.time() - started)
    return results


def _json_safe(value: Any) -> Any:
    """NaN (a metric nothing could be measured for) as null, so results.json is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def evaluate_and_report(config, workdir: str) -> str:
    """Evaluates the run in ``workdir`` and writes ``WORKDIR/eval/results.json`` and the
    report (``WORKDIR/eval/report.md``, whose path it returns)."""
    results = _json_safe(evaluate_movielens(config, workdir))
    out_dir = os.path.join(workdir, "eval")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    return write_report(results, out_dir)
