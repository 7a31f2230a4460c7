"""Information ceilings of the MovieLens evaluation: linear probes of each fact the
evaluation checks, from each space's vectors, scored like the ELM's answers.

For a single-entity task, the facts of a training entity are read from its training
target by the task's parser (:func:`elc.projects.movielens.facts.parse_facts`), and a
:class:`elc.evaluation.probes.LinearProbe` per probed field is fitted from the entity's
vector in each space that holds its kind of entity (movies: behavioural and semantic;
users: behavioural). Held out, the probes' facts and the commonest training facts are
scored against the reference's facts with the task's own metrics, on the same examples
the ELM answered. A metric reading a field no probe predicts (a held-out movie's title,
an audience's shares) gets no probe score.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from elc.data.examples import Example
from elc.evaluation.probes import LinearProbe, commonest
from elc.projects.movielens.eval_data import (MOVIE_BEHAVIOURAL, MOVIE_SEMANTIC, USER_BEHAVIOURAL,
                                               EvalData, entity, label_space, label_task)
from elc.projects.movielens.facts import METRIC_FIELDS, facts_metrics, mean_metrics, parse_facts
from elc.projects.movielens.tasks import TASKS

# Task -> field of its reading -> how a probe reads it. Years and decades are labels:
# their metrics count exact answers.
PROBED_FIELDS: dict[str, dict[str, str]] = {
    "movie_identity": {"year": "label"},
    "movie_genres": {"genres": "labels"},
    "movie_era": {"decade": "label"},
    "movie_audience": {"raters": "number"},
    "movie_reception": {"popularity": "label", "rating": "number"},
    "movie_summary": {"year": "label", "genres": "labels", "rating": "number"},
    "movie_similar": {"titles": "labels"},
    "user_profile": {"liked": "labels", "favourites": "labels", "rating": "number"},
    "user_demographics": {"gender": "label", "occupation": "label", "age": "number"},
    "user_recommendations": {"titles": "labels"},
}
SPACES_OF_KIND = {"movie": (MOVIE_BEHAVIOURAL, MOVIE_SEMANTIC), "user": (USER_BEHAVIOURAL,)}


def probed_metrics(task: str) -> list[str]:
    """The metrics of ``task`` whose every field a probe predicts."""
    probed = PROBED_FIELDS.get(task, {})
    return [name for name, fields in METRIC_FIELDS.get(task, {}).items()
            if all(field in probed for field in fields)]


def _training_facts(task: str, train_examples: Sequence[Example], data: EvalData
                    ) -> tuple[list[str], list[dict[str, Any]]]:
    """(entity ids, facts) of ``task``'s training examples, one per entity."""
    kind = TASKS[task].kind
    facts: dict[str, dict[str, Any]] = {}
    for example in train_examples:
        if example.task == task:
            entity_id = entity(example, kind)
            if entity_id not in facts:
                facts[entity_id] = parse_facts(task, example.target, data.catalogue)
    return list(facts), list(facts.values())


def _scores(task: str, predicted: Sequence[dict[str, Any]], references: Sequence[dict[str, Any]],
            metrics: Sequence[str]) -> dict[str, float]:
    rows = [facts_metrics(task, p, r, metrics) for p, r in zip(predicted, references)]
    return {name: value for name, value in mean_metrics(rows).items() if not name.endswith("_n")}


@dataclasses.dataclass
class _TaskProbes:
    """What a task's probes learnt from its training entities, shared by its labels."""

    train: int
    commonest: dict[str, Any]
    probes: dict[str, dict[str, LinearProbe]]  # space -> field -> probe


def _fit_task(task: str, train_examples: Sequence[Example], data: EvalData
              ) -> _TaskProbes | None:
    """The commonest facts and the probes of ``task``; None without probed metrics or with
    fewer than 2 training entities."""
    ids, facts = _training_facts(task, train_examples, data)
    if not probed_metrics(task) or len(ids) < 2:
        return None
    fields = PROBED_FIELDS[task]
    probes = {space: {field: LinearProbe.fit(data.rows(space, ids), [f[field] for f in facts],
                                             how)
                      for field, how in fields.items()}
              for space in SPACES_OF_KIND[TASKS[task].kind] if space in data.tables}
    return _TaskProbes(len(ids), {field: commonest([f[field] for f in facts], how)
                                  for field, how in fields.items()}, probes)


def _score_task(task: str, fitted: _TaskProbes, held_out: Sequence[Example], data: EvalData
                ) -> dict[str, Any]:
    metrics = probed_metrics(task)
    references = [parse_facts(task, e.target, data.catalogue) for e in held_out]
    held_out_ids = [entity(e, TASKS[task].kind) for e in held_out]
    result: dict[str, Any] = {
        "metrics": metrics, "n": len(held_out), "train": fitted.train,
        "commonest": _scores(task, [fitted.commonest] * len(held_out), references, metrics),
        "probe": {}, "l2": {}}
    for space, probes in fitted.probes.items():
        vectors = data.rows(space, held_out_ids)
        predicted = [{} for _ in held_out]
        for field, probe in probes.items():
            for row, value in zip(predicted, probe.predict(vectors)):
                row[field] = value
        result["probe"][space] = _scores(task, predicted, references, metrics)
        result["l2"][space] = {field: probe.l2 for field, probe in probes.items()}
    return result


def probe_task(task: str, held_out: Sequence[Example], train_examples: Sequence[Example],
               data: EvalData) -> dict[str, Any] | None:
    """Probe and commonest scores of ``task`` on its held-out examples.

    Returns None for a task without probed metrics or training examples, else
    ``{"metrics": [...], "commonest": {metric: mean}, "probe": {space: {metric: mean}},
    "l2": {space: {field: penalty}}, "n": held-out examples, "train": training entities}``.
    """
    fitted = _fit_task(task, train_examples, data)
    return None if fitted is None else _score_task(task, fitted, held_out, data)


def probe_tasks(examples: dict[str, list[Example]], train_examples: Sequence[Example],
                data: EvalData) -> dict[str, dict[str, Any]]:
    """:func:`probe_task` of every single-entity task in ``examples`` (label, see
    :func:`elc.projects.movielens.eval_data.task_label` -> held-out examples) that has
    probed metrics, by label. A task's probes are fitted once for all its labels."""
    fitted: dict[str, _TaskProbes | None] = {}
    found = {}
    for label, held_out in examples.items():
        task = label_task(label)
        if TASKS[task].kind not in SPACES_OF_KIND:
            continue
        if task not in fitted:
            fitted[task] = _fit_task(task, train_examples, data)
        if fitted[task] is not None:
            found[label] = _score_task(task, fitted[task], held_out, data)
    return found


def ceilings(probed: dict[str, dict[str, Any]], variant: str) -> dict[str, dict[str, Any]]:
    """The report's extra columns per label (see :func:`elc.evaluation.report.write_report`):
    a probe per space and the commonest answer, and ``variant`` ÷ the probe of the space the
    ELM read (the label's movie space, or the user space)."""
    found = {}
    for label, result in probed.items():
        space = label_space(label) or USER_BEHAVIOURAL
        columns = {f"probe ({s})": metrics for s, metrics in result["probe"].items()}
        found[label] = {"columns": {**columns, "commonest": result["commonest"]},
                       "ratio_of": variant, "ratio_to": f"probe ({space})"}
    return found
