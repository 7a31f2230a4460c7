"""The numbers of a MovieLens evaluation as one flat object, ``WORKDIR/eval/summary.json``,
and the main job's goals judged on them.

Every key is ``task/metric/space/variant`` and every value a finite number, so that a
sweep reads one file per run:
  * ``space`` is the movie space a movie task was asked about, ``user_behavioural`` for the
    user tasks;
  * ``variant`` is a model variant (``untrained``, ``adapter``, ``full``), a baseline
    (``text_only``, ``reference``), or a ceiling: ``probe`` (the linear probe from the
    vectors of the task's own space), ``probe_<space>`` (from another space's vectors),
    ``commonest`` (always the commonest training answer);
  * interpolations and CAV shifts are filed under their task with metrics
    ``interpolation_<trend>`` and ``cav_<genre>_<trend>``;
  * the held-out loss at the end of each training stage and its ``vector_gain`` (how much
    higher it is with the examples' vectors swapped) are ``all/loss/all/<stage>`` and
    ``all/vector_gain/all/<stage>``.
Missing and NaN values are left out.

Read from the results the scoring phase writes (``results.json``); the goals judge the
last model variant before the baselines.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from elc.evaluation.answers import write_atomically
from elc.projects.movielens.eval_data import (MOVIE_BEHAVIOURAL, MOVIE_SEMANTIC,
                                              USER_BEHAVIOURAL, label_space, label_task)

SUMMARY_FILE = "summary.json"
BASELINES = ("text_only", "reference")
PROBE, COMMONEST = "probe", "commonest"


def stages(variants: Sequence[str]) -> list[str]:
    """The model variants in training order (untrained first), baselines left out."""
    return [v for v in variants if v not in BASELINES]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) or math.isinf(value) else float(value)


def _ceiling_variant(column: str, space: str) -> str:
    """The summary's variant for a ceilings column: "probe (movie_semantic)" -> probe
    (the task's own space) or probe_movie_semantic; commonest stays."""
    if not column.startswith(f"{PROBE} ("):
        return column
    probed = column[len(PROBE) + 2:-1]
    return PROBE if probed == space else f"{PROBE}_{probed}"


def flatten(results: Mapping[str, Any]) -> dict[str, float]:
    """The summary of a MovieLens ``results`` dict (see the module docstring)."""
    flat: dict[str, float] = {}

    def put(task: str, metric: str, space: str, variant: str, value: Any) -> None:
        number = _number(value)
        if number is not None:
            flat[f"{task}/{metric}/{space}/{variant}"] = number

    for label, by_variant in results["per_task"].items():
        task, space = label_task(label), label_space(label) or USER_BEHAVIOURAL
        for variant, metrics in by_variant.items():
            for metric, value in metrics.items():
                put(task, metric, space, variant, value)
        for column, metrics in results.get("ceilings", {}).get(label, {}).get(
                "columns", {}).items():
            for metric, value in metrics.items():
                put(task, metric, space, _ceiling_variant(column, space), value)
    interpolation = results.get("interpolation") or {}
    for trend, value in interpolation.get("trend", {}).items():
        put(interpolation["task"], f"interpolation_{trend}", interpolation["space"],
            interpolation["variant"], value)
    for genre, cav in (results.get("cav") or {}).items():
        for trend, value in cav.get("trend", {}).items():
            put(cav["task"], f"cav_{genre}_{trend}", USER_BEHAVIOURAL, cav["variant"], value)
    for stage, evals in (results.get("vector_use") or {}).items():
        for metric in ("loss", "vector_gain"):
            put("all", metric, "all", stage, evals.get(metric))
    return flat


def _goal(name: str, value: Any, target: str, met: bool | None) -> dict[str, Any]:
    return {"name": name, "value": value, "target": target, "met": met}


def _at_least(name: str, value: float | None, bound: float | None, strict: bool = False
              ) -> dict[str, Any]:
    met = None if value is None or bound is None else (
        value > bound if strict else value >= bound)
    return _goal(name, value, f"{'>' if strict else '>='} {bound}", met)


def _mean_sc(flat: Mapping[str, float], space: str, variant: str) -> float | None:
    """Semantic consistency averaged over the tasks asked about ``space``."""
    values = [v for k, v in flat.items() if k.endswith(f"/sc_cosine/{space}/{variant}")]
    return sum(values) / len(values) if values else None


def goals(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The main job's quality bar, judged on the last model variant: each goal's name,
    value, target and whether it is met (None where the value is missing)."""
    flat = flatten(results)
    order = stages(results["variants"])
    last = order[-1]

    def at(task: str, metric: str, space: str, variant: str = last) -> float | None:
        return flat.get(f"{task}/{metric}/{space}/{variant}")

    semantic, behavioural = MOVIE_SEMANTIC, MOVIE_BEHAVIOURAL
    interpolation = results.get("interpolation") or {}
    found = [
        _at_least("semantic genre F1", at("movie_genres", "genre_f1", semantic), 0.80),
        _at_least("semantic decade accuracy", at("movie_era", "decade_accuracy", semantic),
                  0.90),
        _at_least("semantic distinct movie_genres answers",
                  at("movie_genres", "distinct_answers", semantic), 0.5),
        _at_least("interpolation steps toward movie b", flat.get(
            f"{interpolation.get('task')}/interpolation_facts_toward_b_steps_up/"
            f"{interpolation.get('space')}/{interpolation.get('variant')}"), 0.5, strict=True),
        _at_least("behavioural genre F1 against its probe",
                  at("movie_genres", "genre_f1", behavioural),
                  at("movie_genres", "genre_f1", behavioural, PROBE)),
        _at_least("semantic exact titles", at("movie_identity", "title_accuracy", semantic),
                  0.1),
    ]
    for space in (behavioural, semantic):
        sc = [_mean_sc(flat, space, stage) for stage in order]
        if all(value is None for value in sc):
            continue
        rising = None if None in sc else all(a < b for a, b in zip(sc, sc[1:]))
        found.append(_goal(f"{space} SC rises stage by stage", sc, " < ".join(order), rising))
    return found


def write_summary(results: Mapping[str, Any], out_dir: str) -> str:
    """Writes ``out_dir/summary.json`` (keys sorted); returns its path."""
    path = os.path.join(out_dir, SUMMARY_FILE)
    write_atomically(path, json.dumps(flatten(results), indent=0, sort_keys=True,
                                      allow_nan=False))
    return path
