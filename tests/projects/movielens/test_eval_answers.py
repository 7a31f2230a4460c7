"""Saved answers: generation apart from scoring in the MovieLens evaluation."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import ROOT, load_config, needs_recbole
from elc.projects.movielens import eval_generate, eval_score, evaluation
from elc.evaluation.answers import (ANSWERS_FILE, META_FILE, Answer, AnswersMeta, check_settings,
                                    read_answers, write_answers)

COMMAND = "python -m launch.eval --phase=generate"

# launch.eval with every way to a model or to generation replaced by an error: what
# scoring saved answers may not need.
NO_MODEL_EVAL = """
from absl import app
import elc.checkpoints.backbone, elc.generation.answering, elc.train.trainer
from elc.projects.movielens import eval_generate

def forbidden(*args, **kwargs):
    raise AssertionError("scoring saved answers loaded a model or generated")

for module, names in (
        (eval_generate, ("generate_answers", "setup_run", "initial_params",
                              "restore_stage_params", "answer")),
        (elc.train.trainer, ("setup_run", "initial_params", "restore_stage_params",
                             "load_backbone")),
        (elc.checkpoints.backbone, ("load_backbone",)),
        (elc.generation.answering, ("answer", "generate"))):
    for name in names:
        setattr(module, name, forbidden)
from launch import eval as launch_eval
app.run(launch_eval.main)
"""


def _answers():
    return [Answer("full", "held_out", "movie_genres", "Genres of <movie_behavioural>?",
                   {"movie_behavioural": "5"}, ["movie_behavioural"], "Drama", example=0,
                   entities={"movie_behavioural": "5"}, target="Crime, Drama"),
            Answer("full", "interpolation", "movie_summary", "Describe <movie_behavioural>.",
                   {"movie_behavioural": [0.1, -2.5, float("nan")]}, ["movie_behavioural"],
                   "A film.", pair=["5", "9"], weight=0.25)]


def _meta(**settings):
    return AnswersMeta(settings=settings, stages=[{"name": "full", "steps": 2,
                                                   "trainable": [".*"]}],
                       variants=["full", "reference"], tasks=["movie_genres"],
                       generation={"max_new_tokens": 6}, cav={}, seconds=1.5,
                       devices="1 x cpu", created="2026-01-01T00:00:00")


def _strict_json(text):
    def bare(constant):
        raise ValueError(f"bare {constant} in the file")
    return json.loads(text, parse_constant=bare)


def test_answers_round_trip_as_plain_json(tmp_path):
    answers = _answers()
    path = write_answers(str(tmp_path), answers, _meta(**{"eval.tasks": ("movie_genres",)}))
    assert path == str(tmp_path / ANSWERS_FILE)
    assert sorted(os.listdir(tmp_path)) == [ANSWERS_FILE, META_FILE]  # no temporary files
    lines = (tmp_path / ANSWERS_FILE).read_text().splitlines()
    records = [_strict_json(line) for line in lines]
    assert records[0]["example"] == 0 and "pair" not in records[0]
    assert records[1]["slots"]["movie_behavioural"] == [0.1, -2.5, None]  # NaN as null
    meta = _strict_json((tmp_path / META_FILE).read_text())
    assert meta["answers"] == 2 and meta["settings"] == {"eval.tasks": ["movie_genres"]}

    read_meta, read = read_answers(str(tmp_path), COMMAND)
    assert read[0] == answers[0]
    assert read[1].weight == 0.25 and read[1].pair == ["5", "9"]
    assert read_meta.devices == "1 x cpu" and read_meta.answers == 2


def test_changed_or_partial_answers_are_refused(tmp_path):
    write_answers(str(tmp_path), _answers(), _meta())
    with open(tmp_path / ANSWERS_FILE, "a") as f:
        f.write(json.dumps(_answers()[0].to_json()) + "\n")
    with pytest.raises(ValueError, match="SHA-256 differs"):
        read_answers(str(tmp_path), COMMAND)
    # Answers whose header was never written (a crash in between) are not complete.
    os.remove(tmp_path / META_FILE)
    with pytest.raises(FileNotFoundError, match=f"{META_FILE} does not exist.*{COMMAND}"):
        read_answers(str(tmp_path), COMMAND)


def test_missing_answers_name_the_file_and_the_command(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        read_answers(str(tmp_path), COMMAND)
    assert str(tmp_path / ANSWERS_FILE) in str(error.value) and COMMAND in str(error.value)


def test_a_different_setting_is_named():
    meta = _meta(**{"eval.tasks": ["movie_genres", "user_profile"], "variant": "full"})
    check_settings(meta, {"eval.tasks": ("movie_genres", "user_profile"), "variant": "full"},
                   "answers.jsonl", COMMAND)  # tuples and lists alike
    with pytest.raises(ValueError, match=r'made with eval.tasks=\["movie_genres", '
                       r'"user_profile"\] but this config has eval.tasks=\["movie_genres"\]'):
        check_settings(meta, {"eval.tasks": ["movie_genres"], "variant": "full"},
                       "answers.jsonl", COMMAND)
    with pytest.raises(ValueError, match='variant="full" but this config has '
                       'variant="cpu_quick"'):
        check_settings(meta, {"eval.tasks": ["movie_genres", "user_profile"],
                              "variant": "cpu_quick"}, "answers.jsonl", COMMAND)


def _movielens_config():
    return load_config("movielens_elm", "cpu_quick")


@pytest.mark.parametrize("phase, expected", [("generate", ["generate"]), ("score", ["score"]),
                                             ("all", ["generate", "score"])])
def test_phases_run_their_steps(phase, expected, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(eval_generate, "generate_answers",
                        lambda config, workdir: calls.append("generate") or "answers.jsonl")
    monkeypatch.setattr(eval_score, "score_answers",
                        lambda config, workdir, hint: calls.append("score") or {"n": 1.0})
    monkeypatch.setattr(evaluation, "write_summary", lambda results, out: "summary.json")
    monkeypatch.setattr(evaluation, "goals", lambda results: [])
    monkeypatch.setattr(evaluation, "write_report", lambda results, out: "report.md")
    os.makedirs(tmp_path / "eval")
    path = evaluation.evaluate_and_report(_movielens_config(), str(tmp_path), phase)
    assert calls == expected
    assert path == ("answers.jsonl" if phase == "generate" else "report.md")
    assert os.path.exists(tmp_path / "eval" / "results.json") == (phase != "generate")
    with pytest.raises(ValueError, match="unknown evaluation phase 'later'"):
        evaluation.evaluate_and_report(_movielens_config(), str(tmp_path), "later")


@pytest.mark.slow
def test_score_without_answers_fails_naming_file_and_command(tmp_path):
    result = subprocess.run([sys.executable, "-m", "launch.eval", f"--workdir={tmp_path}",
                             "--config=configs/movielens_elm.py:cpu_quick", "--phase=score"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert f"{tmp_path}/eval/answers.jsonl does not exist" in result.stderr
    assert (f"python -m launch.eval --workdir={tmp_path} "
            "--config=configs/movielens_elm.py:cpu_quick --phase=generate") in result.stderr


# ------------------------------------------------- end to end, on a tiny random backbone


def _run(args, code=None):
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m"]
    return subprocess.run([*command, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def combined(tiny_movielens_run):
    """The tiny run through launch.pipeline (every phase at once): its flags, workdir, and
    results.json and report.md."""
    workdir, flags = tiny_movielens_run
    eval_dir = workdir / "eval"
    return (flags, workdir, json.loads((eval_dir / "results.json").read_text()),
            (eval_dir / "report.md").read_text())


def _score_without_model(flags, workdir, copy_to):
    """launch.eval --phase=score, where loading a model or generating raises, on a copy of
    ``workdir``'s saved answers in ``copy_to``."""
    if workdir != copy_to:
        shutil.copytree(workdir / "eval", copy_to / "eval",
                        ignore=shutil.ignore_patterns("results.json", "report.md"))
    result = _run([f"--workdir={copy_to}", *flags, "--phase=score"], code=NO_MODEL_EVAL)
    assert result.returncode == 0, result.stderr[-3000:]
    return (json.loads((copy_to / "eval" / "results.json").read_text()),
            (copy_to / "eval" / "report.md").read_text())


def _without_times(results):
    """The results but for when, how long and where (the scored copy has its own workdir)."""
    setup = {k: v for k, v in results["setup"].items() if k not in ("seconds", "workdir")}
    return {**{k: v for k, v in results.items() if k != "created"}, "setup": setup}


@pytest.mark.minutes
@pytest.mark.slow
@needs_recbole
def test_saved_answers_score_without_a_model_as_the_combined_run(combined, tmp_path):
    flags, workdir, results, report = combined
    with open(workdir / "eval" / ANSWERS_FILE) as f:
        answers = [json.loads(line) for line in f]
    variants = ["untrained", "adapter", "full", "text_only", "reference"]
    assert {a["variant"] for a in answers} == set(variants)
    assert {a["probe"] for a in answers} == {"held_out", "interpolation", "cav"}
    cav = next(a for a in answers if a["probe"] == "cav")
    assert cav["genre"] == "Comedy" and len(cav["slots"]["user_behavioural"]) == 64
    meta = json.loads((workdir / "eval" / META_FILE).read_text())
    assert meta["settings"]["variant"] == "cpu_quick"
    assert [s["steps"] for s in meta["stages"]] == [2, 2] and meta["devices"].endswith("cpu")

    scored, scored_report = _score_without_model(flags, workdir, tmp_path)
    assert scored["variants"] == variants
    assert _without_times(scored) == _without_times(results)
    drop = ("| seconds |", "Created:")

    def lines(text, workdir):
        return [line.replace(str(workdir), "WORKDIR") for line in text.splitlines()
                if not line.startswith(drop)]
    assert lines(scored_report, tmp_path) == lines(report, workdir)


@pytest.mark.slow
@needs_recbole
def test_scores_come_from_the_saved_answers(combined, tmp_path):
    flags, workdir, results, _ = combined
    shutil.copytree(workdir / "eval", tmp_path / "eval", ignore=shutil.ignore_patterns("*.md",
                                                                                      "*.json"))
    shutil.copy(workdir / "eval" / META_FILE, tmp_path / "eval")
    meta, answers = read_answers(str(tmp_path / "eval"), COMMAND)
    wrong = "Toy Story (1995)"  # not a held-out movie: no held-out target names it
    answers = [dataclasses.replace(a, answer=wrong) if (a.variant, a.task, a.example) == (
        "reference", "movie_identity", 0) else a for a in answers]
    write_answers(str(tmp_path / "eval"), answers, meta)
    scored, _ = _score_without_model(flags, tmp_path, tmp_path)
    # Example 0 of movie_identity in each movie space.
    for label in ("movie_identity@movie_behavioural", "movie_identity@movie_semantic"):
        identity = scored["per_task"][label]
        assert identity["reference"]["title_accuracy"] == pytest.approx(2 / 3)
        assert identity["full"] == results["per_task"][label]["full"]


@pytest.mark.slow
@needs_recbole
def test_scoring_with_another_config_names_the_setting(combined):
    flags, workdir, _, _ = combined
    result = _run([f"--workdir={workdir}", *flags, "--config.eval.examples_per_task=4",
                   "--phase=score"], code=NO_MODEL_EVAL)
    assert result.returncode != 0
    assert ("were made with eval.examples_per_task=3 but this config has "
            "eval.examples_per_task=4") in result.stderr
