"""The headline of a MovieLens evaluation, ``WORKDIR/eval/summary.json``: per movie space
and for users, the facts that show whether the ELM reads its vectors, beside their linear
probe and commonest answer, and the quality bar of the main job, each goal with its value.

Read from the results the scoring phase writes (``results.json``); the last variant
before ``text_only`` is the trained model the goals judge.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from elc.evaluation.answers import write_atomically
from elc.projects.movielens.eval_data import MOVIE_BEHAVIOURAL, MOVIE_SEMANTIC

SUMMARY_FILE = "summary.json"
BASELINES = ("text_only", "reference")


def _stages(variants: Sequence[str]) -> list[str]:
    """The model variants in training order (untrained first), baselines left out."""
    return [v for v in variants if v not in BASELINES]


def _value(results: Mapping, label: str, variant: str, metric: str) -> float | None:
    value = results["per_task"].get(label, {}).get(variant, {}).get(metric)
    return None if value is None or math.isnan(value) else float(value)


def _with_ceilings(results: Mapping, label: str, metric: str, stages: Sequence[str]
                   ) -> dict[str, float | None]:
    """The metric for each stage, then each ceiling column of the label (probes,
    commonest)."""
    row = {stage: _value(results, label, stage, metric) for stage in stages}
    for column, values in results.get("ceilings", {}).get(label, {}).get("columns", {}).items():
        value = values.get(metric)
        row[column] = None if value is None or math.isnan(value) else float(value)
    return row


def _mean_over(results: Mapping, labels: Sequence[str], variant: str, metric: str
               ) -> float | None:
    values = [v for v in (_value(results, label, variant, metric) for label in labels)
              if v is not None]
    return sum(values) / len(values) if values else None


def _goal(name: str, value: Any, goal: str, met: bool | None) -> dict[str, Any]:
    return {"name": name, "value": value, "goal": goal, "met": met}


def _at_least(name: str, value: float | None, bound: float | None, strict: bool = False
              ) -> dict[str, Any]:
    met = None if value is None or bound is None else (
        value > bound if strict else value >= bound)
    return _goal(name, value, f"{'>' if strict else '>='} {bound}", met)


def summarize(results: Mapping[str, Any]) -> dict[str, Any]:
    """The summary of a MovieLens ``results`` dict (see the module docstring)."""
    stages = _stages(results["variants"])
    last = stages[-1]
    spaces: dict[str, Any] = {}
    for space in (MOVIE_BEHAVIOURAL, MOVIE_SEMANTIC):
        labels = [label for label in results["per_task"] if label.endswith(f"@{space}")]
        if not labels:
            continue
        spaces[space] = {
            "genre_f1": _with_ceilings(results, f"movie_genres@{space}", "genre_f1", stages),
            "decade_accuracy": _with_ceilings(results, f"movie_era@{space}", "decade_accuracy",
                                              stages),
            "year_accuracy": _with_ceilings(results, f"movie_identity@{space}", "year_accuracy",
                                            stages),
            "title_accuracy": {s: _value(results, f"movie_identity@{space}", s,
                                         "title_accuracy") for s in stages},
            "title_chrf": {s: _value(results, f"movie_identity@{space}", s, "title_chrf")
                           for s in stages},
            "distinct_genre_answers": {s: _value(results, f"movie_genres@{space}", s,
                                                 "distinct_answers") for s in stages},
            "sc_cosine": {s: _mean_over(results, labels, s, "sc_cosine") for s in stages},
        }
    users = {"liked_genre_f1": _with_ceilings(results, "user_profile", "liked_genre_f1", stages),
             "demographic_accuracy": _with_ceilings(results, "user_demographics",
                                                    "demographic_accuracy", stages)}
    interpolation = results.get("interpolation") or {}
    trend = interpolation.get("trend", {})
    steps_toward_b = trend.get("facts_toward_b_steps_up")
    cav = {genre: section.get("trend", {}).get("likes_increased")
           for genre, section in (results.get("cav") or {}).items()}

    semantic = spaces.get(MOVIE_SEMANTIC, {})
    behavioural = spaces.get(MOVIE_BEHAVIOURAL, {})
    goals = [
        _at_least("semantic genre F1", semantic.get("genre_f1", {}).get(last), 0.80),
        _at_least("semantic decade accuracy", semantic.get("decade_accuracy", {}).get(last),
                  0.90),
        _at_least("semantic distinct movie_genres answers",
                  semantic.get("distinct_genre_answers", {}).get(last), 0.5),
        _at_least("interpolation steps toward movie b", steps_toward_b, 0.5, strict=True),
        _at_least("behavioural genre F1 against its probe",
                  behavioural.get("genre_f1", {}).get(last),
                  behavioural.get("genre_f1", {}).get(f"probe ({MOVIE_BEHAVIOURAL})")),
        _at_least("semantic exact titles", semantic.get("title_accuracy", {}).get(last), 0.1),
    ]
    for space, found in spaces.items():
        sc = [found["sc_cosine"][s] for s in stages]
        ordered = None if None in sc else all(a < b for a, b in zip(sc, sc[1:]))
        goals.append(_goal(f"{space} SC rises stage by stage", sc, " < ".join(stages), ordered))
    return {"judged": last, "stages": stages, "spaces": spaces, "users": users,
            "interpolation": {"space": interpolation.get("space"),
                              "steps_toward_b": steps_toward_b},
            "cav_likes_increased": cav, "goals": goals}


def write_summary(results: Mapping[str, Any], out_dir: str) -> str:
    """Writes ``out_dir/summary.json`` (strict JSON: missing values as null); returns its
    path."""
    path = os.path.join(out_dir, SUMMARY_FILE)
    write_atomically(path, json.dumps(summarize(results), indent=1, allow_nan=False))
    return path
