"""summary.json: the headline numbers and the main job's goals, from a hand-made results."""

import json

import pytest

from elc.projects.movielens.summary import summarize, write_summary

STAGES = ["untrained", "adapter", "full"]


def results():
    return {
        "variants": STAGES + ["text_only", "reference"],
        "per_task": {
            "movie_genres@movie_semantic": {
                "untrained": {"genre_f1": 0.1, "distinct_answers": 0.125, "sc_cosine": 0.1},
                "adapter": {"genre_f1": 0.5, "distinct_answers": 0.5, "sc_cosine": 0.2},
                "full": {"genre_f1": 0.85, "distinct_answers": 0.75, "sc_cosine": 0.3},
                "reference": {"genre_f1": 1.0, "sc_cosine": 0.9}},
            "movie_era@movie_semantic": {
                "untrained": {"sc_cosine": 0.0}, "adapter": {"sc_cosine": 0.4},
                "full": {"decade_accuracy": 0.875, "sc_cosine": 0.5}},
            "movie_genres@movie_behavioural": {
                "untrained": {"sc_cosine": 0.1}, "adapter": {"sc_cosine": 0.3},
                "full": {"genre_f1": 0.5, "sc_cosine": 0.2}},
            "user_profile": {"full": {"liked_genre_f1": 0.4}},
        },
        "ceilings": {"movie_genres@movie_behavioural": {"columns": {
            "probe (movie_behavioural)": {"genre_f1": 0.54},
            "probe (movie_semantic)": {"genre_f1": 0.95}, "commonest": {"genre_f1": 0.36}}}},
        "interpolation": {"space": "movie_semantic",
                          "trend": {"facts_toward_b_steps_up": 0.5}},
    }


def test_goals_are_judged_on_the_last_stage():
    summary = summarize(results())
    assert summary["judged"] == "full" and summary["stages"] == STAGES
    met = {goal["name"]: (goal["value"], goal["met"]) for goal in summary["goals"]}
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


def test_each_space_shows_the_stages_beside_the_probes(tmp_path):
    summary = summarize(results())
    assert summary["spaces"]["movie_behavioural"]["genre_f1"] == {
        "untrained": None, "adapter": None, "full": 0.5, "probe (movie_behavioural)": 0.54,
        "probe (movie_semantic)": 0.95, "commonest": 0.36}
    assert summary["users"]["liked_genre_f1"]["full"] == 0.4
    assert summary["interpolation"] == {"space": "movie_semantic", "steps_toward_b": 0.5}
    path = write_summary(results(), str(tmp_path))
    assert json.loads(open(path).read()) == json.loads(json.dumps(summary))
