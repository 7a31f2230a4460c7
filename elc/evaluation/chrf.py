"""chrF: the character n-gram F-score of a hypothesis against a reference (Popović, 2015),
as sacrebleu computes it for one sentence with its defaults (chrF2: ``beta`` 2, n-grams of
1 to 6 characters, no word n-grams, whitespace removed, case kept, no epsilon smoothing).

For each order n the n-gram counts of both strings give a precision (matched / hypothesis
n-grams) and a recall (matched / reference n-grams), matches clipped to the smaller count.
Precision and recall are averaged over the orders at which both strings have n-grams, and
combined into ``(1 + beta^2) P R / (beta^2 P + R)``, scaled to 0..100.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

CHAR_ORDER = 6
BETA = 2.0


def _ngrams(text: str, n: int) -> Counter:
    return Counter(text[i:i + n] for i in range(len(text) - n + 1))


def chrf_statistics(hypothesis: str, reference: str, order: int = CHAR_ORDER
                    ) -> list[tuple[int, int, int]]:
    """(hypothesis n-grams, reference n-grams, matched n-grams) for n = 1..``order``."""
    hypothesis, reference = "".join(hypothesis.split()), "".join(reference.split())
    stats = []
    for n in range(1, order + 1):
        hyp, ref = _ngrams(hypothesis, n), _ngrams(reference, n)
        stats.append((sum(hyp.values()), sum(ref.values()), sum((hyp & ref).values())))
    return stats


def chrf_from_statistics(stats: Sequence[tuple[int, int, int]], beta: float = BETA) -> float:
    """chrF (0..100) from per-order statistics (summed over sentences for a corpus score)."""
    precision = recall = 0.0
    orders = 0
    for hyp, ref, match in stats:
        if hyp > 0 and ref > 0:
            precision += match / hyp
            recall += match / ref
            orders += 1
    if orders == 0:
        return 0.0
    precision, recall = precision / orders, recall / orders
    if precision + recall == 0:
        return 0.0
    factor = beta ** 2
    return 100.0 * (1 + factor) * precision * recall / (factor * precision + recall)


def chrf(hypothesis: str, reference: str, order: int = CHAR_ORDER, beta: float = BETA) -> float:
    """The sentence chrF of ``hypothesis`` against ``reference``, 0..100."""
    if order < 1 or beta <= 0:
        raise ValueError(f"chrF needs order >= 1 and beta > 0, got order {order}, beta {beta}")
    return chrf_from_statistics(chrf_statistics(hypothesis, reference, order), beta)


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[str],
                order: int = CHAR_ORDER, beta: float = BETA) -> float:
    """chrF of a corpus: the statistics of every pair summed, then one score."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    totals = [[0, 0, 0] for _ in range(order)]
    for hypothesis, reference in zip(hypotheses, references):
        for total, stat in zip(totals, chrf_statistics(hypothesis, reference, order)):
            for k in range(3):
                total[k] += stat[k]
    return chrf_from_statistics([tuple(t) for t in totals], beta)
