"""Weighted ALS (elc.vectors.als) and ranking evaluation (elc.vectors.ranking_metrics).

Expected values come from dense numpy solves of the full normal equations and from rankings
worked out by hand, never from the code under test.
"""

import math

import numpy as np
import pytest

from elc.vectors.als import AlsConfig, confidence_weights, fit_als, solve_factors
from elc.vectors.ranking_metrics import (
    holdout_split,
    ndcg_at_k,
    popularity_scores,
    ranking_metrics,
    recall_at_k,
)


def _dense(rows, cols, values, shape, alpha):
    """Dense preference P and linear confidence C = 1 + alpha R of a small problem."""
    r = np.zeros(shape)
    np.add.at(r, (rows, cols), values)
    return (r > 0).astype(float), 1.0 + alpha * r


def _dense_loss(x, y, p, c, reg):
    x, y = x.astype(np.float64), y.astype(np.float64)
    return float(np.sum(c * (p - x @ y.T) ** 2) + reg * (np.sum(x ** 2) + np.sum(y ** 2)))


# A 5 x 7 problem; user 3 has no interactions, item 6 none either.
ROWS = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 4, 4])
COLS = np.array([0, 2, 5, 1, 2, 0, 3, 4, 5, 1, 5])
VALS = np.array([1.0, 3.0, 2.0, 5.0, 1.0, 4.0, 2.0, 1.0, 1.0, 2.0, 3.0])


def test_confidence_weights_linear_and_log():
    values = np.array([1.0, 2.0, 0.5])
    np.testing.assert_allclose(confidence_weights(values, AlsConfig(alpha=10.0)),
                               [11.0, 21.0, 6.0], rtol=1e-6)
    log_cfg = AlsConfig(alpha=2.0, confidence="log", log_epsilon=0.5)
    expected = [1 + 2 * math.log(3.0), 1 + 2 * math.log(5.0), 1 + 2 * math.log(2.0)]
    np.testing.assert_allclose(confidence_weights(values, log_cfg), expected, rtol=1e-6)


@pytest.mark.parametrize("reg", [0.1, 2.0])
def test_half_step_equals_dense_normal_equations(reg):
    alpha = 3.0
    y = np.random.default_rng(0).normal(size=(7, 3))
    p, c = _dense(ROWS, COLS, VALS, (5, 7), alpha)
    expected = np.stack([
        np.linalg.solve(y.T @ np.diag(c[u]) @ y + reg * np.eye(3), y.T @ np.diag(c[u]) @ p[u])
        for u in range(5)])
    got = solve_factors(y, ROWS, COLS, 1.0 + alpha * VALS, 5, reg)
    assert got.shape == (5, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    # The user with no interactions has right-hand side Yᵀ·0 = 0, hence x = 0 exactly.
    assert np.all(got[3] == 0)


def test_fit_loss_never_increases_and_matches_dense_objective():
    rng = np.random.default_rng(1)
    u, i = np.nonzero(rng.random((30, 25)) < 0.2)
    v = rng.integers(1, 5, size=len(u)).astype(float)
    cfg = AlsConfig(dim=4, regularization=0.5, alpha=2.0, iterations=8, seed=3)
    f = fit_als(u, i, v, 30, 25, cfg)
    assert f.user_factors.shape == (30, 4) and f.item_factors.shape == (25, 4)
    assert f.user_factors.dtype == f.item_factors.dtype == np.float32
    assert len(f.loss_history) == 8
    # Each half-step is an exact minimisation, so the objective cannot go up (float32 slack).
    for before, after in zip(f.loss_history, f.loss_history[1:]):
        assert after <= before * (1 + 1e-5)
    assert f.loss_history[-1] < f.loss_history[0]
    p, c = _dense(u, i, v, (30, 25), 2.0)
    np.testing.assert_allclose(f.loss_history[-1],
                               _dense_loss(f.user_factors, f.item_factors, p, c, 0.5), rtol=1e-4)


def test_fit_final_items_are_exact_solves_for_final_users():
    # Items are solved last in each sweep, so the returned item factors must be the exact
    # dense solve given the returned user factors.
    cfg = AlsConfig(dim=3, regularization=0.3, alpha=4.0, iterations=3)
    f = fit_als(ROWS, COLS, VALS, 5, 7, cfg)
    p, c = _dense(ROWS, COLS, VALS, (5, 7), 4.0)
    x = f.user_factors.astype(np.float64)
    expected_items = np.stack([
        np.linalg.solve(x.T @ np.diag(c[:, j]) @ x + 0.3 * np.eye(3),
                        x.T @ np.diag(c[:, j]) @ p[:, j]) for j in range(7)])
    np.testing.assert_allclose(f.item_factors, expected_items, rtol=1e-3, atol=1e-5)
    assert np.all(f.item_factors[6] == 0) and np.all(f.user_factors[3] == 0)


def test_fit_sums_duplicates_and_treats_zero_as_unobserved():
    cfg = AlsConfig(dim=3, iterations=2)
    reference = fit_als(ROWS, COLS, VALS, 5, 7, cfg)
    # Split the (0, 2, 3.0) interaction into 1.0 + 2.0 and add a zero-strength (3, 6) pair.
    rows = np.concatenate([ROWS, [0, 3]])
    cols = np.concatenate([COLS, [2, 6]])
    vals = np.concatenate([np.where((ROWS == 0) & (COLS == 2), 1.0, VALS), [2.0, 0.0]])
    split = fit_als(rows, cols, vals, 5, 7, cfg)
    np.testing.assert_allclose(split.user_factors, reference.user_factors, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(split.item_factors, reference.item_factors, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rows,cols,vals,message", [
    ([0, 5], [0, 1], [1.0, 1.0], r"user_ids must lie in \[0, 5\), got 5"),
    ([0, 1], [0, -1], [1.0, 1.0], r"item_ids must lie in \[0, 7\), got -1"),
    ([0, 1], [0, 1], [1.0, -2.0], r"values must be >= 0, got -2.0"),
    ([0, 1], [0, 1], [np.nan, 1.0], r"values must be finite, got nan"),
    ([0, 1], [0], [1.0, 1.0], r"1-D of one length"),
])
def test_fit_rejects_bad_input(rows, cols, vals, message):
    with pytest.raises(ValueError, match=message):
        fit_als(np.array(rows), np.array(cols), np.array(vals), 5, 7, AlsConfig(dim=2))


def test_a_value_far_outside_the_scale_is_reported_not_fitted_to_nan():
    vals = VALS.copy()
    vals[3] = 1e12  # a rating on a 1 to 5 scale gone wrong
    with pytest.raises(ValueError, match=r"ALS diverged: objective nan after iteration 1\. "
                                         r"The largest of the values is 1e\+12 \(position 3\)"):
        fit_als(ROWS, COLS, vals, 5, 7, AlsConfig(dim=2, iterations=2))


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="confidence must be 'linear' or 'log', got 'sqrt'"):
        AlsConfig(confidence="sqrt")
    with pytest.raises(ValueError, match="dim must be a positive int, got 0"):
        AlsConfig(dim=0)


# Hand-worked rankings. User 0: scores fall with the item id; item 0 is a training item, so
# the top 3 are items 1, 2, 3, and of its test items {2, 5} only item 2 is there, at rank 2:
# recall 1/2, NDCG (1/log2 3) / (1 + 1/log2 3). User 1: scores rise with the id; training
# item 5 is removed, so item 4, its only test item, is ranked first: recall 1, NDCG 1.
# User 2 has no test items and is not averaged.
SCORES = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
                   [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                   [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]])
TRAIN_U, TRAIN_I = np.array([0, 1, 2]), np.array([0, 5, 1])
TEST_U, TEST_I = np.array([0, 0, 1]), np.array([2, 5, 4])


def test_recall_and_ndcg_on_hand_made_ranking():
    ndcg_user0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert recall_at_k(SCORES, TRAIN_U, TRAIN_I, TEST_U, TEST_I, 3) == pytest.approx(0.75)
    assert ndcg_at_k(SCORES, TRAIN_U, TRAIN_I, TEST_U, TEST_I, 3) == pytest.approx(
        (ndcg_user0 + 1) / 2)
    # At k = 1 user 0 gets item 1 (a miss), user 1 still a hit; IDCG uses min(k, |test|) = 1.
    metrics = ranking_metrics(SCORES, TRAIN_U, TRAIN_I, TEST_U, TEST_I, 1)
    assert metrics == {"recall": pytest.approx(0.5), "ndcg": pytest.approx(0.5), "users": 2}
    # At k = 5 user 0 ranks 1, 2, 3, 4, 5: hits at ranks 2 and 5, both of its test items.
    dcg = 1 / math.log2(3) + 1 / math.log2(6)
    metrics = ranking_metrics(SCORES, TRAIN_U, TRAIN_I, TEST_U, TEST_I, 5)
    assert metrics["recall"] == pytest.approx(1.0)
    assert metrics["ndcg"] == pytest.approx((dcg / (1 + 1 / math.log2(3)) + 1) / 2)


def test_ranking_breaks_ties_by_item_id_and_excludes_training_items():
    # All scores tie: the ranking is 0, 2, 3, 4, 5, ... once training item 1 is removed; test
    # item 3 is then at rank 3, just inside k = 3 and outside k = 2, and item 5 at rank 5.
    # 100 items, because sorts of short arrays happen to keep ties in order anyway.
    flat = np.zeros((1, 100))
    assert recall_at_k(flat, [0], [1], [0], [3], 2) == 0.0
    assert recall_at_k(flat, [0], [1], [0], [3], 3) == 1.0
    assert ndcg_at_k(flat, [0], [1], [0], [3], 3) == pytest.approx(0.5)  # 1 / log2(4)
    assert recall_at_k(flat, [0], [1], [0], [5], 5) == 1.0
    # A training item never counts even when it is also held out and scored highest.
    assert recall_at_k(np.array([[9.0, 0, 0]]), [0], [0], [0], [0], 3) == 0.0


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="k must be an int >= 1, got 0"):
        recall_at_k(SCORES, TRAIN_U, TRAIN_I, TEST_U, TEST_I, 0)
    with pytest.raises(ValueError, match=r"test item ids must lie in \[0, 6\).*got 6"):
        recall_at_k(SCORES, TRAIN_U, TRAIN_I, [0], [6], 3)
    with pytest.raises(ValueError, match="no held-out interactions"):
        recall_at_k(SCORES, TRAIN_U, TRAIN_I, [], [], 3)


def test_popularity_counts_distinct_users():
    # Item 2: users 0, 1, 3 (user 0 twice counts once) -> 3; item 0: user 1 -> 1; item 1: 0.
    scores = popularity_scores([0, 0, 1, 1, 3], [2, 2, 2, 0, 2], 4, 3)
    assert scores.shape == (4, 3)
    np.testing.assert_array_equal(scores, np.tile([1.0, 0.0, 3.0], (4, 1)))


def test_holdout_split_sizes_and_coverage():
    degrees = {0: 1, 1: 2, 2: 5, 3: 10, 4: 3}
    users = np.repeat(list(degrees), list(degrees.values()))
    items = np.arange(len(users))
    values = items * 0.5
    # round-half-up(0.2 n) capped at n - 1: n=1 -> 0, 2 -> 0, 5 -> 1, 10 -> 2, 3 -> 1.
    split = holdout_split(users, items, values, fraction=0.2, seed=4)
    assert np.bincount(split.test_user_ids, minlength=5).tolist() == [0, 0, 1, 2, 1]
    # count=3 capped at n - 1: 0, 1, 3, 3, 2.
    by_count = holdout_split(users, items, values, count=3, seed=4)
    assert np.bincount(by_count.test_user_ids, minlength=5).tolist() == [0, 1, 3, 3, 2]
    for s in (split, by_count):
        # The two parts partition the interactions, with values and users kept alongside.
        all_items = np.concatenate([s.train_item_ids, s.test_item_ids])
        assert sorted(all_items.tolist()) == items.tolist()
        np.testing.assert_array_equal(s.train_values, s.train_item_ids * 0.5)
        np.testing.assert_array_equal(s.test_user_ids, users[s.test_item_ids])
        assert set(s.train_user_ids.tolist()) == set(degrees)
    again = holdout_split(users, items, values, fraction=0.2, seed=4)
    np.testing.assert_array_equal(again.test_item_ids, split.test_item_ids)
    other = [holdout_split(users, items, values, count=3, seed=s).test_item_ids.tolist()
             for s in range(5)]
    assert len({tuple(sorted(t)) for t in other}) > 1, "the held-out choice ignores the seed"


def test_holdout_split_rejects_bad_fraction():
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\).*got 1.5"):
        holdout_split([0], [0], [1.0], fraction=1.5)
    with pytest.raises(ValueError, match="count must be an int >= 0, got -1"):
        holdout_split([0], [0], [1.0], count=-1)


def _planted_clusters(seed=0):
    """300 users in 4 taste clusters over 200 items (4 blocks of 50).

    Each user watches 20 items of its own block plus 3 of the others, drawn with a Zipf-like
    popularity inside each block, so global popularity is informative but blind to taste.
    """
    rng = np.random.default_rng(seed)
    weight = 1.0 / np.arange(1, 51) ** 0.7
    weight /= weight.sum()
    users, items = [], []
    for u in range(300):
        cluster = u % 4
        own = cluster * 50 + rng.choice(50, size=20, replace=False, p=weight)
        others = rng.choice(np.setdiff1d(np.arange(200), np.arange(cluster * 50,
                                                                   cluster * 50 + 50)), 3,
                            replace=False)
        chosen = np.concatenate([own, others])
        users.extend([u] * len(chosen))
        items.extend(chosen.tolist())
    users, items = np.array(users), np.array(items)
    return users, items, rng.integers(1, 6, size=len(users)).astype(float)


def test_als_beats_popularity_on_planted_clusters():
    users, items, values = _planted_clusters()
    s = holdout_split(users, items, values, fraction=0.2, seed=0)
    f = fit_als(s.train_user_ids, s.train_item_ids, s.train_values, 300, 200,
                AlsConfig(dim=8, regularization=1.0, alpha=2.0, iterations=8))
    args = (s.train_user_ids, s.train_item_ids, s.test_user_ids, s.test_item_ids, 10)
    als = ranking_metrics(f.user_factors @ f.item_factors.T, *args)
    pop = ranking_metrics(popularity_scores(s.train_user_ids, s.train_item_ids, 300, 200), *args)
    # Popularity spends about 3 of every 4 slots on other clusters' items; ALS, seeing the
    # block structure, should keep most of its top 10 inside the user's own block.
    assert als["recall"] > 1.5 * pop["recall"], (als, pop)
    assert als["ndcg"] > 1.5 * pop["ndcg"], (als, pop)
