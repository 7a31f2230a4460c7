"""Held-out ranking evaluation of recommender scores: split, recall@k, NDCG@k, popularity.

Relevance is binary: an item is relevant to a user iff it is in that user's held-out set.
Items the user interacted with in training are removed from the ranking, since recommending
what the user has already seen says nothing about generalisation.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class HoldoutSplit:
    """Interactions divided into training and held-out parts, each as parallel arrays."""

    train_user_ids: np.ndarray
    train_item_ids: np.ndarray
    train_values: np.ndarray
    test_user_ids: np.ndarray
    test_item_ids: np.ndarray
    test_values: np.ndarray


def holdout_split(user_ids: np.ndarray, item_ids: np.ndarray, values: np.ndarray,
                  fraction: float | None = 0.2, count: int | None = None,
                  seed: int = 0) -> HoldoutSplit:
    """Holds out, per user, a random ``fraction`` (or a fixed ``count``) of interactions.

    A user with n interactions gets round(fraction * n) (halves round up) or ``count``
    held-out interactions, capped at n - 1 so every user keeps at least one training
    interaction and so has an embedding to be evaluated with.

    Args:
      user_ids, item_ids, values: [n] parallel interaction arrays.
      fraction: share of each user's interactions to hold out, in [0, 1); ignored if
        ``count`` is given.
      count: number of interactions per user to hold out, >= 0.
      seed: seed of the random choice.

    Returns:
      The split; the order of interactions within each part is by user, then random.
    """
    user_ids, item_ids, values = np.asarray(user_ids), np.asarray(item_ids), np.asarray(values)
    if not (user_ids.ndim == item_ids.ndim == values.ndim == 1
            and len(user_ids) == len(item_ids) == len(values)):
        raise ValueError("user_ids, item_ids and values must be 1-D of one length, got shapes "
                         f"{user_ids.shape}, {item_ids.shape}, {values.shape}")
    if len(user_ids) and (not np.issubdtype(user_ids.dtype, np.integer) or user_ids.min() < 0):
        raise ValueError(f"user_ids must be non-negative ints, got dtype {user_ids.dtype} "
                         f"with minimum {user_ids.min()}")
    if count is not None:
        if not (isinstance(count, (int, np.integer)) and count >= 0):
            raise ValueError(f"count must be an int >= 0, got {count!r}")
    elif fraction is None or not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1) when count is not given, got {fraction!r}")

    rng = np.random.default_rng(seed)
    # Sorting by user with a random tie-break shuffles each user's interactions in place.
    order = np.lexsort((rng.random(len(user_ids)), user_ids))
    sorted_users = user_ids[order]
    degree = np.bincount(sorted_users) if len(sorted_users) else np.zeros(0, np.int64)
    first = np.concatenate([[0], np.cumsum(degree)[:-1]]).astype(np.int64)
    rank = np.arange(len(order)) - first[sorted_users]
    if count is not None:
        n_test = np.full(len(degree), count)
    else:
        n_test = np.floor(fraction * degree + 0.5).astype(np.int64)
    n_test = np.minimum(n_test, np.maximum(degree - 1, 0))
    is_test = np.zeros(len(order), bool)
    is_test[order] = rank < n_test[sorted_users]
    train, test = ~is_test, is_test
    # Keep the shuffled, user-grouped order in both parts.
    train_idx, test_idx = order[train[order]], order[test[order]]
    return HoldoutSplit(user_ids[train_idx], item_ids[train_idx], values[train_idx],
                        user_ids[test_idx], item_ids[test_idx], values[test_idx])


def _check_pairs(name: str, users: np.ndarray, items: np.ndarray, shape: tuple[int, int]):
    users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
    if users.shape != items.shape or users.ndim != 1:
        raise ValueError(f"{name} user and item ids must be 1-D of one length, got shapes "
                         f"{users.shape} and {items.shape}")
    for kind, ids, n in (("user", users, shape[0]), ("item", items, shape[1])):
        bad = (ids < 0) | (ids >= n)
        if bad.any():
            raise ValueError(f"{name} {kind} ids must lie in [0, {n}) to index the score "
                             f"matrix, got {ids[bad][0]}")
    return users, items


def ranking_metrics(scores: np.ndarray, train_user_ids: np.ndarray,
                    train_item_ids: np.ndarray, test_user_ids: np.ndarray,
                    test_item_ids: np.ndarray, k: int) -> dict[str, float]:
    """Mean recall@k and NDCG@k over the users that have held-out items.

    recall@k = |top-k ∩ test_u| / |test_u|; NDCG@k = DCG / IDCG with
    DCG = sum over hits at 1-based rank r of 1 / log2(r + 1) and IDCG the DCG of a ranking
    that puts min(k, |test_u|) relevant items first. Ties in score are broken towards the
    lower item id, so the result is deterministic.

    Args:
      scores: [num_users, num_items] higher-is-better scores (may be a broadcast view).
      train_user_ids, train_item_ids: training pairs, excluded from each user's ranking.
      test_user_ids, test_item_ids: held-out pairs, the relevant items.
      k: ranking cutoff, >= 1.

    Returns:
      {"recall": ..., "ndcg": ..., "users": number of users averaged over}.
    """
    if not (isinstance(k, (int, np.integer)) and k >= 1):
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [num_users, num_items], got shape {scores.shape}")
    train_u, train_i = _check_pairs("train", train_user_ids, train_item_ids, scores.shape)
    test_u, test_i = _check_pairs("test", test_user_ids, test_item_ids, scores.shape)
    if len(test_u) == 0:
        raise ValueError("no held-out interactions: the metrics are undefined")
    num_items = scores.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)
    eval_users = np.unique(test_u)
    recall_sum = ndcg_sum = 0.0
    # Users go in chunks so the float64 copy of their score rows stays around 64 MiB.
    chunk = max(1, (1 << 23) // num_items)
    for start in range(0, len(eval_users), chunk):
        users = eval_users[start:start + chunk]
        local = np.full(scores.shape[0], -1, np.int64)
        local[users] = np.arange(len(users))
        rows = scores[users].astype(np.float64)
        seen = local[train_u] >= 0
        rows[local[train_u[seen]], train_i[seen]] = -np.inf
        relevant = np.zeros(rows.shape, bool)
        held = local[test_u] >= 0
        relevant[local[test_u[held]], test_i[held]] = True
        top = np.argsort(-rows, axis=1, kind="stable")[:, :k]
        # With fewer than k unseen items the top k reaches into the excluded (-inf) training
        # items, which must not count as hits even if also held out.
        hits = (np.take_along_axis(relevant, top, axis=1)
                & np.isfinite(np.take_along_axis(rows, top, axis=1)))
        n_relevant = relevant.sum(axis=1)
        recall_sum += float(np.sum(hits.sum(axis=1) / n_relevant))
        dcg = hits @ discounts[:hits.shape[1]]
        ndcg_sum += float(np.sum(dcg / ideal[np.minimum(n_relevant, k) - 1]))
    return {"recall": recall_sum / len(eval_users), "ndcg": ndcg_sum / len(eval_users),
            "users": len(eval_users)}


def recall_at_k(scores: np.ndarray, train_user_ids: np.ndarray, train_item_ids: np.ndarray,
                test_user_ids: np.ndarray, test_item_ids: np.ndarray, k: int) -> float:
    """Mean recall@k over users with held-out items; see :func:`ranking_metrics`."""
    return ranking_metrics(scores, train_user_ids, train_item_ids, test_user_ids,
                           test_item_ids, k)["recall"]


def ndcg_at_k(scores: np.ndarray, train_user_ids: np.ndarray, train_item_ids: np.ndarray,
              test_user_ids: np.ndarray, test_item_ids: np.ndarray, k: int) -> float:
    """Mean binary-relevance NDCG@k over users with held-out items; see :func:`ranking_metrics`."""
    return ranking_metrics(scores, train_user_ids, train_item_ids, test_user_ids,
                           test_item_ids, k)["ndcg"]


def popularity_scores(train_user_ids: np.ndarray, train_item_ids: np.ndarray, num_users: int,
                      num_items: int) -> np.ndarray:
    """The popularity baseline: every user scores an item by its number of distinct training users.

    Returns a read-only [num_users, num_items] broadcast view of one row, so it costs
    O(num_items) memory whatever the number of users.
    """
    train_u, train_i = _check_pairs("train", train_user_ids, train_item_ids,
                                    (num_users, num_items))
    distinct = np.unique(train_u * num_items + train_i) % num_items
    counts = np.bincount(distinct, minlength=num_items).astype(np.float64)
    return np.broadcast_to(counts, (num_users, num_items))
