"""The MovieLens project's own config fields (``prepare``, ``eval``), checked with the
rest of the config before anything runs (see elc/train/config_check.py)."""

from __future__ import annotations

from typing import Any

from elc.projects.movielens.dataset import SOURCES
from elc.projects.movielens.tasks import MOVIE_SPACES, TASKS
from elc.train.config_check import Check, integer, number, one_of


def _names_of(options, *, allow_empty: bool) -> Check:
    options = tuple(options)

    def check(value: Any) -> str | None:
        ok = (isinstance(value, (tuple, list)) and (value or allow_empty)
              and all(v in options for v in value))
        return None if ok else f"{'a' if allow_empty else 'a non-empty'} tuple of {options}"
    return check


def _weights_in(low: float, high: float) -> Check:
    def check(value: Any) -> str | None:
        in_range = number(low, high)
        ok = isinstance(value, (tuple, list)) and value and not any(in_range(v) for v in value)
        return None if ok else f"a non-empty tuple of numbers in [{low}, {high}]"
    return check


MOVIELENS_CHECKS: dict[str, Check] = {
    "prepare.source": one_of(SOURCES),
    "prepare.seed": integer(0),
    "prepare.examples_per_entity": integer(1),
    "prepare.holdout_movies": number(0, 1, low_open=True, high_open=True),
    "prepare.holdout_users": number(0, 1, low_open=True, high_open=True),
    "prepare.tasks": _names_of(sorted(TASKS), allow_empty=False),
    "prepare.movie_spaces": _names_of(MOVIE_SPACES, allow_empty=False),
    "prepare.als.dim": integer(1),
    "prepare.als.iterations": integer(1),
    "prepare.als.regularization": number(0),
    "prepare.als.alpha": number(0),
    "eval.seed": integer(0),
    "eval.batch_size": integer(1),
    "eval.examples_per_task": integer(1),
    "eval.samples_per_task": integer(0),
    "eval.max_new_tokens": integer(1),
    "eval.ridge_examples": integer(1),
    "eval.ridge_l2": number(0, low_open=True),
    "eval.cav_users": integer(1),
    "eval.cav_amounts": _weights_in(-1e6, 1e6),
    "eval.interpolation_pairs": integer(0),
    "eval.interpolation_weights": _weights_in(0.0, 1.0),
    "eval.tasks": _names_of(sorted(TASKS), allow_empty=True),
}
