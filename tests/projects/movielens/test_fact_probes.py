"""Information ceilings: linear probes of the evaluation's facts on the prepared ML-100k."""

import pytest
from helpers import needs_recbole

from elc.projects.movielens.eval_data import read_examples
from elc.projects.movielens.fact_probes import probe_task, probed_metrics

pytestmark = needs_recbole


def test_metrics_on_facts_no_probe_predicts_are_left_out():
    # A held-out movie's title is in no training row: no probe names it.
    assert probed_metrics("movie_summary") == ["year_accuracy", "genre_f1", "rating_error"]
    assert probed_metrics("movie_identity") == ["year_accuracy"]
    assert probed_metrics("user_demographics") == ["gender_accuracy", "occupation_accuracy",
                                                   "age_error", "demographic_accuracy"]
    assert probed_metrics("movie_compare") == []  # two movies: no single vector to probe


@pytest.mark.slow
def test_semantic_vectors_hold_genres_and_behavioural_ones_less(prepared_eval_data):
    config, data = prepared_eval_data
    held_out = [e for e in read_examples(config.data, "eval") if e.task == "movie_genres"]
    result = probe_task("movie_genres", held_out, read_examples(config.data, "train"), data)
    assert result["n"] == len(held_out) >= 100 and result["train"] > 1000
    f1 = {space: scores["genre_f1"] for space, scores in result["probe"].items()}
    # MiniLM vectors embed each movie's own description; ALS vectors only who rated it.
    # On ML-100k a ridge probe reads genres from the first almost perfectly, from the second
    # about half right, against about a third for always answering the commonest genres.
    assert f1["movie_semantic"] > 0.8
    assert result["commonest"]["genre_f1"] + 0.05 < f1["movie_behavioural"] < f1["movie_semantic"]
