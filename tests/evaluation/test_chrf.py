"""chrF against hand-computed values and sacrebleu's documented example."""

import pytest

from elc.evaluation.chrf import chrf, chrf_statistics, corpus_chrf


def test_partial_match_by_hand():
    # n=1: P 2/2, R 2/3; n=2: P 1/1, R 1/2; n>=3: the hypothesis has none, order skipped.
    # P = 1, R = 7/12, F2 = 5 P R / (4 P + R) = 7/11.
    assert chrf("ab", "abc") == pytest.approx(100 * 7 / 11)


def test_matches_are_clipped_by_hand():
    # n=1: 3 'a' vs 2: P 2/3, R 1; n=2: 'aa' x2 vs x1: P 1/2, R 1; n=3: the reference has none.
    # P = 7/12, R = 1, F2 = 5 * 7/12 / (4 * 7/12 + 1) = 7/8.
    assert chrf("aaa", "aa") == pytest.approx(87.5)
    assert chrf_statistics("aaa", "aa", order=3) == [(3, 2, 2), (2, 1, 1), (1, 0, 0)]


def test_whitespace_is_ignored_and_case_kept():
    assert chrf("a b\tc", "abc") == pytest.approx(100.0)
    assert chrf("ABC", "abc") == 0.0


def test_edge_cases():
    assert chrf("same text", "same text") == pytest.approx(100.0)
    assert chrf("xyz", "abc") == 0.0
    assert chrf("", "abc") == 0.0
    assert chrf("abc", "") == 0.0


def test_sacrebleu_documented_sentence():
    # The value sacrebleu (chrF2, its defaults) gives, as quoted in the HF chrF metric card.
    score = chrf("The relationship between Obama and Netanyahu is not exactly friendly.",
                 "The ties between Obama and Netanyahu are not particularly friendly.")
    assert score == pytest.approx(61.576379378113785, abs=1e-9)


def test_corpus_sums_statistics():
    # Summed: n=1 (2+3, 3+2, 2+2) -> P 4/5, R 4/5; n=2 (1+2, 2+1, 1+1) -> P 2/3, R 2/3;
    # n=3 (0+1, 1+0, 0) -> both > 0, P 0, R 0. Averages P = R = (4/5 + 2/3) / 3 = 22/45.
    assert corpus_chrf(["ab", "aaa"], ["abc", "aa"]) == pytest.approx(100 * 22 / 45)
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        corpus_chrf(["a", "b"], ["a"])
