"""Questions about points of the MovieLens spaces (what launch.sample asks)."""

import numpy as np
import pytest
from ml_collections import config_dict

from elc.data.vector_table import VectorTable
from elc.projects.movielens import questions
from elc.projects.movielens.tasks import TASKS

PREPARE = config_dict.ConfigDict(dict(movie_spaces=("movie_behavioural",), source="recbole",
                                      path="", holdout_movies=0.1, holdout_users=0.1, seed=0))


def tables():
    movies = VectorTable("movie_behavioural", ["1", "2"], np.array([[1., 0.], [0., 4.]]))
    users = VectorTable("user_behavioural", ["7"], np.array([[2., 2.]]))
    return {"movie_behavioural": movies, "user_behavioural": users}


def test_movies_users_and_interpolations_become_labelled_requests():
    asked = questions.Questions(movies=["2"], interpolations=[("1", "2", 0.25)], users=["7"])
    got = questions.requests(asked, PREPARE, tables())
    assert [label for label, _ in got] == ["movie 2", "movies 1 -> 2 at 0.25", "user 7"]
    movie_prompt = TASKS["movie_summary"].prompts({"movie": "movie_behavioural"})[0]
    assert got[0][1].prompt == got[1][1].prompt == movie_prompt
    assert got[0][1].slots == {"movie_behavioural": "2"}
    # 0.75 * (1, 0) + 0.25 * (0, 4), worked out by hand.
    np.testing.assert_allclose(got[1][1].slots["movie_behavioural"], [0.75, 1.0])
    assert got[2][1].slots == {"user_behavioural": "7"}


@pytest.mark.parametrize("asked,kind,words", [
    (questions.Questions(movies=["99"]), "movie", "'99'"),
    (questions.Questions(interpolations=[("1", "99", 0.5)]), "interpolate", "'99'"),
    (questions.Questions(users=["8"]), "user", "'8'"),
    (questions.Questions(movies=["1"], movie_task="user_profile"), "movie_task",
     "'user_profile' is not a movie task"),
])
def test_a_bad_question_names_its_kind_and_value(asked, kind, words):
    with pytest.raises(questions.QuestionError, match=words) as error:
        questions.requests(asked, PREPARE, tables())
    assert error.value.kind == kind


def test_a_config_without_the_user_table_is_named():
    with pytest.raises(questions.QuestionError, match="no table for 'user_behavioural'"):
        questions.requests(questions.Questions(movies=["1"]), PREPARE,
                           {"movie_behavioural": tables()["movie_behavioural"]})
