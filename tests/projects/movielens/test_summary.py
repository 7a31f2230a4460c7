"""summary.json (flat task/metric/space/variant keys) and the main job's goals, from a
hand-made results."""

import json

import pytest

from elc.evaluation.report import write_report
from elc.projects.movielens.summary import flatten, goals, write_summary

STAGES = ["untrained", "adapter", "full"]


def results():
    return {
        "variants": STAGES + ["text_only", "reference"],
        "per_task": {
            "movie_genres@movie_semantic": {
                "untrained": {"genre_f1": 0.1, "distinct_answers": 0.125, "sc_cosine": 0.1},
                "adapter": {"genre_f1": 0.5, "distinct_answers": 0.5, "sc_cosine": 0.2},
                "full": {"genre_f1": 0.85, "distinct_answers": 0.75, "sc_cosine": 0.3,
                         "n": 8},
                "reference": {"genre_f1": 1.0, "sc_cosine": 0.9}},
            "movie_era@movie_semantic": {
                "untrained": {"sc_cosine": 0.0}, "adapter": {"sc_cosine": 0.4},
                "full": {"decade_accuracy": 0.875, "sc_cosine": 0.5}},
            "movie_genres@movie_behavioural": {
                "untrained": {"sc_cosine": 0.1}, "adapter": {"sc_cosine": 0.3},
                "full": {"genre_f1": 0.5, "sc_cosine": 0.2, "bc_spearman": float("nan")}},
            "user_profile": {"full": {"liked_genre_f1": 0.4}},
        },
        "ceilings": {"movie_genres@movie_behavioural": {"columns": {
            "probe (movie_behavioural)": {"genre_f1": 0.54},
            "probe (movie_semantic)": {"genre_f1": 0.95}, "commonest": {"genre_f1": 0.36}},
            "ratio_of": "full", "ratio_to": "probe (movie_behavioural)"}},
        "interpolation": {"space": "movie_semantic", "task": "movie_summary", "variant": "full",
                          "trend": {"facts_toward_b_steps_up": 0.5}},
        "cav": {"Comedy": {"task": "user_profile", "variant": "full",
                           "trend": {"likes_increased": 0.75}}},
        "vector_use": {"adapter": {"loss": 2.5, "vector_gain": 0.25},
                       "full": {"loss": 0.875, "vector_gain": 0.0}},
    }


def test_keys_are_task_metric_space_variant():
    flat = flatten(results())
    assert flat["movie_genres/genre_f1/movie_semantic/full"] == 0.85
    assert flat["movie_genres/genre_f1/movie_semantic/reference"] == 1.0
    assert flat["movie_genres/n/movie_semantic/full"] == 8
    # Users are asked about their behavioural vectors.
    assert flat["user_profile/liked_genre_f1/user_behavioural/full"] == 0.4
    # The probe of the task's own space is "probe"; another space's is named.
    assert flat["movie_genres/genre_f1/movie_behavioural/probe"] == 0.54
    assert flat["movie_genres/genre_f1/movie_behavioural/probe_movie_semantic"] == 0.95
    assert flat["movie_genres/genre_f1/movie_behavioural/commonest"] == 0.36
    assert flat["movie_summary/interpolation_facts_toward_b_steps_up/movie_semantic/full"] == 0.5
    assert flat["user_profile/cav_Comedy_likes_increased/user_behavioural/full"] == 0.75
    # NaN is left out, not written.
    assert "movie_genres/bc_spearman/movie_behavioural/full" not in flat
    # The end-of-stage losses and vector gains.
    assert flat["all/vector_gain/all/adapter"] == 0.25
    assert flat["all/loss/all/full"] == 0.875
    # Per task 12, 4, 4 (the NaN left out) and 1 values; 3 ceilings, 1 interpolation, 1 CAV,
    # 2 stages x 2 losses.
    assert len(flat) == 12 + 4 + 4 + 1 + 3 + 1 + 1 + 4
    assert all(key.count("/") == 3 for key in flat)


def test_summary_file_is_strict_json_of_numbers(tmp_path):
    path = write_summary(results(), str(tmp_path))
    text = open(path).read()
    assert "NaN" not in text
    loaded = json.loads(text)
    assert loaded == flatten(results())
    assert all(isinstance(v, (int, float)) for v in loaded.values())


def test_goals_are_judged_on_the_last_stage():
    met = {goal["name"]: (goal["value"], goal["met"]) for goal in goals(results())}
    assert met["semantic genre F1"] == (0.85, True)
    assert met["semantic decade accuracy"] == (0.875, False)
    assert met["semantic distinct movie_genres answers"] == (0.75, True)
    assert met["interpolation steps toward movie b"] == (0.5, False)  # more than half asked
    assert met["behavioural genre F1 against its probe"] == (0.5, False)  # probe 0.54
    assert met["semantic exact titles"] == (None, None)  # not asked: not judged
    # Mean SC over the space's tasks: semantic 0.05 < 0.3 < 0.4; behavioural 0.1, 0.3, 0.2.
    assert met["movie_semantic SC rises stage by stage"][1] is True
    assert met["movie_semantic SC rises stage by stage"][0] == pytest.approx([0.05, 0.3, 0.4])
    assert met["movie_behavioural SC rises stage by stage"] == ([0.1, 0.3, 0.2], False)


def test_report_shows_the_goals(tmp_path):
    report = open(write_report({**results(), "goals": goals(results())}, str(tmp_path))).read()
    assert "## Goals" in report
    assert "| semantic genre F1 | 0.850 | >= 0.8 | yes |" in report
    assert "| behavioural genre F1 against its probe | 0.500 | >= 0.54 | **no** |" in report
    assert "| semantic exact titles | – | >= 0.1 | – |" in report


def test_report_shows_what_each_stage_takes_from_its_vectors(tmp_path):
    report = open(write_report(results(), str(tmp_path))).read()
    assert "## What the model takes from its vectors" in report
    # Loss with swapped vectors = loss + gain: 2.5 + 0.25.
    assert "| adapter | 2.500 | 2.750 | 0.250 |" in report
    assert "| full | 0.875 | 0.875 | 0.000 |" in report
