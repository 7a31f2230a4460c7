"""Linear probes: hand-computed fits, leave-one-out against refitting, the commonest answer."""

import numpy as np
import pytest

from elc.evaluation.consistency import RidgeMap
from elc.evaluation.probes import LinearProbe, commonest, leave_one_out_errors, leave_one_out_l2


def test_number_probe_matches_the_hand_computed_ridge():
    # Centred x = (-1, 0, 1), y = (-2, 0, 2): the mean squared singular value is sum x^2 = 2,
    # so relative penalty 1 is l2 = 2 and the slope is sum(xy) / (sum(x^2) + l2) = 4 / 4.
    probe = LinearProbe.fit(np.array([[-1.0], [0.0], [1.0]]), [-2.0, 0.0, 2.0], "number",
                            grid=(1.0,))
    assert probe.l2 == pytest.approx(2.0)
    assert probe.predict(np.array([[3.0], [-0.5]])) == pytest.approx([3.0, -0.5])


def test_leave_one_out_choice_equals_refitting_without_each_row():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3)) * [1.0, 5.0, 0.2] + 3.0
    y = x @ rng.normal(size=(3, 2)) + rng.normal(size=(12, 2)) * 2.0
    grid = (1e-3, 1e-1, 1.0, 10.0)
    scale = np.mean(np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2)
    errors = []
    for relative in grid:
        error = 0.0
        for i in range(len(x)):
            keep = np.arange(len(x)) != i
            fit = RidgeMap.fit(x[keep], y[keep], l2=relative * scale)
            error += float(np.sum((fit.predict(x[i:i + 1]) - y[i]) ** 2))
        errors.append(error)
    np.testing.assert_allclose(leave_one_out_errors(x, y, grid), errors, rtol=1e-9)
    assert len(set(np.round(errors, 6))) == len(grid)  # the choice is not a tie
    assert leave_one_out_l2(x, y, grid) == pytest.approx(grid[int(np.argmin(errors))] * scale)


def test_label_probes_read_separable_facts_and_skip_unknown_ones():
    centres = {"Drama": [4.0, 0.0], "Comedy": [0.0, 4.0], "Horror": [-4.0, -4.0]}
    rng = np.random.default_rng(1)
    labels = [name for name in centres for _ in range(6)]
    x = np.array([centres[name] for name in labels]) + rng.normal(size=(18, 2)) * 0.3
    label = LinearProbe.fit(np.vstack([x, [[0.0, 0.0]]]), labels + [None], "label")
    assert label.vocabulary == ("Comedy", "Drama", "Horror")  # the unknown fact left out
    assert label.predict(np.array([[3.5, 0.5], [0.2, 3.0], [-3.0, -5.0]])) == [
        "Drama", "Comedy", "Horror"]
    # Sets: a point between Drama and Comedy that both kinds of rows cover.
    sets = [frozenset({name}) for name in labels] + [frozenset({"Drama", "Comedy"})] * 6
    both = np.array([[2.0, 2.0]] * 6) + rng.normal(size=(6, 2)) * 0.3
    probe = LinearProbe.fit(np.vstack([x, both]), sets, "labels")
    assert probe.predict(np.array([[2.0, 2.0], [4.0, 0.0], [-4.0, -4.0]])) == [
        frozenset({"Drama", "Comedy"}), frozenset({"Drama"}), frozenset({"Horror"})]


def test_a_set_probe_always_names_at_least_one_label():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    probe = LinearProbe.fit(x, [frozenset("a"), frozenset("b"), frozenset("c"), frozenset("d")],
                            "labels", grid=(1e3,))  # heavy shrinkage: every output near 1/4
    assert [len(s) for s in probe.predict(x)] == [1, 1, 1, 1]


def test_commonest_answers():
    assert commonest([1.0, 5.0, None, 2.0], "number") == 2.0
    assert commonest(["b", "a", "b", None, "a"], "label") == "a"  # a tie: first in order
    assert commonest([frozenset({"Drama"}), frozenset({"Comedy", "Drama"}),
                      frozenset({"Drama"})], "labels") == frozenset({"Drama"})
    assert commonest([None], "label") is None


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unknown fact kind 'text'"):
        LinearProbe.fit(np.zeros((3, 1)), [1, 2, 3], "text")
    with pytest.raises(ValueError, match="at least 2 known facts, got 1"):
        LinearProbe.fit(np.zeros((3, 1)), [1.0, None, None], "number")
    with pytest.raises(ValueError, match=r"one row per fact, got shape \(3, 1\) for 2 facts"):
        LinearProbe.fit(np.zeros((3, 1)), [1.0, 2.0], "number")
