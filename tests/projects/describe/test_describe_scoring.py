"""Scoring saved answers of the describe project (no model; a stand-in sentence encoder)."""

import json

import numpy as np
import pytest
from helpers import load_config, write_describe_inputs

from elc.evaluation.answers import AnswersMeta, write_answers
from elc.projects.describe import SPACE
from elc.projects.describe import evaluation
from elc.projects.describe.prepare import prepare_describe, read_prepared


class OneHotEncoder:
    """Each catalogue text its own unit vector; any other text the last axis."""

    def __init__(self, texts):
        self.rows = {t: i for i, t in enumerate(texts)}

    def encode(self, texts):
        out = np.zeros((len(texts), len(self.rows) + 1), np.float32)
        for i, t in enumerate(texts):
            out[i, self.rows.get(t, len(self.rows))] = 1.0
        return out


def test_score_answers(tmp_path, monkeypatch):
    table, texts = write_describe_inputs(tmp_path, count=10)
    config = load_config("describe")
    config.prepare.update(table=table, texts=texts, out_dir=str(tmp_path / "out"), holdout=0.3)
    config.eval.samples = 2
    prepare_describe(config.prepare, config.prepare.out_dir)
    descriptions, split = read_prepared(config.prepare.out_dir)
    held = split.eval
    other = split.train[0]

    def answer(variant, i, entity, text):
        return evaluation.Answer(variant, "held_out", "describe", "Describe <entity>.",
                                 {SPACE: entity}, [SPACE], text, example=i,
                                 entities={SPACE: entity}, target=descriptions[entity])

    rows = [answer("full", i, e, descriptions[e] if i == 0 else descriptions[other])
            for i, e in enumerate(held)]
    rows += [answer("reference", i, e, descriptions[e]) for i, e in enumerate(held)]
    meta = AnswersMeta(settings=evaluation.generation_settings(config), stages=[
        {"name": "full", "steps": 2, "trainable": [".*"]}], variants=["full", "reference"],
        tasks=["describe"], generation={}, cav={}, seconds=1.0, devices="1 x cpu",
        created="now")
    workdir = tmp_path / "run"
    write_answers(evaluation.eval_dir(str(workdir)), rows, meta)
    encoder = OneHotEncoder(list(descriptions.values()))
    monkeypatch.setattr(evaluation, "sentence_encoder", lambda path: encoder)
    path = evaluation.evaluate_and_report(config, str(workdir), "score")
    assert path.endswith("report.md") and "| reference | 1.000 | 1.0 |" in open(path).read()
    results = json.loads((workdir / "eval" / "results.json").read_text())
    assert results["entities_asked"] == 3 and results["catalogue"] == 10
    assert results["variants"] == ["full", "reference"]
    reference, full = results["metrics"]["reference"], results["metrics"]["full"]
    assert reference["sc_cosine"] == pytest.approx(1.0) and reference["chrf"] == pytest.approx(100)
    assert reference["recall@1"] == 1.0 and reference["rank_mean"] == 1.0
    # One of three answers is the true text; two name another entity (cosine 0, last rank).
    assert full["sc_cosine"] == pytest.approx(1 / 3)
    assert full["recall@1"] == pytest.approx(1 / 3)
    assert full["rank_mean"] == pytest.approx((1 + 10 + 10) / 3)
    assert len(results["samples"]) == 2 and len(results["per_entity"]) == 3

    config.eval.max_new_tokens = 7
    with pytest.raises(ValueError, match=r"eval.max_new_tokens=64 but this config has "
                                         r"eval.max_new_tokens=7"):
        evaluation.evaluate_and_report(config, str(workdir), "score")


def test_one_prompt_per_held_out_entity():
    from elc.data.examples import Example
    examples = [Example("Describe <entity>.", "x", {SPACE: e}) for e in "aabcc"]
    assert [e.slots[SPACE] for e in evaluation.held_out_examples(examples, 0)] == list("abc")
    assert len(evaluation.held_out_examples(examples, 2)) == 2
