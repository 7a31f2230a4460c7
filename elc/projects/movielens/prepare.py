"""Builds everything an ELM needs from MovieLens, once, into a data directory.

1. Loads MovieLens (see :mod:`elc.projects.movielens.dataset`).
2. Fits weighted ALS on all ratings: ``movie_behavioural.npz`` and ``user_behavioural.npz``.
   Every movie and user gets a vector, held-out ones included: the held-out entities are
   unseen by the ELM, not by the recommender.
3. Embeds each movie's text ("Title (year). Genres: ...") with MiniLM: ``movie_semantic.npz``.
4. Behavioural neighbours (cosine of ALS movie vectors) and recommendations (highest ALS
   scores among unrated movies) feed the similar-movies and recommendation tasks.
5. Holds out whole movies and users, builds the task examples (movie tasks once per space
   of ``prepare.movie_spaces``), and writes them as
   ``train.jsonl`` / ``eval.jsonl`` and as the TFDS dataset ``elc_examples`` under ``tfds/``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any

import numpy as np
from absl import logging

from elc.data.vector_table import VectorTable
from elc.data.examples import Example
from elc.projects.movielens.dataset import MovieLens, load_movielens
from elc.projects.movielens.tasks import (KIND_ROLES, MOVIE_SPACES, TASKS, EntitySplit,
                                          build_examples, split_entities)
from elc.data.tfds_writer import write_tfds_examples
from elc.vectors.als import AlsConfig, fit_als
from elc.vectors.minilm import SentenceEncoder

NEIGHBOURS = 10


def _movie_text(movie) -> str:
    year = f" ({movie.year})" if movie.year else ""
    genres = ", ".join(movie.genres) if movie.genres else "unknown"
    return f"{movie.title}{year}. Genres: {genres}."


def _top_k(scores: np.ndarray, k: int, exclude: np.ndarray) -> np.ndarray:
    scores = np.where(exclude, -np.inf, scores)
    return np.argsort(-scores, axis=-1, kind="stable")[:, :k]


def _write_jsonl(path: str, examples: list[Example]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for e in examples:
            f.write(json.dumps({"prompt": e.prompt, "target": e.target, "slots": e.slots,
                                "task": e.task}) + "\n")


def held_out_entities(ml: MovieLens, prepare: Any) -> EntitySplit:
    """The movies and users a config's ``prepare`` section holds out for evaluation."""
    return split_entities(ml, movie_fraction=prepare.holdout_movies,
                          user_fraction=prepare.holdout_users, seed=prepare.seed)


def movie_spaces(prepare: Any) -> tuple[str, ...]:
    """``prepare.movie_spaces``, checked: one or more distinct spaces of MOVIE_SPACES."""
    spaces = tuple(prepare.movie_spaces)
    if not spaces or len(set(spaces)) != len(spaces) or not set(spaces) <= set(MOVIE_SPACES):
        raise ValueError(f"config.prepare.movie_spaces is {spaces!r}; expected one or more "
                         f"distinct spaces of {MOVIE_SPACES}")
    return spaces


def tasks_per_movie_space(prepare: Any) -> list[tuple[str, list[str]]]:
    """(movie space, tasks to build in it): every task in the first space, then only the
    tasks with a movie in each further space (a user task needs no second copy)."""
    spaces = movie_spaces(prepare)
    tasks = list(prepare.tasks)
    with_movie = [t for t in tasks if t in TASKS and "movie" in KIND_ROLES[TASKS[t].kind]]
    return [(spaces[0], tasks)] + [(space, with_movie) for space in spaces[1:]]


def settings_record(prepare: Any) -> dict[str, Any]:
    """The ``prepare`` settings as JSON values, as ``report.json`` records them."""
    return json.loads(json.dumps(prepare.to_dict()))


def is_prepared(prepare: Any, out_dir: str) -> bool:
    """Whether ``out_dir`` holds data prepared with exactly these settings."""
    path = os.path.join(out_dir, "report.json")
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        return json.load(f).get("prepare") == settings_record(prepare)


def prepare_movielens(prepare: Any, out_dir: str) -> dict[str, Any]:
    """Runs the steps above with the settings of a config's ``prepare`` section; returns
    (and writes to ``report.json``) what was built, with timings."""
    os.makedirs(out_dir, exist_ok=True)
    # report.json marks a finished preparation (see is_prepared): drop it until this one is.
    if os.path.exists(os.path.join(out_dir, "report.json")):
        os.remove(os.path.join(out_dir, "report.json"))
    timings, start = {}, time.time()
    ml: MovieLens = load_movielens(prepare.source, prepare.path)
    timings["load"] = time.time() - start
    logging.info("%s", ml.summary())

    movie_ids = np.array(sorted(ml.movies.by_id), np.int64)
    user_ids = np.unique(ml.ratings.user_ids)
    movie_index = {int(m): i for i, m in enumerate(movie_ids)}
    user_index = {int(u): i for i, u in enumerate(user_ids)}
    rows = np.array([user_index[int(u)] for u in ml.ratings.user_ids], np.int64)
    cols = np.array([movie_index[int(m)] for m in ml.ratings.item_ids], np.int64)
    start = time.time()
    als = prepare.als
    factors = fit_als(rows, cols, ml.ratings.ratings, len(user_ids), len(movie_ids),
                      AlsConfig(dim=als.dim, regularization=als.regularization, alpha=als.alpha,
                                iterations=als.iterations, seed=prepare.seed))
    timings["als"] = time.time() - start
    tables = {"movie_behavioural": VectorTable("movie_behavioural", [str(m) for m in movie_ids],
                                                 factors.item_factors),
              "user_behavioural": VectorTable("user_behavioural", [str(u) for u in user_ids],
                                                factors.user_factors)}
    start = time.time()
    texts = [_movie_text(ml.movies[int(m)]) for m in movie_ids]
    tables["movie_semantic"] = VectorTable("movie_semantic", [str(m) for m in movie_ids],
                                              SentenceEncoder.from_package().encode(texts))
    timings["semantic"] = time.time() - start
    for name, table in tables.items():
        table.save(os.path.join(out_dir, f"{name}.npz"))

    start = time.time()
    items = factors.item_factors / np.maximum(
        np.linalg.norm(factors.item_factors, axis=-1, keepdims=True), 1e-12)
    similar = _top_k(items @ items.T, NEIGHBOURS, np.eye(len(movie_ids), dtype=bool))
    neighbours = {int(movie_ids[i]): [int(movie_ids[j]) for j in row] for i, row in enumerate(similar)}
    rated = np.zeros((len(user_ids), len(movie_ids)), bool)
    rated[rows, cols] = True
    best = _top_k(factors.user_factors @ factors.item_factors.T, NEIGHBOURS, rated)
    recommendations = {int(user_ids[i]): [int(movie_ids[j]) for j in row]
                       for i, row in enumerate(best)}
    split = held_out_entities(ml, prepare)
    examples = {}
    for part in ("train", "eval"):
        examples[part] = []
        # Tasks about movies once per movie space, the others (user tasks) once.
        for index, (movie_space, tasks) in enumerate(tasks_per_movie_space(prepare)):
            # All weights with all tasks, so that build_examples names a weight of no task.
            weights = {t: w for t, w in prepare.weights.items() if index == 0 or t in tasks}
            examples[part] += build_examples(
                ml, tasks=tasks, spaces={"movie": movie_space, "user": "user_behavioural"},
                split=split, part=part, seed=prepare.seed, neighbours=neighbours,
                user_recommendations=recommendations,
                examples_per_entity=prepare.examples_per_entity, weights=weights)
    for part, part_examples in examples.items():
        _write_jsonl(os.path.join(out_dir, f"{part}.jsonl"), part_examples)
    timings["tasks"] = time.time() - start
    start = time.time()
    # TFDS would keep an existing dataset of the same version: write it afresh.
    shutil.rmtree(os.path.join(out_dir, "tfds"), ignore_errors=True)
    write_tfds_examples(os.path.join(out_dir, "tfds"), examples)
    timings["tfds"] = time.time() - start

    report = {
        "prepare": settings_record(prepare),
        "source": ml.source, "bad_input": ml.report,
        "users": len(user_ids), "movies": len(movie_ids), "ratings": int(len(ml.ratings.ratings)),
        "held_out": {"movies": len(split.eval_movies), "users": len(split.eval_users)},
        "examples": {part: len(e) for part, e in examples.items()},
        "tables": {name: [len(t.ids), t.dim] for name, t in tables.items()},
        "als_final_loss": factors.loss_history[-1],
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "files": sorted(os.listdir(out_dir)),
    }
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    return report
