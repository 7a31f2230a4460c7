"""Novel entities: interpolation and shift endpoints, a CAV recovering a planted direction,
genre-preference labels and trend agreement on hand-made data."""

import numpy as np
import pytest

from elc.evaluation.concepts import (
    fit_cav,
    genre_preference_labels,
    interpolate,
    shift,
    trend_agreement,
)


def test_interpolate():
    a = np.array([[0.0, 0.0, 4.0], [1.0, 2.0, 3.0]])
    b = np.array([[4.0, 8.0, 0.0], [1.0, -2.0, 7.0]])
    path = interpolate(a, b, [0.0, 0.25, 1.0])
    assert path.shape == (3, 2, 3)
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[2], b)
    np.testing.assert_allclose(path[1], [[1.0, 2.0, 3.0], [1.0, 1.0, 4.0]])
    with pytest.raises(ValueError, match=r"a and b must have one shape, got \(2, 3\) and "
                                         r"\(1, 3\)"):
        interpolate(a, b[:1], [0.5])
    with pytest.raises(ValueError, match="weights must be a non-empty 1-D sequence"):
        interpolate(a, b, [])


def test_shift():
    vectors = np.array([[3.0, 4.0], [0.0, 1.0]])  # norms 5 and 1: mean 3
    moved = shift(vectors, np.array([1.0, 0.0]), [0.0, 2.0, -1.0])
    assert moved.shape == (3, 2, 2)
    np.testing.assert_array_equal(moved[0], vectors)
    np.testing.assert_allclose(moved[1], [[9.0, 4.0], [6.0, 1.0]])
    np.testing.assert_allclose(moved[2], [[0.0, 4.0], [-3.0, 1.0]])
    with pytest.raises(ValueError, match=r"direction must have shape \(2,\) to shift vectors of "
                                         r"shape \(2, 2\), got \(3,\)"):
        shift(vectors, np.ones(3), [1.0])


def test_fit_cav_recovers_a_planted_direction():
    rng = np.random.default_rng(0)
    direction = rng.normal(size=8)
    direction /= np.linalg.norm(direction)
    vectors = rng.normal(size=(400, 8)) + 2.0  # off-centre, so the intercept matters
    labels = (vectors - 2.0) @ direction + 0.3 * rng.normal(size=400) > 0
    cav = fit_cav(vectors, labels)
    assert np.linalg.norm(cav) == pytest.approx(1.0)
    assert cav @ direction > 0.95
    assert fit_cav(vectors, ~labels) @ direction < -0.95  # points toward the positives


def test_fit_cav_errors():
    vectors = np.ones((4, 2))
    with pytest.raises(ValueError, match="needs both classes, got 0 positive and 4 negative"):
        fit_cav(vectors, np.zeros(4, bool))
    with pytest.raises(ValueError, match=r"labels must be a bool array of shape \(4,\), got "
                                         r"dtype int64"):
        fit_cav(vectors, np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="found no direction"):
        fit_cav(vectors, np.array([True, False, True, False]))  # identical vectors
    with pytest.raises(ValueError, match="l2 must be a finite number > 0, got 0"):
        fit_cav(np.eye(2), np.array([True, False]), l2=0)


MOVIE_GENRES = {1: ("Comedy",), 2: ("Drama",), 3: ("Comedy", "Drama")}
USER_RATINGS = {
    1: {1: 5, 2: 4},  # liked 1, 2: Comedy share 1/2
    2: {1: 5, 3: 4},  # liked 1, 3: 2/2
    3: {2: 5, 1: 2},  # liked 2: 0/1
    4: {1: 3},  # no like: 0
    5: {3: 4.5, 2: 4, 7: 5},  # liked 3, 2, 7 (7 has no genres): 1/3
}


def test_genre_preference_labels():
    users = [1, 2, 3, 4, 5]
    # Shares [1/2, 1, 0, 0, 1/3], median 1/3: above it users 1 and 2.
    np.testing.assert_array_equal(
        genre_preference_labels(users, USER_RATINGS, MOVIE_GENRES, "Comedy", liked=4.0),
        [True, True, False, False, False])
    # Liked from 3: user 4 likes movie 1 (share 1), user 3 likes only 2 (0); shares
    # [1/2, 1, 0, 1, 1/3], median 1/2.
    np.testing.assert_array_equal(
        genre_preference_labels(users, USER_RATINGS, MOVIE_GENRES, "Comedy", liked=3.0),
        [False, True, False, True, False])
    # Drama over users 5, 3, 1, in that order: shares [2/3, 1, 1/2], median 2/3.
    np.testing.assert_array_equal(
        genre_preference_labels([5, 3, 1], USER_RATINGS, MOVIE_GENRES, "Drama", liked=4.0),
        [False, True, False])
    with pytest.raises(ValueError, match=r"users \[9\] \(1 in all\) have no entry"):
        genre_preference_labels([1, 9], USER_RATINGS, MOVIE_GENRES, "Comedy", liked=4.0)
    with pytest.raises(ValueError, match="no movie has genre 'Western'"):
        genre_preference_labels(users, USER_RATINGS, MOVIE_GENRES, "Western", liked=4.0)


def test_trend_agreement():
    amounts = [0.0, 1.0, 2.0, 3.0]
    values = np.array([[1, 4, 2, 1],
                       [2, 3, 2, 3],
                       [3, 2, 2, 2],
                       [4, 1, 2, 4]], float)
    # Per path: rising (1), falling (-1), constant (0), ranks [1, 3, 2, 4] against
    # [1, 2, 3, 4] (1 - 6 * 2 / (4 * 15) = 0.8).
    got = trend_agreement(amounts, values)
    assert got["spearman"] == pytest.approx((1 - 1 + 0 + 0.8) / 4)
    assert got["increased"] == 0.5
    # Steps up: path 1 all 3, path 2 none, path 3 none, path 4 two (2->3, 3->4) of 3.
    assert got["steps_up"] == pytest.approx(5 / 12)
    with pytest.raises(ValueError, match=r"values must be \[len\(amounts\)=4, n >= 1\], got "
                                         r"shape \(3, 4\)"):
        trend_agreement(amounts, values[:3])
    with pytest.raises(ValueError, match="amounts must not all be equal"):
        trend_agreement([1.0, 1.0, 1.0, 1.0], values)
