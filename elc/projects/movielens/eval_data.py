"""What generating and scoring the MovieLens evaluation share: the config's settings, the
prepared data, the held-out examples and the genre concept directions. Loads no model."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterable, Sequence

import numpy as np

from elc.data.vector_table import VectorTable
from elc.data.examples import Example, TfdsExampleSource, read_jsonl
from elc.projects.movielens.dataset import MovieLens, load_movielens
from elc.projects.movielens.prepare import held_out_entities, movie_spaces
from elc.projects.movielens.tasks import LIKED_RATING, MOVIE_SPACES, TASKS, EntitySplit, task_data
from elc.evaluation import concepts
from elc.projects.movielens.facts import Catalogue

MOVIE_BEHAVIOURAL, USER_BEHAVIOURAL, MOVIE_SEMANTIC = (
    "movie_behavioural", "user_behavioural", "movie_semantic")
SINGLE_ENTITY = ("movie", "user")  # task kinds whose answer describes one entity
# Settings of config.eval that saved answers need not share with the scoring config: those
# only scoring reads, and the batch size (greedy answers do not depend on it).
_NOT_COMPARED = ("samples_per_task", "ridge_examples", "ridge_l2", "batch_size")


def eval_tasks(config) -> list[str]:
    """The tasks config.eval asks (``eval.tasks``, else ``prepare.tasks``), after checking
    that every task it names exists."""
    eval_config = config.eval
    tasks = list(eval_config.tasks or config.prepare.tasks)
    for field, names in (("eval.tasks", tasks), ("eval.interpolation_task",
                                                 [eval_config.interpolation_task]),
                         ("eval.cav_task", [eval_config.cav_task])):
        unknown = [name for name in names if name not in TASKS]
        if unknown:
            raise ValueError(f"config.{field} names unknown tasks {unknown}; known tasks: "
                             f"{sorted(TASKS)}")
    return tasks


def interpolation_space(config) -> str:
    """The movie space interpolations are asked in: ``eval.interpolation_space``, or the
    last of ``prepare.movie_spaces`` when that is empty."""
    spaces = movie_spaces(config.prepare)
    space = config.eval.get("interpolation_space") or spaces[-1]
    if space not in spaces:
        raise ValueError(f"config.eval.interpolation_space is {space!r}; expected one of "
                         f"config.prepare.movie_spaces {spaces}")
    return space


def generation_settings(config) -> dict[str, Any]:
    """Flat config field -> value of every setting that decides what the evaluation asks
    and what the model answers: saved answers can be scored only with the same."""
    settings: dict[str, Any] = {
        "variant": config.get("variant", ""),
        "backbone.format": config.backbone.format, "backbone.preset": config.backbone.preset,
        "train.seed": config.train.seed, "train.stages": list(config.train.stages)}
    for name in config.train.stages:
        settings[f"stage.{name}.steps"] = config.stage[name].steps
    for key, value in config.prepare.to_dict().items():
        if key not in ("out_dir", "path"):  # where the data live may differ between machines
            settings[f"prepare.{key}"] = value
    for key, value in config.eval.to_dict().items():
        if key not in _NOT_COMPARED:
            settings[f"eval.{key}"] = value
    settings["eval.tasks"] = eval_tasks(config)
    return settings


@dataclasses.dataclass
class EvalData:
    """The prepared data both phases read: the dataset, its held-out split, the title
    catalogue and the embedding tables."""

    ml: MovieLens
    split: EntitySplit
    catalogue: Catalogue
    tables: dict[str, VectorTable]

    @classmethod
    def load(cls, prepare) -> EvalData:
        """From config.prepare: the dataset it names and the tables in its out_dir."""
        tables = {name: VectorTable.load(name, os.path.join(prepare.out_dir, f"{name}.npz"))
                  for name in (MOVIE_BEHAVIOURAL, USER_BEHAVIOURAL, MOVIE_SEMANTIC)}
        ml = load_movielens(prepare.source, prepare.path)
        return cls(ml, held_out_entities(ml, prepare), Catalogue.from_movielens(ml), tables)

    def title(self, movie_id: str) -> str:
        return self.ml.movies[int(movie_id)].full_title

    def rows(self, space: str, ids: Sequence[str]) -> np.ndarray:
        """The vectors of ``ids`` in ``space``, stacked."""
        return np.stack([self.tables[space].lookup(i) for i in ids])


def read_examples(data_config, part: str) -> Sequence[Example]:
    """The examples of ``data_config[part]`` (``train`` or ``eval``), read as the training
    input pipeline reads them but without a tokenizer."""
    if data_config.source == "jsonl":
        return read_jsonl(data_config[part])
    if data_config.source == "tfds":
        return TfdsExampleSource(data_config.tfds_name, data_config[part],
                                 data_config.tfds_data_dir or None)
    raise ValueError(f"the MovieLens evaluation reads data.source jsonl or tfds, got "
                     f"{data_config.source!r}")


def sample(examples: Sequence[Example], count: int, seed: int) -> list[Example]:
    """``count`` of ``examples`` (all if fewer), drawn without replacement, in file order."""
    if len(examples) <= count:
        return list(examples)
    picks = np.random.default_rng(seed).choice(len(examples), size=count, replace=False)
    return [examples[i] for i in sorted(picks)]


def task_label(task: str, slot_keys: Iterable[str]) -> str:
    """Where the evaluation files a task's example: ``task@space`` for a task about a movie
    (its movie's space, so that each space is scored apart), the task's name otherwise."""
    spaces = sorted({key.split(":")[0] for key in slot_keys} & set(MOVIE_SPACES))
    return f"{task}@{spaces[0]}" if spaces else task


def label_task(label: str) -> str:
    """The task of a :func:`task_label`."""
    return label.split("@")[0]


def label_space(label: str) -> str | None:
    """The movie space of a :func:`task_label`, None for a task without a movie."""
    return label.split("@")[1] if "@" in label else None


def held_out_examples(examples: Sequence[Example], tasks: Sequence[str], count: int,
                      seed: int) -> dict[str, list[Example]]:
    """label (:func:`task_label`) -> up to ``count`` of its ``examples``, for the labels of
    ``tasks`` that have any, in the order of ``tasks``."""
    grouped: dict[str, list[Example]] = {}
    for example in examples:
        if example.task in tasks:
            grouped.setdefault(task_label(example.task, example.slots), []).append(example)
    order = {task: i for i, task in enumerate(tasks)}
    return {label: sample(grouped[label], count, seed)
            for label in sorted(grouped, key=lambda label: (order[label_task(label)], label))}


def entity(example: Example, key_prefix: str) -> str:
    """The entity id in the first slot whose key starts with ``key_prefix``."""
    return next(str(v) for k, v in example.slots.items() if k.startswith(key_prefix))


def genre_cav(ml: MovieLens, split: EntitySplit, users: VectorTable, genre: str
              ) -> tuple[np.ndarray, np.ndarray]:
    """The unit direction in user space of liking ``genre`` more than most, fitted on the
    training users' vectors and ratings; returns it with the users' labels."""
    genres = {m: movie.genres for m, movie in ml.movies.by_id.items()}
    known = sorted({g for movie_genres in genres.values() for g in movie_genres})
    if genre not in known:
        raise ValueError(f"genre {genre!r} is not one of the dataset's genres {known}")
    train_ids = sorted(split.train_users)
    ratings = task_data(ml, split, "train").user_ratings
    labels = concepts.genre_preference_labels(train_ids, ratings, genres, genre,
                                              liked=LIKED_RATING)
    return concepts.fit_cav(np.stack([users.lookup(u) for u in train_ids]), labels), labels
