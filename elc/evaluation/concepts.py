"""Novel entities: points of the embedding space that no movie or user occupies.

The ELM paper asks the model about vectors between two entities (:func:`interpolate`) and
about entities moved along a concept direction (:func:`shift`), a concept activation vector
(CAV, :func:`fit_cav`) separating users who have a property from users who lack it (e.g.
:func:`genre_preference_labels`). A good ELM's descriptions change accordingly: an attribute
read from them should move monotonically along the path (:func:`trend_agreement`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.optimize
import scipy.special

from elc.evaluation.consistency import spearman_rows


def _amounts(name: str, values: Sequence[float]) -> np.ndarray:
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"{name} must be a non-empty 1-D sequence of finite numbers, got "
                         f"{values.tolist()!r}")
    return values


def _vectors(name: str, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty [n, d] matrix, got shape {x.shape}")
    return x


def interpolate(a: np.ndarray, b: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """``(1 - t) a + t b`` for each weight t: [n, d], [n, d] -> [len(weights), n, d]."""
    a, b = _vectors("a", a), _vectors("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have one shape, got {a.shape} and {b.shape}")
    t = _amounts("weights", weights)[:, None, None]
    return (1 - t) * a + t * b


def fit_cav(vectors: np.ndarray, labels: np.ndarray, l2: float = 1e-2) -> np.ndarray:
    """A concept activation vector: the unit normal of a logistic-regression boundary.

    Minimises the mean logistic loss of ``vectors @ w + c`` plus ``l2 / 2 * |w|^2`` (the
    intercept unpenalised) with L-BFGS; the penalty keeps ``w`` finite on separable data.

    Args:
      vectors: [n, d] embeddings.
      labels: [n] bools, True for entities with the concept.
      l2: penalty > 0.

    Returns:
      [d] unit vector pointing toward the positive class.

    Raises:
      ValueError: bad shapes, a class without members, or no direction found (e.g. both
        classes have the same vectors).
    """
    x = _vectors("vectors", vectors)
    labels = np.asarray(labels)
    if labels.shape != (len(x),) or labels.dtype != bool:
        raise ValueError(f"labels must be a bool array of shape ({len(x)},), got dtype "
                         f"{labels.dtype} and shape {labels.shape}")
    positives = int(labels.sum())
    if positives in (0, len(labels)):
        raise ValueError(f"fit_cav needs both classes, got {positives} positive and "
                         f"{len(labels) - positives} negative labels")
    if not (np.isfinite(l2) and l2 > 0):
        raise ValueError(f"l2 must be a finite number > 0, got {l2!r}")
    # Centred for the optimiser's sake; with an unpenalised intercept w is unchanged.
    x = x - x.mean(axis=0)
    sign = np.where(labels, 1.0, -1.0)
    d = x.shape[1]

    def loss_and_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, c = params[:d], params[d]
        margins = sign * (x @ w + c)
        loss = -np.mean(scipy.special.log_expit(margins)) + 0.5 * l2 * w @ w
        # d/dm of -log sigmoid(m) is -sigmoid(-m).
        dm = -scipy.special.expit(-margins) * sign / len(x)
        return loss, np.concatenate([x.T @ dm + l2 * w, [dm.sum()]])

    result = scipy.optimize.minimize(loss_and_grad, np.zeros(d + 1), jac=True,
                                     method="L-BFGS-B",
                                     options={"maxiter": 1000, "gtol": 1e-10, "ftol": 1e-15})
    w = result.x[:d]
    norm = np.linalg.norm(w)
    if not norm > 1e-12:
        raise ValueError("fit_cav found no direction separating the classes (the weights are "
                         "zero); are the positive and negative vectors alike?")
    return w / norm


def shift(vectors: np.ndarray, direction: np.ndarray, amounts: Sequence[float]) -> np.ndarray:
    """``v + amount * mean_norm * direction`` for each amount: [n, d] -> [len(amounts), n, d].

    ``mean_norm`` is the mean row norm of ``vectors``, so with a unit ``direction`` an
    amount of 1 moves each vector by a typical vector's length, whatever the space's scale.
    """
    x = _vectors("vectors", vectors)
    direction = np.asarray(direction, np.float64)
    if direction.shape != (x.shape[1],):
        raise ValueError(f"direction must have shape ({x.shape[1]},) to shift vectors of shape "
                         f"{x.shape}, got {direction.shape}")
    scale = np.linalg.norm(x, axis=1).mean()
    return x + _amounts("amounts", amounts)[:, None, None] * scale * direction


def genre_preference_labels(user_ids: Sequence[int],
                            user_ratings: Mapping[int, Mapping[int, float]],
                            movie_genres: Mapping[int, Sequence[str]], genre: str,
                            liked: float) -> np.ndarray:
    """Which users prefer ``genre``: their share of liked movies in it is above the median.

    A user's share is (liked movies with the genre) / (liked movies), 0 with no liked
    movie; a movie is liked when rated >= ``liked``. A user is True when the share is
    strictly above the median share over ``user_ids``.

    Args:
      user_ids: [n] users to label.
      user_ratings: user -> {movie: rating}; must hold every user of ``user_ids``.
      movie_genres: movie -> genres; a movie missing here has no genre.
      genre: the genre.
      liked: the lowest rating that counts as liked.

    Returns:
      [n] bools in ``user_ids`` order.
    """
    if len(user_ids) == 0:
        raise ValueError("user_ids is empty: no users to label")
    missing = [u for u in user_ids if u not in user_ratings]
    if missing:
        raise ValueError(f"users {missing[:5]} ({len(missing)} in all) have no entry in "
                         "user_ratings")
    if not any(genre in genres for genres in movie_genres.values()):
        raise ValueError(f"no movie has genre {genre!r}")
    shares = np.zeros(len(user_ids))
    for row, user in enumerate(user_ids):
        liked_movies = [m for m, r in user_ratings[user].items() if r >= liked]
        if liked_movies:
            in_genre = sum(genre in movie_genres.get(m, ()) for m in liked_movies)
            shares[row] = in_genre / len(liked_movies)
    return shares > np.median(shares)


def trend_agreement(amounts: Sequence[float], values: np.ndarray) -> dict[str, float]:
    """Whether an attribute read from descriptions moves with the amount along a path.

    Args:
      amounts: [k] path positions (interpolation weights or shift amounts), not all equal.
      values: [k, n] the attribute for each position and path.

    Returns:
      ``"spearman"``: mean over paths of the Spearman correlation of amounts and values,
      a path whose values do not change counting as 0; ``"increased"``: the fraction of
      paths whose last value exceeds the first; ``"steps_up"``: the fraction of steps
      between consecutive positions, over all paths, at which the value grows (a step
      without change counts as not moving).
    """
    amounts = _amounts("amounts", amounts)
    values = np.asarray(values, np.float64)
    if values.ndim != 2 or values.shape[0] != len(amounts) or values.shape[1] == 0:
        raise ValueError(f"values must be [len(amounts)={len(amounts)}, n >= 1], got shape "
                         f"{values.shape}")
    if np.ptp(amounts) == 0:
        raise ValueError(f"amounts must not all be equal, got {amounts.tolist()}")
    paths = values.T
    correlations = spearman_rows(np.broadcast_to(amounts, paths.shape), paths)
    order = np.argsort(amounts, kind="stable")
    return {"spearman": float(np.nan_to_num(correlations, nan=0.0).mean()),
            "increased": float(np.mean(values[-1] > values[0])),
            "steps_up": float(np.mean(np.diff(values[order], axis=0) > 0))}
