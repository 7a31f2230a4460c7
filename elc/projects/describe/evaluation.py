"""Evaluates a describe ELM on held-out entities: generate answers, then score them.

Two phases, which may run on different machines (as for MovieLens):
  * generate: loads the model and saves every variant's answer to one prompt per
    held-out entity in ``WORKDIR/eval/answers.jsonl`` with its header (see
    :mod:`elc.evaluation.answers`). Variants: ``untrained`` (fresh adapters), one per
    training stage, and ``reference`` (the true descriptions: the metrics' ceiling).
  * score: no backbone, no checkpoint. Each answer is compared with the entity's true
    description by
      - ``sc_cosine``: the cosine between the sentence encoder's embeddings of the two;
      - ``chrf``: the character n-gram F-score (:mod:`elc.evaluation.chrf`, 0..100);
      - ``rank``: the rank of the true entity among all entities (training and held-out)
        by the cosine between the answer's embedding and each entity's description's
        embedding (1 is best), with recall@1 and recall@10.
    Writes ``WORKDIR/eval/results.json`` and ``WORKDIR/eval/report.md``.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
from typing import Any, Sequence

import numpy as np

from elc.data.examples import Example
from elc.evaluation.answers import (
    Answer, AnswersMeta, check_settings, read_answers, write_answers)
from elc.evaluation.consistency import semantic_consistency
from elc.evaluation.phases import (eval_dir, generate_command, generation_config, run_phases,
                                   variant_params)
from elc.generation.answering import Request
from elc.projects.describe import SPACE, TASK
from elc.evaluation.chrf import chrf, corpus_chrf
from elc.projects.describe.prepare import read_prepared
from elc.projects.describe.report import write_report
from elc.host_memory import release_freed_host_memory

RECALL_AT = (1, 10)
# config.eval settings that saved answers need not share with the scoring config.
_NOT_COMPARED = ("batch_size", "sentence_encoder", "samples")


def generation_settings(config) -> dict[str, Any]:
    """Flat config field -> value of every setting that decides what is asked and answered;
    saved answers are scored only with the same."""
    settings: dict[str, Any] = {
        "project": TASK,
        "backbone.format": config.backbone.format, "backbone.preset": config.backbone.preset,
        "train.seed": config.train.seed, "train.stages": list(config.train.stages)}
    for name in config.train.stages:
        settings[f"stage.{name}.steps"] = config.stage[name].steps
    for key in ("holdout", "seed", "phrasings_per_entity"):
        settings[f"prepare.{key}"] = config.prepare[key]
    for key, value in config.eval.to_dict().items():
        if key not in _NOT_COMPARED:
            settings[f"eval.{key}"] = value
    return settings


def held_out_examples(examples, count: int) -> list[Example]:
    """The first example of each held-out entity, in file order, ``count`` of them (0: all)."""
    chosen, seen = [], set()
    for index in range(len(examples)):
        example = examples[index]
        entity = example.slots.get(SPACE)
        if not isinstance(entity, str) or entity in seen:
            continue
        seen.add(entity)
        chosen.append(example)
        if count and len(chosen) == count:
            break
    return chosen


def _answers(variant: str, examples: Sequence[Example], texts: Sequence[str]) -> list[Answer]:
    return [Answer(variant, "held_out", TASK, e.prompt, dict(e.slots), [SPACE], text,
                   example=i, origin=e.origin or None, entities=dict(e.slots), target=e.target)
            for i, (e, text) in enumerate(zip(examples, texts))]


def generate_answers(config, workdir: str) -> str:
    """Every variant's answers for the run of ``config`` in ``workdir``; returns their path."""
    import flax.linen as nn
    import jax

    from elc.generation.answering import answer
    from elc.train.trainer import setup_run

    started = time.time()
    run = setup_run(config)
    examples = held_out_examples(run.pipeline.eval, config.eval.entities)
    if not examples:
        raise ValueError(f"no held-out examples with an <{SPACE}> slot in {config.data.eval}; "
                         "prepare the data again")
    requests = [Request(e.prompt, e.slots) for e in examples]
    generation = generation_config(config.eval)
    loaders = variant_params(config, workdir, run)
    rows: list[Answer] = []
    with jax.set_mesh(run.mesh), nn.logical_axis_rules(run.rules):
        for variant, load in loaders:
            params = load()
            rows += _answers(variant, examples, answer(run.elm, params, run.pipeline.encoder,
                                                       requests, generation, label=variant))
            del params
            release_freed_host_memory()  # before the next variant loads
    rows += _answers("reference", examples, [e.target for e in examples])
    meta = AnswersMeta(
        settings=generation_settings(config),
        stages=[{"name": s.name, "steps": s.steps, "trainable": list(s.trainable_patterns)}
                for s in run.stages],
        variants=[v for v, _ in loaders] + ["reference"], tasks=[TASK],
        generation=dataclasses.asdict(generation), cav={},
        seconds=round(time.time() - started, 1),
        devices=f"{jax.device_count()} x {jax.devices()[0].device_kind}",
        created=datetime.datetime.now().isoformat(timespec="seconds"))
    return write_answers(eval_dir(workdir), rows, meta)


def sentence_encoder(path: str):
    """The configured sentence encoder: the packaged all-MiniLM-L6-v2, or the
    sentence-transformers BERT directory ``path``."""
    from elc.vectors.minilm import SentenceEncoder
    return SentenceEncoder.load(path) if path else SentenceEncoder.from_package()


def _mean(values) -> float:
    values = np.asarray(values, np.float64)
    return float(np.nanmean(values)) if values.size else float("nan")


def score_answers(config, workdir: str, generate_command: str, encoder=None) -> dict[str, Any]:
    """Scores the saved answers of the run in ``workdir`` (see the module docstring)."""
    out_dir = eval_dir(workdir)
    meta, answers = read_answers(out_dir, generate_command)
    check_settings(meta, generation_settings(config), os.path.join(out_dir, "answers.jsonl"),
                   generate_command)
    texts, split = read_prepared(config.prepare.out_dir)
    catalogue_ids = list(texts)
    row_of = {entity: row for row, entity in enumerate(catalogue_ids)}
    encoder = encoder or sentence_encoder(config.eval.sentence_encoder)
    catalogue = encoder.encode([texts[i] for i in catalogue_ids])
    by_variant: dict[str, list[Answer]] = {v: [] for v in meta.variants}
    for a in answers:
        by_variant.setdefault(a.variant, []).append(a)
    metrics, per_entity = {}, {}
    for variant, rows in by_variant.items():
        rows = sorted(rows, key=lambda a: a.example)
        if not rows:
            continue
        entities = [str(a.entities[SPACE]) for a in rows]
        missing = [e for e in entities if e not in row_of]
        if missing:
            raise ValueError(f"answers name entities {missing[:5]} that {config.prepare.out_dir}"
                             f"/texts.jsonl lacks; score with the data the answers were made on")
        truth = [texts[e] for e in entities]
        index = np.array([row_of[e] for e in entities])
        vectors = encoder.encode([a.answer for a in rows])
        sc = semantic_consistency(vectors, catalogue[index], catalogue, index, ks=RECALL_AT)
        scores = [chrf(a.answer, t) for a, t in zip(rows, truth)]
        metrics[variant] = {
            "sc_cosine": _mean(sc["cosine"]), "rank_mean": _mean(sc["rank"]),
            "rank_median": float(np.median(sc["rank"])),
            **{f"recall@{k}": _mean(sc[f"recall@{k}"]) for k in RECALL_AT},
            "chrf": _mean(scores), "corpus_chrf": corpus_chrf([a.answer for a in rows], truth)}
        for a, entity, cosine, rank, score in zip(rows, entities, sc["cosine"], sc["rank"],
                                                   scores):
            per_entity.setdefault(entity, {"entity": entity, "target": texts[entity],
                                           "prompt": a.prompt, "answers": {}})
            per_entity[entity]["answers"][variant] = {
                "answer": a.answer, "sc_cosine": float(cosine), "rank": float(rank),
                "chrf": score}
    return {
        "project": TASK, "entities_asked": len(per_entity), "held_out": len(split.eval),
        "catalogue": len(catalogue_ids), "variants": [v for v in by_variant if v in metrics],
        "metrics": metrics, "samples": list(per_entity.values())[:config.eval.samples],
        "per_entity": list(per_entity.values()),
        "generation": meta.generation, "stages": meta.stages,
        "generation_seconds": meta.seconds, "devices": meta.devices, "created": meta.created,
    }


def evaluate_and_report(config, workdir: str, phase: str = "all",
                        generate_command_hint: str | None = None) -> str:
    """Runs ``phase`` of the evaluation of the run of ``config`` in ``workdir``; returns
    ``WORKDIR/eval/answers.jsonl`` for ``generate``, else ``WORKDIR/eval/report.md``."""
    hint = generate_command_hint or generate_command(workdir, "configs/describe.py")
    return run_phases(phase, workdir, lambda: generate_answers(config, workdir),
                      lambda: score_answers(config, workdir, hint),
                      lambda results, out_dir: write_report(results, out_dir))
