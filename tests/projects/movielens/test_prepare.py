"""launch.prepare_data on the offline default (ML-100k from the recbole wheel)."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT, load_config, needs_recbole

from elc.tokenizers.byte_level import byte_level_tokenizer
from elc.data.vector_table import VectorTable
from elc.data.examples import TfdsExampleSource, read_jsonl
from elc.data.iterator import BatchIterator
from elc.projects.movielens.tasks import TASKS
from elc.data.input_pipeline import build_input_pipeline

pytestmark = needs_recbole


@pytest.mark.slow
def test_report_counts_the_published_ml100k(prepared):
    _, report = prepared
    # MovieLens-100k as published by GroupLens: 943 users, 1682 movies, 100,000 ratings.
    assert (report["users"], report["movies"], report["ratings"]) == (943, 1682, 100_000)
    assert report["held_out"] == {"movies": 169, "users": 95}  # ceil(10%)
    assert report["tables"] == {"movie_behavioural": [1682, 64], "user_behavioural": [943, 64],
                                "movie_semantic": [1682, 384]}


@pytest.mark.slow
def test_tables_jsonl_and_tfds_agree(prepared):
    out, report = prepared
    semantic = VectorTable.load("movie_semantic", out / "movie_semantic.npz")
    np.testing.assert_allclose(np.linalg.norm(semantic.vectors, axis=-1), 1.0, atol=1e-5)
    behavioural = VectorTable.load("movie_behavioural", out / "movie_behavioural.npz")
    assert np.isfinite(behavioural.vectors).all() and behavioural.vectors.std() > 0
    for part in ("train", "eval"):
        examples = read_jsonl(out / f"{part}.jsonl")
        assert len(examples) == report["examples"][part] > 0
        assert all(e.task in TASKS for e in examples)
        tfds_source = TfdsExampleSource("elc_examples", part, str(out / "tfds"))
        assert len(tfds_source) == len(examples)
        # TFDS shuffles on write: compare as multisets of (prompt, target, slots).
        key = lambda e: (e.prompt, e.target, json.dumps(e.slots, sort_keys=True))
        assert sorted(map(key, (tfds_source[i] for i in range(len(tfds_source))))) == sorted(
            map(key, examples))


@pytest.mark.slow
def test_training_pipeline_reads_the_prepared_data(prepared):
    out, _ = prepared
    config = load_config("movielens_elm", "cpu_quick")
    config.prepare.out_dir = str(out)
    config.data.max_length = 512  # bytes, for the byte-level test tokenizer
    pipeline = build_input_pipeline(config.data, byte_level_tokenizer(512), num_soft_tokens=1)
    batch = next(BatchIterator(pipeline.train, pipeline.encoder, batch_size=8, seed=0))
    assert batch["tokens"].shape == (8, 512)
    used = sum(batch["slots"][s]["mask"].sum() for s in batch["slots"])
    assert used >= 8  # every example holds at least one vector


@pytest.mark.slow
def test_mixing_weights_reach_the_examples(prepared):
    out, _ = prepared
    era = set(TASKS["movie_era"].prompts({"movie": "movie_behavioural"}))
    identity = set(TASKS["movie_identity"].prompts({"movie": "movie_behavioural"}))
    prompts = {e.prompt for e in read_jsonl(out / "train.jsonl")}
    assert not prompts & era  # weight 0: dropped
    assert prompts & identity  # weight 1: kept


@pytest.mark.slow
def test_pipeline_trains_evaluates_and_reports(tiny_movielens_run):
    """The main job end to end on a tiny random backbone: reuses the prepared data, trains
    both stages, evaluates every variant and writes the report."""
    workdir, flags = tiny_movielens_run
    assert "data already prepared" in (workdir / "pipeline.log").read_text()
    # Stage ends (steps 2 and 4) outlive keep_checkpoints=1: the evaluation restores both.
    assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "4"]
    results = json.loads((workdir / "eval" / "results.json").read_text())
    assert results["variants"] == ["untrained", "adapter", "full", "text_only", "reference"]
    # Movie tasks (movie_era has weight 0) are asked in both movie spaces, user tasks once.
    labels = [f"{task}@{space}" for task in ("movie_identity", "movie_genres", "movie_summary")
              for space in ("movie_behavioural", "movie_semantic")]
    labels += ["user_profile", "user_demographics"]
    assert list(results["per_task"]) == labels
    for space in ("movie_behavioural", "movie_semantic"):
        identity = results["per_task"][f"movie_identity@{space}"]
        # The true targets read back perfectly: the scoring joins answers to the right
        # entities.
        assert identity["reference"]["title_accuracy"] == 1
        assert identity["reference"]["year_accuracy"] == 1
        assert identity["reference"]["n"] == identity["untrained"]["n"] == 3
        # Three different movies' own titles: all distinct, chrF 100 against themselves.
        assert identity["reference"]["distinct_answers"] == 1
        assert identity["reference"]["title_chrf"] == 100
    # Every task has a probed fact (movie_identity: the year), from each space that holds
    # its entities; the last column compares with the probe of the space asked about.
    assert list(results["probes"]) == labels
    assert sorted(results["probes"]["movie_genres@movie_semantic"]["probe"]) == [
        "movie_behavioural", "movie_semantic"]
    assert results["ceilings"]["movie_genres@movie_semantic"]["ratio_to"] == (
        "probe (movie_semantic)")
    assert list(results["ceilings"]["user_profile"]["columns"]) == ["probe (user_behavioural)",
                                                                    "commonest"]
    summary = json.loads((workdir / "eval" / "summary.json").read_text())
    assert summary["movie_genres/genre_f1/movie_semantic/probe"] == (
        results["probes"]["movie_genres@movie_semantic"]["probe"]["movie_semantic"]["genre_f1"])
    assert summary["movie_genres/genre_f1/movie_behavioural/probe_movie_semantic"] == (
        results["probes"]["movie_genres@movie_behavioural"]["probe"]["movie_semantic"][
            "genre_f1"])
    for variant in ("untrained", "adapter", "full", "text_only", "reference", "commonest"):
        assert 0 <= summary[f"movie_genres/genre_f1/movie_semantic/{variant}"] <= 1
    assert summary["user_profile/liked_genre_f1/user_behavioural/full"] == (
        results["per_task"]["user_profile"]["full"]["liked_genre_f1"])
    assert "movie_summary/interpolation_facts_toward_b_steps_up/movie_semantic/full" in summary
    assert "text_only" not in results["per_task"]["user_profile"]
    assert results["per_task"]["user_profile"]["reference"]["liked_genre_f1"] == 1
    assert len(results["interpolation"]["metrics"]["sc_cosine"]) == 5
    assert results["cav"]["Comedy"]["amounts"] == [0.0, 2.0]
    report = (workdir / "eval" / "report.md").read_text()
    assert "| semantic genre F1 |" in report.split("## Goals")[1].split("## Tasks")[0]
    for figure in re.findall(r"\]\((figures/[^)]+)\)", report):
        assert (workdir / "eval" / figure).stat().st_size > 1000

    # The trained run answers about vectors: ids, an interpolation, a user moved along a CAV.
    movie, other = "50", "181"
    sample = subprocess.run([sys.executable, "-m", "launch.sample", f"--workdir={workdir}",
                             *flags, "--config.sample.max_new_tokens=4",
                             f"--movie={movie}", f"--interpolate={movie},{other},0.25",
                             "--user=12", "--cav=12,Horror,1.5", "--stage=adapter"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert sample.returncode == 0, sample.stderr[-3000:]
    labels = re.findall(r"^\[([^\]]+)\]", sample.stdout, re.M)
    assert labels == ["movie 50", "movies 50 -> 181 at 0.25", "user 12", "user 12 + 1.5 x Horror"]
    bad = subprocess.run([sys.executable, "-m", "launch.sample", f"--workdir={workdir}",
                          *flags, "--cav=12,Jazz,1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "genre 'Jazz' is not one of the dataset's genres" in bad.stderr
    unknown = subprocess.run([sys.executable, "-m", "launch.sample", f"--workdir={workdir}",
                              *flags, "--movie=99999"],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert unknown.returncode != 0
    assert "--movie: entity id '99999' is not in embedding space 'movie_behavioural'" in unknown.stderr


@pytest.mark.slow
def test_eval_names_an_unknown_task_before_loading_anything(tmp_path):
    result = subprocess.run([sys.executable, "-m", "launch.eval", f"--workdir={tmp_path}",
                             "--config=configs/movielens_elm.py:cpu_quick",
                             "--config.eval.cav_task=user_dreams"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "config.eval.cav_task names unknown tasks ['user_dreams']" in result.stderr
