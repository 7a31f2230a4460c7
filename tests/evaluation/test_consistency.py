"""Semantic and behavioural consistency: hand-computed cosines and ranks, Spearman against
scipy, ridge regression against its optimality conditions and numpy's least squares."""

import math

import numpy as np
import pytest
import scipy.stats

from elc.evaluation.consistency import (
    RidgeMap,
    behavioural_consistency,
    cosine_rows,
    semantic_consistency,
    spearman_rows,
)

R = math.sqrt(0.5)  # cos 45 degrees


def test_cosine_rows():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [3.0, 4.0]])
    b = np.array([[0.0, 1.0], [2.0, 2.0], [1.0, 0.0], [-3.0, -4.0]])
    np.testing.assert_allclose(cosine_rows(a, b), [0.0, 1.0, 0.0, -1.0], atol=1e-12)
    with pytest.raises(ValueError, match=r"a and b must be .* got \(4, 2\) and \(4, 3\)"):
        cosine_rows(a, np.ones((4, 3)))


def test_semantic_consistency_by_hand():
    catalogue = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]])
    text = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0], [0.0, 0.0]])
    index = np.array([3, 1, -1, 0])
    target = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    got = semantic_consistency(text, target, catalogue, index, ks=(1, 2))
    assert sorted(got) == ["cosine", "rank", "recall@1", "recall@2"]
    np.testing.assert_allclose(got["cosine"], [R, 1.0, -R, 0.0], atol=1e-12)
    # Text 0 scores rows 1, 0, -1, 0.71: the target (row 3) is second. Text 1 scores its
    # target highest. Text 3 is zero: all scores tie at 0 and ties count against the target.
    np.testing.assert_array_equal(got["rank"], [2, 1, np.nan, 4])
    np.testing.assert_array_equal(got["recall@1"], [0, 1, np.nan, 0])
    np.testing.assert_array_equal(got["recall@2"], [1, 1, np.nan, 0])


def test_semantic_consistency_errors():
    text, catalogue, index = np.ones((3, 2)), np.ones((4, 2)), np.array([0, 1, 2])
    with pytest.raises(ValueError, match=r"text_vectors and target_vectors .* got \(3, 2\) "
                                         r"and \(3, 3\)"):
        semantic_consistency(text, np.ones((3, 3)), catalogue, index)
    with pytest.raises(ValueError, match=r"catalogue must be a \[n, 2\] matrix, got shape "
                                         r"\(4, 3\)"):
        semantic_consistency(text, text, np.ones((4, 3)), index)
    with pytest.raises(ValueError, match=r"target_index values must be -1 .* \[0, 4\), got 4"):
        semantic_consistency(text, text, catalogue, np.array([0, 4, -1]))
    with pytest.raises(ValueError, match=r"target_index must be an int array of shape \(3,\), "
                                         r"got dtype float64 and shape \(3,\)"):
        semantic_consistency(text, text, catalogue, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"ks must be .* got \(0,\)"):
        semantic_consistency(text, text, catalogue, index, ks=(0,))


def test_spearman_rows_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(20, 12)).astype(float)  # few values: many ties
    b = a + rng.integers(-2, 3, size=(20, 12))
    a[0] = np.arange(12)
    b[0] = np.arange(12)[::-1]  # exactly -1
    got = spearman_rows(a, b)
    expected = [scipy.stats.spearmanr(x, y).statistic for x, y in zip(a, b)]
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert got[0] == pytest.approx(-1.0)
    constant = spearman_rows(np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]]),
                             np.array([[1.0, 2.0, 3.0], [3.0, 1.0, 2.0]]))
    assert math.isnan(constant[0]) and constant[1] == pytest.approx(-0.5)
    with pytest.raises(ValueError, match=r"a and b must be .* got \(2, 3\) and \(3, 2\)"):
        spearman_rows(np.ones((2, 3)), np.ones((3, 2)))


def test_ridge_recovers_a_noisy_linear_map():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 5))
    weights, bias = rng.normal(size=(5, 3)), np.array([1.0, -2.0, 0.5])
    y = x @ weights + bias + 0.01 * rng.normal(size=(400, 3))
    fitted = RidgeMap.fit(x, y, l2=1e-3)
    np.testing.assert_allclose(fitted.weights, weights, atol=5e-3)
    np.testing.assert_allclose(fitted.bias, bias, atol=5e-3)
    np.testing.assert_allclose(fitted.predict(x[:4]), x[:4] @ weights + bias, atol=2e-2)


def test_ridge_matches_least_squares_and_its_optimality_conditions():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 4)) + 3.0, rng.normal(size=(30, 2))
    augmented = np.hstack([x, np.ones((30, 1))])
    solution = np.linalg.lstsq(augmented, y, rcond=None)[0]
    for l2 in (0.0, 1e-10):
        fitted = RidgeMap.fit(x, y, l2=l2)
        np.testing.assert_allclose(fitted.weights, solution[:4], atol=1e-7)
        np.testing.assert_allclose(fitted.bias, solution[4], atol=1e-7)
    # With a real penalty the gradient of |x W + b - y|^2 + l2 |W|^2 vanishes: in W
    # (x^T r + l2 W = 0) and in b (the residuals sum to 0).
    l2 = 7.0
    fitted = RidgeMap.fit(x, y, l2=l2)
    residual = fitted.predict(x) - y
    np.testing.assert_allclose(x.T @ residual + l2 * fitted.weights, 0.0, atol=1e-9)
    np.testing.assert_allclose(residual.sum(axis=0), 0.0, atol=1e-9)
    assert np.linalg.norm(fitted.weights) < np.linalg.norm(solution[:4])  # shrunk


def test_ridge_errors():
    with pytest.raises(ValueError, match=r"x and y must have the same number of rows .* got "
                                         r"shapes \(3, 2\) and \(4, 1\)"):
        RidgeMap.fit(np.ones((3, 2)), np.ones((4, 1)))
    with pytest.raises(ValueError, match=r"y must be a \[n, d\] matrix, got shape \(3,\)"):
        RidgeMap.fit(np.ones((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="l2 must be a finite number >= 0, got -1"):
        RidgeMap.fit(np.ones((3, 2)), np.ones((3, 1)), l2=-1)
    fitted = RidgeMap.fit(np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match=r"x must be a \[n, 3\] matrix, got shape \(2, 2\)"):
        fitted.predict(np.ones((2, 2)))


def test_behavioural_consistency_by_hand():
    items = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]])
    true = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    recovered = np.array([[2.0, 1.0], [1.0, 2.0], [-1.0, -2.0]])
    # Row 0 scores items [1, 2, 3, 0] (true) and [2, 1, 3, 3] (recovered): ranks
    # [2, 3, 4, 1] and [2, 1, 3.5, 3.5], centred [-.5, .5, 1.5, -1.5] and [-.5, -1.5, 1, 1]:
    # rho = -0.5 / sqrt(5 * 4.5).
    catalogue = np.array([[10.0, -1.0], [1.0, 0.5], [1.0, 1.0]])
    index = np.array([1, 2, -1])
    got = behavioural_consistency(recovered, true, items, catalogue, index, ks=(1, 2))
    assert sorted(got) == ["rank", "recall@1", "recall@2", "spearman"]
    np.testing.assert_allclose(got["spearman"], [-0.5 / math.sqrt(22.5), 1.0, -1.0], atol=1e-12)
    # Row 0: [2, 1] is parallel to row 1 (cosine 1), though row 0's dot product (19) is
    # larger: ranks go by cosine. Row 1: [1, 2] has cosines 0.36, 0.8, 0.95: row 2 first.
    np.testing.assert_array_equal(got["rank"], [1, 1, np.nan])
    np.testing.assert_array_equal(got["recall@1"], [1, 1, np.nan])
    swapped = behavioural_consistency(recovered, true, items, catalogue, np.array([0, 1, 2]))
    np.testing.assert_array_equal(swapped["rank"], [3, 2, 3])
    np.testing.assert_array_equal(swapped["recall@10"], [1, 1, 1])


def test_behavioural_consistency_errors():
    ok = {"recovered": np.ones((2, 3)), "true": np.ones((2, 3)), "item_vectors": np.ones((5, 3)),
          "catalogue": np.ones((4, 3)), "target_index": np.array([0, 1])}
    with pytest.raises(ValueError, match=r"recovered and true .* got \(2, 3\) and \(2, 4\)"):
        behavioural_consistency(**{**ok, "true": np.ones((2, 4))})
    with pytest.raises(ValueError, match=r"item_vectors must be a \[n, 3\] matrix, got shape "
                                         r"\(5, 2\)"):
        behavioural_consistency(**{**ok, "item_vectors": np.ones((5, 2))})
    with pytest.raises(ValueError, match=r"target_index must be an int array of shape \(2,\)"):
        behavioural_consistency(**{**ok, "target_index": np.array([0, 1, 2])})
