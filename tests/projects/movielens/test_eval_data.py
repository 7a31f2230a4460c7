"""What the MovieLens evaluation's phases share: movie spaces and the labels of held-out
examples."""

import pytest
from helpers import load_config

from elc.data.examples import Example
from elc.projects.movielens.eval_data import (held_out_examples, interpolation_space, label_space,
                                               label_task, task_label)
from elc.projects.movielens.prepare import tasks_per_movie_space


def test_movie_tasks_are_built_in_each_space_and_user_tasks_once():
    prepare = load_config("movielens_elm", "cpu_quick").prepare
    built = tasks_per_movie_space(prepare)
    assert [space for space, _ in built] == ["movie_behavioural", "movie_semantic"]
    assert built[0][1] == list(prepare.tasks)
    assert built[1][1] == ["movie_identity", "movie_genres", "movie_era", "movie_summary"]
    prepare.movie_spaces = ("movie_semantic", "movie_semantic")
    with pytest.raises(ValueError, match=r"movie_spaces is \('movie_semantic', "
                       r"'movie_semantic'\); expected one or more distinct spaces"):
        tasks_per_movie_space(prepare)


def test_interpolations_default_to_the_last_movie_space_and_must_be_one_of_them():
    config = load_config("movielens_elm", "cpu_quick")
    assert interpolation_space(config) == "movie_semantic"
    config.prepare.movie_spaces = ("movie_behavioural",)
    assert interpolation_space(config) == "movie_behavioural"
    config.eval.interpolation_space = "movie_semantic"
    with pytest.raises(ValueError, match="interpolation_space is 'movie_semantic'; expected "
                       r"one of config.prepare.movie_spaces \('movie_behavioural',\)"):
        interpolation_space(config)


def test_held_out_examples_are_filed_per_task_and_movie_space():
    examples = [Example("p", "t", {"movie_semantic": "1"}, "movie_genres"),
                Example("p", "t", {"user_behavioural": "7"}, "user_profile"),
                Example("p", "t", {"movie_behavioural": "2"}, "movie_genres"),
                Example("p", "t", {"user_behavioural": "7", "movie_semantic": "3"},
                        "user_enjoys_movie"),
                Example("p", "t", {"movie_behavioural": "4"}, "movie_era")]
    grouped = held_out_examples(examples, ["user_profile", "movie_genres", "user_enjoys_movie"],
                                count=5, seed=0)
    # In the order of the tasks asked, the spaces in name order; unasked tasks left out.
    assert list(grouped) == ["user_profile", "movie_genres@movie_behavioural",
                             "movie_genres@movie_semantic", "user_enjoys_movie@movie_semantic"]
    assert [e.slots for e in grouped["movie_genres@movie_semantic"]] == [{"movie_semantic": "1"}]
    assert task_label("movie_compare", ["movie_semantic:a", "movie_semantic:b"]) == (
        "movie_compare@movie_semantic")
    assert (label_task("movie_genres@movie_semantic"), label_space("movie_genres@movie_semantic"),
            label_space("user_profile")) == ("movie_genres", "movie_semantic", None)
