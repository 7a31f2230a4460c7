"""What the explorer shows of a run: lookups by id or name and the errors for bad input."""

import numpy as np
import pytest

from elc.explorer.catalog import Catalog, Space, Task


def _catalog():
    movies = Space("movie_semantic", "movie", ["1", "2"], ["Toy Story (1995)", "Heat (1995)"],
                   np.eye(2, dtype=np.float32), {"genre": ["Animation", "Action"]})
    users = Space("user_behavioural", "user", ["7"], ["user 7"], np.ones((1, 2), np.float32),
                  {"split": ["train"]})
    tasks = {"movie_genres": Task("movie_genres", "movie", lambda s: f"Genres of <{s}>?"),
             "user_profile": Task("user_profile", "user", lambda s: f"Who is <{s}>?")}
    return Catalog("movielens", {s.name: s for s in (movies, users)}, tasks,
                   {"user_behavioural": {"Comedy": np.array([1.0, 0.0])}})


def test_an_entity_is_found_by_id_or_by_name():
    movies = _catalog().space("movie_semantic")
    assert movies.index("2") == 1 and movies.index("Heat (1995)") == 1
    with pytest.raises(ValueError, match=r"'Hea' is not an entity of space 'movie_semantic' "
                                         r"\(give an id such as '1' or a name such as 'Toy Story"):
        movies.index("Hea")


def test_tasks_are_those_of_the_space_kind_and_others_are_an_error():
    catalog = _catalog()
    assert catalog.tasks_for("movie_semantic") == ["movie_genres"]
    assert catalog.task("user_profile", "user_behavioural").prompt("x") == "Who is <x>?"
    with pytest.raises(ValueError, match=r"'user_profile' is not a task of this run about space "
                                         r"'movie_semantic'; expected one of \['movie_genres'\]"):
        catalog.task("user_profile", "movie_semantic")
    with pytest.raises(ValueError, match=r"'movie_era' is not a task"):
        catalog.task("movie_era", "movie_semantic")


def test_unknown_spaces_and_directions_are_errors_naming_the_known_ones():
    catalog = _catalog()
    with pytest.raises(ValueError, match=r"'books' is not a space of this run; expected one of "
                                         r"\['movie_semantic', 'user_behavioural'\]"):
        catalog.space("books")
    with pytest.raises(ValueError, match=r"'Horror' is not a direction of space "
                                         r"'user_behavioural'; expected one of \['Comedy'\]"):
        catalog.direction("user_behavioural", "Horror")


def test_a_space_whose_parts_disagree_in_length_is_an_error():
    with pytest.raises(ValueError, match=r"fact 'genre' has 1 values for 2 entities"):
        Space("m", "movie", ["1", "2"], ["a", "b"], np.zeros((2, 3)), {"genre": ["x"]})
    with pytest.raises(ValueError, match=r"2 ids, 1 labels, 2 vectors"):
        Space("m", "movie", ["1", "2"], ["a"], np.zeros((2, 3)), {})
