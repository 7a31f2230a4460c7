"""The scoring phase of the MovieLens evaluation: saved answers (``WORKDIR/eval/answers.jsonl``)
in, the results (the report's input) out. Reads the prepared data and the catalogue, never
a backbone or a checkpoint, and needs no accelerator.

Metrics per task (see :mod:`elc.projects.movielens.facts` and :mod:`elc.evaluation.consistency`):
exact facts; semantic consistency (MiniLM cosine between the answer and the movie's
semantic vector, and the movie's rank among all movies); behavioural consistency (the
answer mapped into the ALS space by a ridge regression fitted on training targets, then
the Spearman correlation of item scores and the recall of the true entity); the share of
distinct answers (whitespace aside) among the task's prompts; for movie_identity, the
chrF (0-100, character n-grams) of the answer against the true "Title (year)". Beside them, linear probes of
the same facts from each space's vectors and the commonest answer
(:mod:`elc.projects.movielens.fact_probes`).

Novel entities: answers for interpolations between held-out movies' vectors, scored by SC
against the interpolated semantic vectors and by their drift from movie a to movie b; and
for held-out users moved along genre concept directions (CAVs), scored by whether the
profiles like the genre more and the recovered vectors move along the direction.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from typing import Any, Sequence

import numpy as np
from absl import logging

from elc.data.examples import Example
from elc.projects.movielens.tasks import TASKS
from elc.vectors.minilm import SentenceEncoder
from elc.evaluation import concepts, consistency
from elc.evaluation.chrf import chrf
from elc.evaluation.answers import ANSWERS_FILE, Answer, AnswersMeta, check_settings, read_answers
from elc.projects.movielens.fact_probes import ceilings, probe_tasks
from elc.projects.movielens.facts import (fact_metrics, liked_genres, mean_metrics, parse_facts,
                                          set_f1)
from elc.projects.movielens.eval_data import (
    MOVIE_BEHAVIOURAL, MOVIE_SEMANTIC, SINGLE_ENTITY, USER_BEHAVIOURAL, EvalData, entity,
    generation_settings, interpolation_space, label_task, read_examples, sample, task_label)
from elc.evaluation.phases import eval_dir


# Tasks whose target is a movie's title and year alone: their answers also get chrF.
TITLE_TASKS = ("movie_identity",)


@dataclasses.dataclass
class HeldOutAnswers:
    """The held-out examples and every variant's answers to them.

    Attributes:
      examples: task -> its held-out examples, in the order they were asked.
      texts: variant -> task -> the answers, one per example (text_only: movie tasks only).
    """

    examples: dict[str, list[Example]]
    texts: dict[str, dict[str, list[str]]]

    @classmethod
    def from_answers(cls, answers: Sequence[Answer], tasks: Sequence[str]) -> HeldOutAnswers:
        """The examples as the reference's answers record them (prompt, entities, target),
        filed by ``tasks``' labels (:func:`task_label`); raises ValueError when a variant's
        answers do not cover exactly those examples."""
        by_key: dict[tuple[str, str, int], Answer] = {}
        for a in answers:
            if a.probe == "held_out":
                by_key[(a.variant, task_label(a.task, a.entities or a.slots), a.example)] = a
        examples = {}
        for task in tasks:
            reference = sorted((k[2], a) for k, a in by_key.items()
                               if k[:2] == ("reference", task))
            if [i for i, _ in reference] != list(range(len(reference))) or not reference:
                raise ValueError(f"the saved answers hold no complete reference for task "
                                 f"{task!r} (examples {[i for i, _ in reference]})")
            examples[task] = [Example(a.prompt, a.target or "", dict(a.entities or a.slots),
                                      a.task, a.origin or "") for _, a in reference]
        texts: dict[str, dict[str, list[str]]] = {}
        for (variant, task, index), a in by_key.items():
            if task not in examples or index >= len(examples[task]) or (
                    a.target != examples[task][index].target):
                raise ValueError(f"saved answer of {variant} to {task} example {index} does not "
                                 f"match the reference's examples")
            texts.setdefault(variant, {}).setdefault(task, [None] * len(examples[task]))
            texts[variant][task][index] = a.answer
        for variant, per_task in texts.items():
            for task, found in per_task.items():
                if None in found:
                    raise ValueError(f"the saved answers of {variant} to {task} miss examples "
                                     f"{[i for i, t in enumerate(found) if t is None]}")
        # Tasks in report order for every variant.
        return cls(examples, {v: {t: ts[t] for t in tasks if t in ts} for v, ts in texts.items()})


@dataclasses.dataclass
class InterpolationAnswers:
    """Answers about points between two movies: ``points[w, p]`` is pair ``p`` at weight
    ``weights[w]`` and ``texts[w * len(pairs) + p]`` its answer."""

    variant: str
    task: str
    weights: list[float]
    pairs: list[tuple[str, str]]
    points: np.ndarray
    texts: list[str]
    space: str = ""  # the movie space of the points

    @classmethod
    def from_answers(cls, answers: Sequence[Answer], weights: Sequence[float]
                     ) -> InterpolationAnswers | None:
        rows = [a for a in answers if a.probe == "interpolation"]
        if not rows:
            return None
        weights = list(weights)
        count = len(rows) // len(weights)
        grid = [rows[w * count:(w + 1) * count] for w in range(len(weights))]
        pairs = [tuple(a.pair) for a in grid[0]]
        if len(rows) != count * len(weights) or any(
                [tuple(a.pair) for a in per_weight] != pairs
                or any(a.weight != weights[w] for a in per_weight)
                for w, per_weight in enumerate(grid)):
            raise ValueError(f"the saved interpolation answers are not the same pairs at each "
                             f"of the weights {weights}, weight by weight")
        space = rows[0].spaces[0]
        points = np.array([[a.slots[space] for a in per_weight] for per_weight in grid])
        return cls(rows[0].variant, rows[0].task, weights, pairs, points,
                   [a.answer for a in rows], space)


@dataclasses.dataclass
class CavAnswers:
    """Answers about held-out users moved along one genre's direction: ``shifted[a, u]``
    is user ``u`` moved by ``amounts[a]``, ``texts[a * len(users) + u]`` its answer."""

    variant: str
    task: str
    genre: str
    amounts: list[float]
    users: list[str]
    shifted: np.ndarray
    texts: list[str]
    direction: np.ndarray
    positive_users: int
    train_users: int

    @classmethod
    def from_answers(cls, answers: Sequence[Answer], genre: str, amounts: Sequence[float],
                     cav: dict[str, Any]) -> CavAnswers:
        rows = [a for a in answers if a.probe == "cav" and a.genre == genre]
        amounts = list(amounts)
        count = len(rows) // len(amounts)
        grid = [rows[i * count:(i + 1) * count] for i in range(len(amounts))]
        users = [a.user for a in grid[0]]
        if not count or len(rows) != count * len(amounts) or any(
                [a.user for a in g] != users or any(a.amount != amounts[i] for a in g)
                for i, g in enumerate(grid)):
            raise ValueError(f"the saved CAV answers for {genre} are not the same users at "
                             f"each of the amounts {amounts}, amount by amount")
        shifted = np.array([[a.slots[USER_BEHAVIOURAL] for a in g] for g in grid])
        return cls(rows[0].variant, rows[0].task, genre, amounts, users, shifted,
                   [a.answer for a in rows], np.array(cav["direction"]),
                   cav["positive_users"], cav["train_users"])


class Scorer:
    """Scores answers of single-entity tasks: facts, semantic and behavioural consistency."""

    def __init__(self, data: EvalData, text_vectors: SentenceEncoder,
                 examples: dict[str, list[Example]], train_examples: Sequence[Example],
                 eval_config):
        self.data = data
        self.text_vectors = text_vectors
        self.ridge: dict[str, consistency.RidgeMap] = {}
        for task in dict.fromkeys(map(label_task, examples)):
            kind = TASKS[task].kind
            if kind not in SINGLE_ENTITY:
                continue
            fit_on = sample([e for e in train_examples if e.task == task],
                            eval_config.ridge_examples, eval_config.seed)
            if len(fit_on) < 2:
                logging.warning("no behavioural consistency for %s: %d training examples",
                                task, len(fit_on))
                continue
            targets = data.rows(self.behavioural_space(task), [entity(e, kind) for e in fit_on])
            self.ridge[task] = consistency.RidgeMap.fit(
                text_vectors.encode([e.target for e in fit_on]), targets, l2=eval_config.ridge_l2)

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
        # Recall@10 among 1,682 movies or 943 users is 0 even for the reference texts on
        # ML-100k: it cannot tell variants apart. The rank keeps its signal.
        return {f"bc_{k}": v for k, v in result.items() if not k.startswith("recall@")}

    def score(self, label: str, examples: Sequence[Example], answers: Sequence[str]
              ) -> dict[str, float]:
        """Mean metrics of ``answers`` to ``examples`` filed under ``label``."""
        task = label_task(label)
        rows = [fact_metrics(task, a, e.target, self.data.catalogue)
                for e, a in zip(examples, answers)]
        if task in TITLE_TASKS:  # inversion: how close the answer comes to the true title
            for row, e, a in zip(rows, examples, answers):
                row["title_chrf"] = chrf(a.strip(), e.target)
        kind = TASKS[task].kind
        per_example: dict[str, np.ndarray] = {}
        if kind in SINGLE_ENTITY:
            vectors = self.text_vectors.encode(list(answers))
            ids = [entity(e, kind) for e in examples]
            if kind == "movie":
                semantic = self.data.tables[MOVIE_SEMANTIC]
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
        # An answer that ignores its vector is the same for every prompt.
        distinct = len({" ".join(a.split()) for a in answers}) / len(answers) if answers else 0.0
        return {**means, "distinct_answers": distinct, "n": len(rows)}


def facts_toward_b(found: InterpolationAnswers, data: EvalData) -> np.ndarray:
    """[weights, pairs]: how much more each answer's genres and decade match movie b's than
    movie a's. The genre F1 with b's genres minus that with a's, plus 1 if the answer's
    decade is b's and minus 1 if it is a's (from its year where it states one). The true
    genres are read by the same parser as the answer's."""
    catalogue = data.catalogue
    # (sign, true genres, year) of movies a and b of each pair, read once for all weights.
    truths = []
    for pair in found.pairs:
        movies = [data.ml.movies[int(movie_id)] for movie_id in pair]
        truths.append([(sign, parse_facts("movie_genres", ", ".join(movie.genres),
                                          catalogue)["genres"], movie.year)
                       for sign, movie in zip((-1, 1), movies)])
    toward = np.zeros((len(found.weights), len(found.pairs)))
    for w in range(len(found.weights)):
        for p, pair_truths in enumerate(truths):
            facts = parse_facts(found.task, found.texts[w * len(found.pairs) + p], catalogue)
            year = facts.get("year")
            decade = facts.get("decade") or (year // 10 * 10 if year else None)
            for sign, genres, movie_year in pair_truths:
                if "genres" in facts and genres:
                    toward[w, p] += sign * set_f1(facts["genres"], genres)
                if decade is not None and movie_year:
                    toward[w, p] += sign * float(decade == movie_year // 10 * 10)
    return toward


def score_interpolations(found: InterpolationAnswers, scorer: Scorer) -> dict[str, Any]:
    """SC of the answers against the interpolated semantic vectors, BC against the
    interpolated behavioural ones, and whether they drift from movie a to movie b: in
    MiniLM space, and in the genres and decade they state (``facts_toward_b``, see
    :func:`facts_toward_b`; its ``steps_up`` is the share of steps from one weight to the
    next at which the answers move toward b)."""
    data, weights, task = scorer.data, found.weights, found.task
    a_ids, b_ids = [a for a, _ in found.pairs], [b for _, b in found.pairs]
    vectors = scorer.text_vectors.encode(found.texts).reshape(len(weights), len(a_ids), -1)
    sem_a, sem_b = data.rows(MOVIE_SEMANTIC, a_ids), data.rows(MOVIE_SEMANTIC, b_ids)
    sem_target = concepts.interpolate(sem_a, sem_b, weights)
    beh_target = concepts.interpolate(data.rows(MOVIE_BEHAVIOURAL, a_ids),
                                      data.rows(MOVIE_BEHAVIOURAL, b_ids), weights)
    metrics: dict[str, list[float]] = {"sc_cosine": [], "cosine_to_a": [], "cosine_to_b": []}
    drift = np.zeros((len(weights), len(a_ids)))
    for w in range(len(weights)):
        sc = consistency.cosine_rows(vectors[w], sem_target[w])
        metrics["sc_cosine"].append(float(sc.mean()))
        to_a = consistency.cosine_rows(vectors[w], sem_a)
        to_b = consistency.cosine_rows(vectors[w], sem_b)
        metrics["cosine_to_a"].append(float(to_a.mean()))
        metrics["cosine_to_b"].append(float(to_b.mean()))
        drift[w] = to_b - to_a
        if task in scorer.ridge:
            bc = scorer.behavioural(task, vectors[w], beh_target[w], np.full(len(a_ids), -1))
            metrics.setdefault("bc_spearman", []).append(float(np.nanmean(bc["bc_spearman"])))
    titles = {i: data.title(i) for i in a_ids + b_ids}
    samples = [{"a": titles[a_ids[p]], "b": titles[b_ids[p]], "weight": weights[w],
                "text": found.texts[w * len(a_ids) + p]}
               for p in range(min(2, len(a_ids))) for w in range(len(weights))]
    toward = facts_toward_b(found, data)
    metrics["facts_toward_b"] = toward.mean(axis=1).tolist()
    trend = {f"b_minus_a_{k}": v for k, v in concepts.trend_agreement(weights, drift).items()}
    trend.update({f"facts_toward_b_{k}": v
                  for k, v in concepts.trend_agreement(weights, toward).items()})
    return {"weights": weights, "task": task, "space": found.space, "metrics": metrics,
            "trend": trend,
            "samples": samples, "pairs": [[titles[a], titles[b]] for a, b in found.pairs],
            "variant": found.variant}


def score_cav(found: CavAnswers, scorer: Scorer) -> dict[str, Any]:
    """Do the profiles like the genre more as the users move along its direction, and does
    their recovered vector move along it?"""
    task, amounts, users, texts = found.task, found.amounts, found.users, found.texts
    likes = np.array([found.genre in (liked_genres(text, scorer.data.catalogue) or ())
                      for text in texts], float).reshape(len(amounts), len(users))
    metrics = {"likes_genre": likes.mean(axis=1).tolist()}
    trend = {f"likes_{k}": v for k, v in concepts.trend_agreement(amounts, likes).items()}
    if task in scorer.ridge:
        vectors = scorer.text_vectors.encode(texts).reshape(len(amounts), len(users), -1)
        along = np.stack([scorer.ridge[task].predict(v) @ found.direction for v in vectors])
        metrics["recovered_along_cav"] = along.mean(axis=1).tolist()
        metrics["bc_spearman"] = [float(np.nanmean(scorer.behavioural(
            task, vectors[a], found.shifted[a], np.full(len(users), -1))["bc_spearman"]))
            for a in range(len(amounts))]
        trend.update({f"recovered_{k}": v
                      for k, v in concepts.trend_agreement(amounts, along).items()})
    return {"amounts": amounts, "task": task, "metrics": metrics, "trend": trend,
            "positive_users": found.positive_users, "train_users": found.train_users,
            "samples": [{"user": int(users[u]), "amount": amounts[a],
                         "text": texts[a * len(users) + u]}
                        for u in range(min(2, len(users))) for a in range(len(amounts))],
            "variant": found.variant}


def embedding_map(data: EvalData, movie_space: str, interpolation: InterpolationAnswers | None,
                  samples_by_movie: dict[str, str]) -> dict[str, Any]:
    """All movies projected on the top 2 principal components of their vectors, with some
    held-out movies and interpolation midpoints annotated by what the ELM said about them."""
    table = data.tables[movie_space]
    mean = table.vectors.mean(axis=0)
    _, _, components = np.linalg.svd(table.vectors - mean, full_matrices=False)

    def project(v):
        return (np.asarray(v) - mean) @ components[:2].T

    xy = project(table.vectors)
    held_out = [int(i) in data.split.eval_movies for i in table.ids]
    annotations = []
    for movie_id, text in list(samples_by_movie.items())[:6]:
        x, y = xy[table.index_of(movie_id)]
        annotations.append({"x": float(x), "y": float(y), "kind": "held_out",
                            "text": f"{data.title(movie_id)}: {text}"})
    if interpolation:
        middle = len(interpolation.weights) // 2
        points = interpolation.points[middle]
        for p in range(min(3, points.shape[0])):
            x, y = project(points[p])
            a, b = (data.title(i) for i in interpolation.pairs[p])
            text = interpolation.texts[middle * points.shape[0] + p]
            annotations.append({"x": float(x), "y": float(y), "kind": "interpolation",
                                "text": f"{a} + {b}: {text}"})
    return {"x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(), "held_out": held_out,
            "labels": [data.title(i) for i in table.ids], "annotations": annotations}


def _samples(held_out: HeldOutAnswers, data: EvalData, variants: Sequence[str], count: int
             ) -> list[dict[str, Any]]:
    """The first ``count`` examples of every task with what every variant answered."""
    samples = []
    for task, examples in held_out.examples.items():
        for i, example in enumerate(examples[:count]):
            samples.append({
                "task": task, "prompt": example.prompt, "reference": example.target,
                "entities": ", ".join(
                    data.title(v) if k.startswith("movie_") else f"user {v}"
                    for k, v in example.slots.items()),
                "generated": {v: held_out.texts[v][task][i] for v in variants
                              if v != "reference" and task in held_out.texts.get(v, {})}})
    return samples


def _movie_answers(held_out: HeldOutAnswers, variant: str, space: str) -> dict[str, str]:
    """Movie id -> the first answer ``variant`` gave about it in ``space`` (summaries first)."""
    movie_answers: dict[str, str] = {}
    for task in ("movie_summary", "movie_identity", "movie_genres"):
        label = f"{task}@{space}"
        for example, text in zip(held_out.examples.get(label, []),
                                 held_out.texts.get(variant, {}).get(label, [])):
            movie_answers.setdefault(entity(example, "movie"), text)
    return movie_answers


def score_answers(config, workdir: str, generate_command: str) -> dict[str, Any]:
    """Scores the answers saved in ``WORKDIR/eval`` against the prepared data of ``config``
    (the config they were made with); returns the results (the report's input, JSON-able).

    ``generate_command`` is the command that makes the answers, named in the errors raised
    when they are missing or were made with different settings.
    """
    started = time.time()
    eval_config, prepare = config.eval, config.prepare
    out_dir = eval_dir(workdir)
    meta, answers = read_answers(out_dir, generate_command)
    check_settings(meta, generation_settings(config), f"{out_dir}/{ANSWERS_FILE}",
                   generate_command)
    data = EvalData.load(prepare)
    held_out = HeldOutAnswers.from_answers(answers, meta.tasks)
    train_examples = read_examples(config.data, "train")
    scorer = Scorer(data, SentenceEncoder.from_package(), held_out.examples, train_examples,
                    eval_config)
    variants = meta.variants
    per_task = {task: {variant: scorer.score(task, examples, held_out.texts[variant][task])
                       for variant in variants if task in held_out.texts.get(variant, {})}
                for task, examples in held_out.examples.items()}
    interpolation = InterpolationAnswers.from_answers(answers, eval_config.interpolation_weights)
    last = meta.stages[-1]["name"]
    probes = probe_tasks(held_out.examples, train_examples, data)
    results = {
        "title": f"MovieLens ELM evaluation: {config.backbone.format} {config.backbone.preset}",
        "created": datetime.date.today().isoformat(),
        "setup": {"workdir": workdir, "data": prepare.out_dir, "backbone": config.backbone.format,
                  "devices": meta.devices,
                  "examples per task": eval_config.examples_per_task,
                  "max new tokens": eval_config.max_new_tokens,
                  **{f"{s['name']} steps": s["steps"] for s in meta.stages}},
        "variants": variants,
        "variant_notes": _variant_notes(meta, last),
        "per_task": per_task,
        "probes": probes,
        "vector_use": {s["name"]: s["eval"] for s in meta.stages
                       if "vector_gain" in s.get("eval", {})},
        "ceilings": ceilings(probes, last),
        "samples": _samples(held_out, data, variants, eval_config.samples_per_task),
        "map": embedding_map(data, interpolation_space(config), interpolation,
                             _movie_answers(held_out, last, interpolation_space(config))),
    }
    if interpolation:
        results["interpolation"] = score_interpolations(interpolation, scorer)
    if meta.cav:
        results["cav"] = {genre: score_cav(CavAnswers.from_answers(
            answers, genre, eval_config.cav_amounts, cav), scorer)
            for genre, cav in meta.cav.items()}
    results["setup"]["seconds"] = round(meta.seconds + time.time() - started)
    return results


def _variant_notes(meta: AnswersMeta, last: str) -> dict[str, str]:
    return {
        "untrained": "the backbone with freshly initialised adapters",
        **{s["name"]: f"after stage {i + 1} ({s['name']}: {', '.join(s['trainable'])})"
           for i, s in enumerate(meta.stages)},
        "text_only": f"the {last} model given the title instead of the vector (movie tasks)",
        "reference": "the true target text: the ceiling of the consistency metrics"}
