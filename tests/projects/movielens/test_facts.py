"""Exact-fact metrics: hand-scored answers per task, and every tasks.py target of a small
MovieLens scoring perfect against itself."""

import math

import numpy as np
import pytest
from helpers import movielens_from_rows

from elc.projects.movielens.dataset import Movie, User
from elc.projects.movielens.tasks import TASKS, EntitySplit, task_data
from elc.projects.movielens.facts import FACT_METRICS, Catalogue, fact_metrics, mean_metrics

CATALOGUE = Catalogue(
    titles=("Alpha (1995)", "Beta (1987)", "Gamma (1995)", "Delta",
            "Good, The Bad and The Ugly, The (1966)", "Ugly, The (1966)", "Heat (1995)",
            "White Heat (1949)", "Mr. Holland's Opus (1995)"),
    genres=("Action", "Animation", "Children's", "Comedy", "Drama", "Film-Noir", "Romance",
            "Sci-Fi", "Western"),
    occupations=("engineer", "K-12 student", "retired", "student", "writer"))


def scores(task, generated, reference):
    return fact_metrics(task, generated, reference, CATALOGUE)


def assert_scores(task, generated, reference, expected):
    got = scores(task, generated, reference)
    assert list(got) == list(FACT_METRICS[task])
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()),
                               atol=1e-12, err_msg=f"{task}: {generated!r}")


def test_movie_identity():
    ref = "Alpha (1995)"
    assert_scores("movie_identity", ref, ref, {"title_accuracy": 1, "year_accuracy": 1})
    assert_scores("movie_identity", "Alpha (1994)", ref, {"title_accuracy": 1, "year_accuracy": 0})
    # Case, punctuation and surrounding words do not matter.
    assert_scores("movie_identity", "I think it is ALPHA (1995)!", ref,
                  {"title_accuracy": 1, "year_accuracy": 1})
    assert_scores("movie_identity", "Gamma (1995)", ref, {"title_accuracy": 0, "year_accuracy": 1})
    assert_scores("movie_identity", "Zeta Returns (1995)", ref,
                  {"title_accuracy": 0, "year_accuracy": 1})
    for garbage in ("qwerty uiop", ""):
        assert_scores("movie_identity", garbage, ref, {"title_accuracy": 0, "year_accuracy": 0})
    # Without a year in the reference there is no year to check.
    assert_scores("movie_identity", "Delta", "Delta",
                  {"title_accuracy": 1, "year_accuracy": math.nan})
    ugly = "Good, The Bad and The Ugly, The (1966)"
    assert_scores("movie_identity", ugly.lower(), ugly,
                  {"title_accuracy": 1, "year_accuracy": 1})
    assert_scores("movie_identity", "Ugly, The (1966)", ugly,
                  {"title_accuracy": 0, "year_accuracy": 1})


def test_movie_genres_and_era():
    ref = "Animation, Children's and Comedy"
    # {children's, drama} vs {animation, children's, comedy}: F1 = 2 * 1 / (2 + 3).
    assert_scores("movie_genres", "Children's and Drama", ref, {"genre_f1": 0.4})
    assert_scores("movie_genres", "comedy, animation and children's", ref, {"genre_f1": 1})
    assert_scores("movie_genres", "film noir, SCI-FI", "Film-Noir and Sci-Fi", {"genre_f1": 1})
    assert_scores("movie_genres", "a lovely film", ref, {"genre_f1": 0})
    assert_scores("movie_genres", "", ref, {"genre_f1": 0})
    assert_scores("movie_era", "the 1990s", "the 1990s", {"decade_accuracy": 1})
    assert_scores("movie_era", "It is from the 1980s.", "the 1990s", {"decade_accuracy": 0})
    assert_scores("movie_era", "long ago", "the 1990s", {"decade_accuracy": 0})


def test_movie_audience():
    ref = ("Rated by 3 users. Ages: 18-24 (33%), 55 and over (33%) and under 18 (33%). "
           "Gender: men (100%). Top occupations: student (67%) and retired (33%).")
    assert_scores("movie_audience", ref, ref, {"demographic_accuracy": 1, "rater_count_error": 0})
    # Age: "55 and over" is one of the reference's three tied largest groups (right);
    # gender: women is not the majority (wrong); occupation: student (right).
    generated = ("Rated by 4 users. Ages: 55 and over (50%) and 25-34 (50%). "
                 "Gender: women (60%) and men (40%). Top occupations: student (80%).")
    assert_scores("movie_audience", generated, ref,
                  {"demographic_accuracy": 2 / 3, "rater_count_error": 1 / 3})
    # The largest group, not the first listed, is the answer.
    generated = ("Rated by 30 users. Ages: 25-34 (10%) and 45-54 (60%). Gender: men (70%). "
                 "Top occupations: engineer (50%).")
    assert_scores("movie_audience", generated, ref,
                  {"demographic_accuracy": 1 / 3, "rater_count_error": 9})
    assert_scores("movie_audience", "no idea", ref,
                  {"demographic_accuracy": 0, "rater_count_error": math.nan})


def test_movie_reception():
    ref = "Popular: 5 ratings, averaging 3.8 out of 5."
    assert_scores("movie_reception", ref, ref, {"popularity_accuracy": 1, "rating_error": 0})
    assert_scores("movie_reception", "Very popular: 400 ratings, averaging 4.1 out of 5.", ref,
                  {"popularity_accuracy": 0, "rating_error": 0.3})
    assert_scores("movie_reception", "It is popular, averaging 3.8 out of 5", ref,
                  {"popularity_accuracy": 1, "rating_error": 0})
    assert_scores("movie_reception", "Moderately popular.", ref,
                  {"popularity_accuracy": 0, "rating_error": math.nan})
    assert_scores("movie_reception", "", ref, {"popularity_accuracy": 0, "rating_error": math.nan})


def test_title_lists():
    ref = "Gamma (1995), Beta (1987) and Delta"
    assert_scores("movie_similar", "Delta, Alpha (1995) and Gamma (1995)", ref,
                  {"title_overlap": 2 / 3})
    assert_scores("movie_similar", "Beta (1988)", ref, {"title_overlap": 0})  # wrong year
    assert_scores("movie_similar", "", ref, {"title_overlap": 0})
    ugly = "Good, The Bad and The Ugly, The (1966)"
    ref = f"{ugly}, Heat (1995) and Alpha (1995)"
    # The long title is one title: its ", The" and "and" do not split it, and the
    # "Ugly, The (1966)" inside it is no second title; "White Heat" is not "Heat".
    assert_scores("movie_similar", f"White Heat (1949), {ugly} and Beta (1987)", ref,
                  {"title_overlap": 1 / 3})
    assert_scores("movie_similar", ugly, "Ugly, The (1966)", {"title_overlap": 0})
    assert_scores("movie_similar", "Ugly, The (1966)", "Ugly, The (1966)", {"title_overlap": 1})
    assert_scores("user_recommendations", "Heat (1995) and Alpha (1995)", ref,
                  {"title_overlap": 2 / 3})


def test_movie_summary():
    ref = ("Alpha (1995): Comedy and Drama. Largest audience groups among its 5 raters: age "
           "18-24 (20%), men (60%), occupation student (40%). "
           "Popular: 5 ratings, averaging 3.8 out of 5.")
    assert_scores("movie_summary", ref, ref, {"title_accuracy": 1, "year_accuracy": 1,
                                              "genre_f1": 1, "rating_error": 0})
    # Genres {comedy, romance, drama} vs {comedy, drama}: F1 = 2 * 2 / (3 + 2).
    generated = ("Alpha (1996): Comedy, Romance and Drama. Largest audience groups among its 2 "
                 "raters: age 25-34 (50%), women (50%), occupation writer (50%). "
                 "Rarely rated: 2 ratings, averaging 3.0 out of 5.")
    assert_scores("movie_summary", generated, ref, {"title_accuracy": 1, "year_accuracy": 0,
                                                    "genre_f1": 0.8, "rating_error": 0.8})
    # A title with a dot and a genre-free reference ("Title (year)." only).
    holland = "Mr. Holland's Opus (1995)."
    assert_scores("movie_summary", "Mr. Holland's Opus (1995): Drama.", holland,
                  {"title_accuracy": 1, "year_accuracy": 1, "genre_f1": math.nan,
                   "rating_error": math.nan})
    assert_scores("movie_summary", "", ref, {"title_accuracy": 0, "year_accuracy": 0,
                                             "genre_f1": 0, "rating_error": math.nan})


def test_movie_compare():
    ref = ("Both are Drama. Only Alpha (1995) is Comedy. Only Gamma (1995) is Romance. "
           "Alpha (1995) is more popular (5 vs 4 ratings). "
           "Gamma (1995) is better rated (4.5 vs 3.8).")
    perfect = {"shared_genre_f1": 1, "more_popular_accuracy": 1, "better_rated_accuracy": 1}
    assert_scores("movie_compare", ref, ref, perfect)
    # Shared {drama, comedy} vs {drama}: F1 = 2 * 1 / (2 + 1).
    generated = ("Both are Drama and Comedy. Gamma (1995) is more popular (9 vs 4 ratings). "
                 "Gamma (1995) is better rated (4.0 vs 3.0).")
    assert_scores("movie_compare", generated, ref, {"shared_genre_f1": 2 / 3,
                                                    "more_popular_accuracy": 0,
                                                    "better_rated_accuracy": 1})
    ties = ("They share no genre. Both have 5 ratings. Alpha (1995) is better rated "
            "(3.8 vs 2.6).")
    assert_scores("movie_compare", "They share no genre. Both have 7 ratings. Both average 3.0 "
                  "out of 5.", ties, {"shared_genre_f1": 1, "more_popular_accuracy": 1,
                                      "better_rated_accuracy": 0})
    assert_scores("movie_compare", generated, ties, {"shared_genre_f1": 0,
                                                     "more_popular_accuracy": 0,
                                                     "better_rated_accuracy": 0})
    # A title with a dot inside does not end its sentence early.
    holland = ("They share no genre. Mr. Holland's Opus (1995) is more popular (5 vs 4 "
               "ratings). Both average 3.0 out of 5.")
    assert_scores("movie_compare", holland, holland, perfect)
    assert_scores("movie_compare", "They share no genre. Alpha (1995) is more popular.", holland,
                  {"more_popular_accuracy": 0})
    assert_scores("movie_compare", "", ref, {"shared_genre_f1": 0, "more_popular_accuracy": 0,
                                             "better_rated_accuracy": 0})


def test_user_profile():
    ref = ("Likes Drama, Action and Romance. Dislikes Comedy. "
           "Favourites: Alpha (1995), Gamma (1995) and Beta (1987). "
           "Rated 4 movies, 4.0 out of 5 on average.")
    assert_scores("user_profile", ref, ref, {"liked_genre_f1": 1, "favourite_overlap": 1,
                                             "rating_error": 0})
    # Liked {comedy, drama} vs {drama, action, romance}: F1 = 2 * 1 / (2 + 3).
    generated = ("Likes Comedy and Drama. Dislikes Action. Favourites: Gamma (1995) and Delta. "
                 "Rated 10 movies, 3.5 out of 5 on average.")
    assert_scores("user_profile", generated, ref, {"liked_genre_f1": 0.4,
                                                   "favourite_overlap": 1 / 3,
                                                   "rating_error": 0.5})
    # "Dislikes Drama" is no like.
    assert_scores("user_profile", "Dislikes Drama.", ref, {"liked_genre_f1": 0,
                                                           "favourite_overlap": 0,
                                                           "rating_error": math.nan})
    # A reference without likes or favourites has nothing to check there.
    assert_scores("user_profile", generated, "Dislikes Comedy. Rated 2 movies, 1.5 out of 5 on "
                  "average.", {"liked_genre_f1": math.nan, "favourite_overlap": math.nan,
                               "rating_error": 2.0})


def test_user_demographics():
    ref = "A 24-year-old man; occupation: student."
    assert_scores("user_demographics", ref, ref, {"gender_accuracy": 1, "occupation_accuracy": 1,
                                                  "age_error": 0, "demographic_accuracy": 1})
    # "K-12 student" is its own occupation, not "student"; age 30 is 6 years off (> 5).
    assert_scores("user_demographics", "A 30-year-old man; occupation: K-12 student.", ref,
                  {"gender_accuracy": 1, "occupation_accuracy": 0, "age_error": 6,
                   "demographic_accuracy": 1 / 3})
    assert_scores("user_demographics", "A 28 year old woman, occupation student", ref,
                  {"gender_accuracy": 0, "occupation_accuracy": 1, "age_error": 4,
                   "demographic_accuracy": 2 / 3})
    assert_scores("user_demographics", "", ref, {"gender_accuracy": 0, "occupation_accuracy": 0,
                                                 "age_error": math.nan,
                                                 "demographic_accuracy": 0})
    other = "A 30-year-old person of gender X; occupation: astronaut."
    assert_scores("user_demographics", other.lower(), other, {"gender_accuracy": 1,
                                                      "occupation_accuracy": 1})
    assert_scores("user_demographics", "A 30-year-old man; occupation: pilot.", other,
                  {"gender_accuracy": 0, "occupation_accuracy": 0})


def test_user_enjoys_movie():
    ref = "Yes: they rated it 5 out of 5."
    assert_scores("user_enjoys_movie", ref, ref, {"answer_accuracy": 1, "rating_error": 0})
    assert_scores("user_enjoys_movie", "No: they rated it 2 out of 5.", ref,
                  {"answer_accuracy": 0, "rating_error": 3})
    assert_scores("user_enjoys_movie", "yes, probably", ref,
                  {"answer_accuracy": 1, "rating_error": math.nan})
    assert_scores("user_enjoys_movie", "Nothing is known.", ref,
                  {"answer_accuracy": 0, "rating_error": math.nan})


def test_every_task_reports_its_metrics_in_range_on_any_text():
    assert set(FACT_METRICS) == set(TASKS)
    texts = ["", "garbage 123 (2020) out of 5", "Alpha (1995)", "Yes. Likes Drama."]
    for task, names in FACT_METRICS.items():
        for generated in texts:
            for reference in texts:
                got = scores(task, generated, reference)
                assert list(got) == list(names)
                for name, value in got.items():
                    assert math.isnan(value) or value >= 0, (task, name, value)
                    if not name.endswith("error"):
                        assert math.isnan(value) or value <= 1, (task, name, value)


def test_unknown_task():
    with pytest.raises(ValueError, match=r"unknown task 'movie_plot'; known tasks: .*"
                                         r"movie_identity"):
        scores("movie_plot", "a", "b")


def test_mean_metrics():
    rows = [{"a": 1.0, "b": math.nan}, {"a": 0.0, "b": 2.0}, {"a": math.nan}, {"c": math.nan}]
    means = mean_metrics(rows)
    assert list(means) == ["a", "a_n", "b", "b_n", "c", "c_n"]
    assert means["a"] == 0.5 and means["a_n"] == 2
    assert means["b"] == 2.0 and means["b_n"] == 1
    assert math.isnan(means["c"]) and means["c_n"] == 0
    assert mean_metrics([]) == {}


# ---------------------------------------------------------------- real targets

MOVIES = {
    1: Movie("Alpha", 1995, ("Comedy", "Drama")),
    2: Movie("Good, The Bad and The Ugly, The", 1966, ("Action", "Western")),
    3: Movie("Ugly, The", 1966, ("Drama", "Romance")),
    4: Movie("Delta", None, ("Comedy",)),
    5: Movie("Mr. Holland's Opus", 1995, ("Drama",)),
    6: Movie("Epsilon", 2001, ("unknown",)),
}
USERS = {1: User(24, "M", "student"), 2: User(30, "F", "K-12 student"),
         3: User(17, "M", "student"), 4: User(45, "F", "writer"), 5: User(60, "X", "retired")}
RATINGS = [(1, 1, 5), (1, 2, 4), (1, 3, 5), (1, 4, 2), (1, 5, 1),
           (2, 1, 4), (2, 3, 5), (2, 4, 2), (2, 6, 4),
           (3, 1, 5), (3, 2, 2), (3, 4, 3), (3, 3, 4), (3, 5, 5),
           (4, 1, 3), (4, 3, 4), (4, 6, 5), (4, 4, 4),
           (5, 1, 2), (5, 2, 1), (5, 4, 2), (5, 5, 4)]


@pytest.fixture
def small():
    return movielens_from_rows(RATINGS, MOVIES, USERS, "small")


def test_catalogue_from_movielens(small):
    catalogue = Catalogue.from_movielens(small)
    assert catalogue.titles == ("Alpha (1995)", "Good, The Bad and The Ugly, The (1966)",
                                "Ugly, The (1966)", "Delta", "Mr. Holland's Opus (1995)",
                                "Epsilon (2001)")
    assert catalogue.genres == ("Action", "Comedy", "Drama", "Romance", "Western")
    assert catalogue.occupations == ("K-12 student", "retired", "student", "writer")


def test_real_targets_score_perfect_against_themselves(small):
    catalogue = Catalogue.from_movielens(small)
    split = EntitySplit(frozenset(), frozenset(MOVIES), frozenset(), frozenset(USERS))
    order = sorted(MOVIES)
    data = task_data(small, split, "eval",
                     neighbours={m: order[m:] + order[:m] for m in MOVIES},
                     user_recommendations={u: order[u:] + order[:u] for u in USERS})
    ids = {"movie": [(m,) for m in MOVIES], "user": [(u,) for u in USERS],
           "pair": [(a, b) for a in MOVIES for b in MOVIES if a != b],
           "user_movie": [(u, m) for u in USERS for m in MOVIES]}
    for name, task in TASKS.items():
        targets = [t for t in (task.target(data, e) for e in ids[task.kind]) if t is not None]
        assert targets, name
        rows = [fact_metrics(name, t, t, catalogue) for t in targets]
        for target, row in zip(targets, rows):
            for metric, value in row.items():
                perfect = 0.0 if metric.endswith("error") else 1.0
                assert math.isnan(value) or value == perfect, (name, metric, value, target)
        for metric, mean in mean_metrics(rows).items():
            if not metric.endswith("_n"):  # every metric is checked on some target
                assert not math.isnan(mean), (name, metric)
