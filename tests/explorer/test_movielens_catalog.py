"""The explorer's view of a MovieLens run (elc/projects/movielens/explorer.py), on the data
prepared for the tests."""

import re

import pytest

from helpers import needs_recbole

from elc.projects.movielens.explorer import movielens_catalog
from elc.projects.movielens.tasks import TASKS, task_data

pytestmark = needs_recbole


@pytest.fixture(scope="module")
def catalog_and_data(prepared_eval_data):
    config, data = prepared_eval_data
    return movielens_catalog(config, progress=lambda line: None), data


def test_spaces_tasks_and_directions(catalog_and_data):
    catalog, data = catalog_and_data
    assert list(catalog.spaces)[-1] == "user_behavioural"
    movies = catalog.space("movie_semantic")
    row = movies.index("Toy Story (1995)")
    assert movies.facts["genre"][row] == "Animation" and movies.facts["decade"][row] == "1990s"
    assert movies.texts.shape == (len(movies.ids), 384)
    assert "user_profile" in catalog.tasks_for("user_behavioural")
    assert "movie_identity" in catalog.tasks_for("movie_semantic")
    assert "Comedy" in catalog.directions["user_behavioural"]


def test_users_are_coloured_by_the_genre_their_profile_names_first(catalog_and_data):
    catalog, data = catalog_and_data
    users = catalog.space("user_behavioural")
    profiles = task_data(data.ml, data.split, "eval")
    checked = 0
    for row, user in enumerate(users.ids[:60]):
        profile = TASKS["user_profile"].target(profiles, (int(user),))
        named = re.match(r"Likes ([^,.]+?)(,| and |\.)", profile or "")
        expected = named.group(1) if named else "none"
        assert users.facts["liked genre"][row] == expected, (user, profile)
        checked += named is not None
    assert checked > 30  # most users like some genre
