"""The MovieLens task registry: hand-computed targets on a tiny dataset, splits, prompts,
errors, and a smoke run on recbole's real ML-100k."""

import importlib.util
import time

import pytest
from helpers import movielens_from_rows

from elc.projects.movielens.dataset import (
    Movie,
    User,
    load_movielens,
)
from elc.data.prompt_slots import slot_space, split_prompt
from elc.projects.movielens.tasks import (
    KIND_ROLES,
    MOVIE_SPACES,
    TASKS,
    USER_SPACES,
    EntitySplit,
    build_examples,
    register,
    split_entities,
    task_data,
)

SPACES = {"movie": "movie_behavioural", "user": "user_behavioural"}

# Genre shares over all 18 ratings: Comedy 10/18, Drama 9/18, Romance 4/18, Action 3/18.
MOVIES = {
    1: Movie("Alpha", 1995, ("Comedy", "Drama")),
    2: Movie("Beta", 1987, ("Action",)),
    3: Movie("Gamma", 1995, ("Drama", "Romance")),
    4: Movie("Delta", None, ("Comedy",)),
    5: Movie("Epsilon", 2001, ("unknown",)),
}
USERS = {
    1: User(24, "M", "student"),
    2: User(30, "F", "engineer"),
    3: User(17, "M", "student"),
    4: User(45, "F", "writer"),
    5: User(60, "M", "retired"),
}
# Per movie: 1 rated 5, 4, 5, 3, 2 (n 5, mean 3.8); 2 rated 4, 2, 1 (n 3, mean 2.3);
# 3 rated 5, 5, 4, 4 (n 4, mean 4.5); 4 rated 2, 2, 3, 4, 2 (n 5, mean 2.6); 5 rated 5.
RATINGS = [  # (user, movie, rating)
    (1, 1, 5), (1, 2, 4), (1, 3, 5), (1, 4, 2),
    (2, 1, 4), (2, 3, 5), (2, 4, 2),
    (3, 1, 5), (3, 2, 2), (3, 4, 3), (3, 3, 4),
    (4, 1, 3), (4, 3, 4), (4, 5, 5), (4, 4, 4),
    (5, 1, 2), (5, 2, 1), (5, 4, 2),
]


@pytest.fixture
def tiny():
    return movielens_from_rows(RATINGS, MOVIES, USERS, "tiny")


def everything_eval(ml):
    """A split whose eval part is the whole dataset, so targets use every rating."""
    return EntitySplit(frozenset(), frozenset(ml.movies.by_id), frozenset(),
                       frozenset(ml.users.by_id))


def target(ml, name, *ids, **kwargs):
    return TASKS[name].target(task_data(ml, everything_eval(ml), "eval", **kwargs), ids)


def test_movie_targets_by_hand(tiny):
    assert target(tiny, "movie_identity", 1) == "Alpha (1995)"
    assert target(tiny, "movie_identity", 4) == "Delta"  # no year
    assert target(tiny, "movie_genres", 1) == "Comedy and Drama"
    assert target(tiny, "movie_genres", 5) is None  # "unknown" is no genre
    assert target(tiny, "movie_era", 2) == "the 1980s"
    assert target(tiny, "movie_era", 5) == "the 2000s"
    assert target(tiny, "movie_era", 4) is None
    # Counts 5, 3, 4, 5, 1: movie 1 has 3 of 5 movies below it (popular), movie 3 two
    # (moderately popular), movie 2 one and movie 5 none (rarely rated).
    assert target(tiny, "movie_reception", 1) == "Popular: 5 ratings, averaging 3.8 out of 5."
    assert target(tiny, "movie_reception", 3) == (
        "Moderately popular: 4 ratings, averaging 4.5 out of 5.")
    assert target(tiny, "movie_reception", 2) == "Rarely rated: 3 ratings, averaging 2.3 out of 5."
    assert target(tiny, "movie_reception", 5) == "Rarely rated: 1 rating, averaging 5.0 out of 5."


def test_audience_by_hand(tiny):
    # Raters 1, 3, 5: ages 24, 17, 60; all men; two students, one retired. 1/3 -> 33%,
    # 2/3 -> 67%; equal shares are listed by label.
    assert target(tiny, "movie_audience", 2) == (
        "Rated by 3 users. Ages: 18-24 (33%), 55 and over (33%) and under 18 (33%). "
        "Gender: men (100%). Top occupations: student (67%) and retired (33%).")
    assert target(tiny, "movie_audience", 1) == (
        "Rated by 5 users. Ages: 18-24 (20%), 25-34 (20%) and 45-54 (20%). "
        "Gender: men (60%) and women (40%). "
        "Top occupations: student (40%), engineer (20%) and retired (20%).")
    assert target(tiny, "movie_summary", 1) == (
        "Alpha (1995): Comedy and Drama. Largest audience groups among its 5 raters: age "
        "18-24 (20%), men (60%), occupation student (40%). "
        "Popular: 5 ratings, averaging 3.8 out of 5.")


def test_similar_and_compare_by_hand(tiny):
    neighbours = {1: [1, 3, 2, 4, 5]}
    assert target(tiny, "movie_similar", 1, neighbours=neighbours) == (
        "Gamma (1995), Beta (1987) and Delta")  # itself dropped, top 3
    assert target(tiny, "movie_similar", 2, neighbours=neighbours) is None
    assert target(tiny, "movie_similar", 1) is None
    assert target(tiny, "movie_compare", 1, 3) == (
        "Both are Drama. Only Alpha (1995) is Comedy. Only Gamma (1995) is Romance. "
        "Alpha (1995) is more popular (5 vs 4 ratings). "
        "Gamma (1995) is better rated (4.5 vs 3.8).")
    assert target(tiny, "movie_compare", 1, 4) == (
        "Both are Comedy. Only Alpha (1995) is Drama. Both have 5 ratings. "
        "Alpha (1995) is better rated (3.8 vs 2.6).")


def test_user_targets_by_hand(tiny):
    # User 1 likes movies 1, 2, 3: Drama 2/3 (lift 4/3), Action 1/3 (lift 2), Romance 1/3
    # (lift 1.5), Comedy 1/3 (lift 0.6, not over-represented). Dislikes movie 4 (Comedy).
    # Favourites: the 5s first, Alpha (5 ratings) before Gamma (4), then Beta's 4.
    assert target(tiny, "user_profile", 1) == (
        "Likes Drama, Action and Romance. Dislikes Comedy. "
        "Favourites: Alpha (1995), Gamma (1995) and Beta (1987). "
        "Rated 4 movies, 4.0 out of 5 on average.")
    assert target(tiny, "user_demographics", 2) == "A 30-year-old woman; occupation: engineer."
    assert target(tiny, "user_demographics", 5) == "A 60-year-old man; occupation: retired."
    assert target(tiny, "user_recommendations", 3,
                  user_recommendations={3: [5, 2]}) == "Epsilon (2001) and Beta (1987)"
    assert target(tiny, "user_recommendations", 3) is None
    assert target(tiny, "user_enjoys_movie", 1, 1) == "Yes: they rated it 5 out of 5."
    assert target(tiny, "user_enjoys_movie", 4, 3) == "Yes: they rated it 4 out of 5."
    assert target(tiny, "user_enjoys_movie", 5, 2) == "No: they rated it 1 out of 5."
    assert target(tiny, "user_enjoys_movie", 3, 4) is None  # a 3
    assert target(tiny, "user_enjoys_movie", 2, 2) is None  # not rated


def test_split_properties(tiny):
    split = split_entities(tiny, movie_fraction=0.5, user_fraction=0.3, seed=4)
    assert split == split_entities(tiny, movie_fraction=0.5, user_fraction=0.3, seed=4)
    assert not split.train_movies & split.eval_movies
    assert not split.train_users & split.eval_users
    assert split.train_movies | split.eval_movies == set(MOVIES)
    assert split.train_users | split.eval_users == set(USERS)
    assert len(split.eval_movies) == 3 and len(split.eval_users) == 2  # rounded up
    small = split_entities(tiny, movie_fraction=0.01, user_fraction=0.01)
    assert len(small.eval_movies) == len(small.eval_users) == 1
    seeds = {split_entities(tiny, seed=s).eval_movies for s in range(10)}
    assert len(seeds) > 1
    with pytest.raises(ValueError, match=r"movie_fraction must be in \(0, 1\), got 1.5"):
        split_entities(tiny, movie_fraction=1.5)


def test_every_prompt_names_only_allowed_spaces_and_every_slot():
    assert set(TASKS) >= {"movie_identity", "movie_genres", "movie_era", "movie_audience",
                          "movie_reception", "movie_similar", "movie_summary", "movie_compare",
                          "user_profile", "user_demographics", "user_recommendations",
                          "user_enjoys_movie"}
    for task in TASKS.values():
        assert len(task.phrasings) >= 2 and task.kind in KIND_ROLES
        for movie_space in MOVIE_SPACES:
            for user_space in USER_SPACES:
                spaces = {"movie": movie_space, "user": user_space}
                keys = task.slot_keys(spaces)
                assert len(keys) == len(KIND_ROLES[task.kind])
                for prompt in task.prompts(spaces):
                    # Raises unless each key appears exactly once and nothing else is a slot.
                    _, slots = split_prompt(prompt, keys, spaces=task.spaces)
                    assert {slot.space for slot in slots} <= set(task.spaces)
                    assert {slot_space(key) for key in keys} <= set(task.spaces)


def test_build_examples_slots_determinism_and_weights(tiny):
    split = split_entities(tiny, movie_fraction=0.3, user_fraction=0.3, seed=1)
    kwargs = {"tasks": list(TASKS), "spaces": SPACES, "split": split, "seed": 3,
              "neighbours": {m: sorted(MOVIES) for m in MOVIES},
              "user_recommendations": {u: sorted(MOVIES) for u in USERS}}
    for part in ("train", "eval"):
        movies = split.train_movies if part == "train" else split.eval_movies
        users = split.train_users if part == "train" else split.eval_users
        examples = build_examples(tiny, part=part, **kwargs)
        assert examples == build_examples(tiny, part=part, **kwargs)
        assert {e.task for e in examples} == set(TASKS)
        for example in examples:
            split_prompt(example.prompt, list(example.slots), spaces=SPACES.values())
            for key, value in example.slots.items():
                assert int(value) in (users if key == "user_behavioural" else movies)
    train = build_examples(tiny, part="train", **kwargs)
    # Train targets come from train-train ratings only and never name an eval movie.
    data = task_data(tiny, split, "train")
    assert set(data.movie_ratings) <= split.train_movies
    assert set(data.user_ratings) <= split.train_users
    eval_titles = {MOVIES[m].title for m in split.eval_movies}
    assert not [e.target for e in train if any(t in e.target for t in eval_titles)]
    semantic = build_examples(tiny, part="train", **{**kwargs, "spaces": {
        "movie": "movie_semantic", "user": "user_behavioural"}, "tasks": ["movie_compare"]})
    assert {tuple(e.slots) for e in semantic} == {("movie_semantic:a", "movie_semantic:b")}
    twice = build_examples(tiny, part="train", examples_per_entity=2, **kwargs)
    assert len(twice) > len(train)
    identity = {**kwargs, "tasks": ["movie_identity"], "examples_per_entity": 3}
    full = build_examples(tiny, part="train", **identity)
    half = build_examples(tiny, part="train", weights={"movie_identity": 0.5}, **identity)
    assert len(full) == 3 * len(split.train_movies) and len(half) == round(len(full) / 2)
    assert all(example in full for example in half)
    no_neighbours = build_examples(tiny, part="train", **{**kwargs, "neighbours": None,
                                                          "tasks": ["movie_similar"]})
    assert no_neighbours == []


def test_errors(tiny):
    split = split_entities(tiny)
    base = {"tasks": ["movie_identity"], "spaces": SPACES, "split": split, "part": "train",
            "seed": 0}
    with pytest.raises(ValueError, match=r"unknown tasks \['movie_plot'\]; known tasks: .*"
                                         r"movie_identity"):
        build_examples(tiny, **{**base, "tasks": ["movie_plot"]})
    with pytest.raises(ValueError, match="task 'movie_identity' cannot use space "
                                         "'user_behavioural' for its movie; it can use"):
        build_examples(tiny, **{**base, "spaces": {"movie": "user_behavioural"}})
    with pytest.raises(ValueError, match="task 'user_demographics' needs a user space"):
        build_examples(tiny, **{**base, "tasks": ["user_demographics"],
                                "spaces": {"movie": "movie_behavioural"}})
    with pytest.raises(ValueError, match="part 'test' is not one of"):
        build_examples(tiny, **{**base, "part": "test"})
    empty = EntitySplit(frozenset(MOVIES), frozenset(), frozenset(USERS), frozenset())
    with pytest.raises(ValueError, match="the eval part of the split is empty"):
        build_examples(tiny, **{**base, "split": empty, "part": "eval"})
    with pytest.raises(ValueError, match="task 'movie_identity' is already registered"):
        register("movie_identity", "movie", ("<movie>?",))
    with pytest.raises(ValueError, match="kind 'film' is not one of"):
        register("film_identity", "film", ("<movie>?",))
    with pytest.raises(ValueError, match=r"weights \{'movie_identity': 2\.0\} must be"):
        build_examples(tiny, **base, weights={"movie_identity": 2.0})


@pytest.mark.skipif(importlib.util.find_spec("recbole") is None, reason="recbole not installed")
def test_real_ml100k_smoke():
    ml = load_movielens("recbole")
    split = split_entities(ml, seed=0)
    assert len(split.eval_movies) == 169 and len(split.eval_users) == 95  # ceil(10%)
    neighbours = {m: [m % 1682 + 1, (m + 1) % 1682 + 1, (m + 2) % 1682 + 1, 1]
                  for m in ml.movies.by_id}
    recommendations = {u: [50, 100, 181, 258] for u in ml.users.by_id}
    start = time.perf_counter()
    built = {part: build_examples(ml, tasks=list(TASKS), spaces=SPACES, split=split, part=part,
                                  seed=0, neighbours=neighbours,
                                  user_recommendations=recommendations)
             for part in ("train", "eval")}
    assert time.perf_counter() - start < 5
    prompts = {prompt for task in TASKS.values() for prompt in task.prompts(SPACES)}
    for examples in built.values():
        used = {e.prompt for e in examples}
        assert used <= prompts and len(used) > len(TASKS)  # every task, several phrasings
    for example in built["eval"]:
        for key, value in example.slots.items():
            assert int(value) not in (split.train_users if key == "user_behavioural"
                                      else split.train_movies)
    targets = {e.target for e in built["eval"]}
    assert any(t.startswith(("Yes: they rated it", "No: they rated it")) for t in targets)
    # No genre is both liked and disliked in a profile (user 6 of ML-100k over-represents
    # Romance among both, which once read "Likes ... Romance ... Dislikes ... Romance").
    for example in built["train"] + built["eval"]:
        if example.target.startswith("Likes ") and " Dislikes " in example.target:
            likes = example.target.split(". Dislikes ")[0].removeprefix("Likes ")
            dislikes = example.target.split(". Dislikes ")[1].split(".")[0]
            split_genres = lambda text: set(text.replace(" and ", ", ").split(", "))
            assert not split_genres(likes) & split_genres(dislikes), example.target
