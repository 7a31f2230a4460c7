"""Implicit-feedback weighted ALS (Hu, Koren & Volinsky 2008) in JAX.

The behavioural user and movie embeddings of an ELM come from this factorisation
(Tennenholtz et al. 2024). For an interaction matrix R (users x items) the model minimises

    sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + regularization * (|X|^2 + |Y|^2)

over *all* user/item pairs, where p_ui = 1 if r_ui > 0 else 0 and the confidence is
c_ui = 1 + alpha * r_ui ("linear") or 1 + alpha * log(1 + r_ui / epsilon) ("log"); unobserved
pairs have c_ui = 1. Each half-step solves, exactly and for every user at once,

    (YᵀY + Yᵀ(C_u - I)Y + reg I) x_u = Yᵀ C_u p_u

where YᵀY is shared by all users, so the per-user work only touches that user's observed
items and the whole sweep scales with the number of interactions, not users x items.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import numpy as np

# Upper bound on floats gathered per chunk (rows x padded list length x dim): ~256 MiB of
# float32, which keeps the batched solve within a small machine's memory whatever the data size.
_GATHER_BUDGET = 1 << 26


@dataclasses.dataclass(frozen=True)
class AlsConfig:
    """Hyperparameters of :func:`fit_als`.

    Attributes:
      dim: embedding dimension d.
      regularization: L2 weight on both factor matrices; 0 is allowed but leaves a solve
        singular (NaN factors, which fit_als reports) whenever the fixed factors do not
        span R^dim.
      alpha: confidence scale; larger trusts observed interactions more than unobserved ones.
      iterations: number of full sweeps (users then items).
      seed: seed of the random initial factors.
      confidence: "linear" (c = 1 + alpha r) or "log" (c = 1 + alpha log(1 + r / log_epsilon)).
      log_epsilon: the epsilon of the "log" confidence; unused for "linear".
    """

    dim: int = 64
    regularization: float = 0.1
    alpha: float = 10.0
    iterations: int = 15
    seed: int = 0
    confidence: Literal["linear", "log"] = "linear"
    log_epsilon: float = 1.0

    def __post_init__(self):
        if not (isinstance(self.dim, int) and self.dim >= 1):
            raise ValueError(f"dim must be a positive int, got {self.dim!r}")
        if not self.regularization >= 0:
            raise ValueError(f"regularization must be >= 0, got {self.regularization!r}")
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}")
        if not (isinstance(self.iterations, int) and self.iterations >= 1):
            raise ValueError(f"iterations must be a positive int, got {self.iterations!r}")
        if self.confidence not in ("linear", "log"):
            raise ValueError(f"confidence must be 'linear' or 'log', got {self.confidence!r}")
        if not self.log_epsilon > 0:
            raise ValueError(f"log_epsilon must be > 0, got {self.log_epsilon!r}")


@dataclasses.dataclass
class AlsFactors:
    """Result of :func:`fit_als`.

    Attributes:
      user_factors: [num_users, dim] float32; a user with no interactions gets the zero vector.
      item_factors: [num_items, dim] float32; likewise for items.
      loss_history: the full objective after each iteration, in order.
    """

    user_factors: np.ndarray
    item_factors: np.ndarray
    loss_history: list[float]


def confidence_weights(values: np.ndarray, config: AlsConfig) -> np.ndarray:
    """c_ui of observed interactions with strengths ``values`` (all > 0), as float32."""
    values = np.asarray(values, np.float64)
    if config.confidence == "linear":
        conf = 1.0 + config.alpha * values
    else:
        conf = 1.0 + config.alpha * np.log1p(values / config.log_epsilon)
    return conf.astype(np.float32)


@jax.jit
def _solve_chunk(fixed: jax.Array, gram: jax.Array, cols: jax.Array, conf: jax.Array,
                 regularization: jax.Array) -> jax.Array:
    """Exact solves for a chunk of rows; padding entries carry conf = 0 and so add nothing."""
    gathered = fixed[cols]                                   # [B, L, d]
    # Real entries have c >= 1, padding has c = 0: (c - 1) must be zeroed only for padding.
    extra = jnp.where(conf > 0, conf - 1.0, 0.0)
    # Scale one side first so the product is a plain batched matmul [B, d, L] @ [B, L, d].
    lhs = gram + jnp.einsum("bld,ble->bde", gathered * extra[..., None], gathered)
    lhs = lhs + regularization * jnp.eye(gram.shape[0], dtype=gram.dtype)
    rhs = jnp.einsum("bl,bld->bd", conf, gathered)
    # lhs is symmetric positive definite when reg > 0 (or the fixed factors span R^d), so
    # Cholesky is stable here and needs about half the work of a general LU solve.
    factor = jax.scipy.linalg.cho_factor(lhs)
    return jax.scipy.linalg.cho_solve(factor, rhs[..., None])[..., 0]


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


class _Lists:
    """Per-row padded interaction lists, grouped into chunks of similar length.

    Rows are bucketed by their degree rounded up to a power of two and each bucket is padded
    only to that length, so padding at most doubles the work (one global padding length
    would let a few heavy rows inflate every other row's solve). Chunk shapes are powers of
    two so the jitted solve compiles a handful of times, not once per chunk.
    """

    def __init__(self, rows: np.ndarray, cols: np.ndarray, conf: np.ndarray, num_rows: int,
                 dim: int):
        order = np.lexsort((cols, rows))
        rows, cols, conf = rows[order], cols[order], conf[order]
        degree = np.bincount(rows, minlength=num_rows)
        starts = np.concatenate([[0], np.cumsum(degree)[:-1]])
        # Rows without interactions have the closed-form solution x = 0 (zero right-hand
        # side), so they are simply never solved and stay zero.
        active = np.flatnonzero(degree)
        length_of = np.array([_next_pow2(n) for n in degree[active]], np.int64)
        self.chunks = []
        for length in np.unique(length_of):
            length = int(length)
            bucket = active[length_of == length]
            batch = max(1, _GATHER_BUDGET // (length * dim))
            batch = 1 << (batch.bit_length() - 1)
            offsets = np.arange(length)
            for pos in range(0, len(bucket), batch):
                members = bucket[pos:pos + batch]
                padded_rows = min(batch, _next_pow2(len(members)))
                chunk_cols = np.zeros((padded_rows, length), np.int32)
                chunk_conf = np.zeros((padded_rows, length), np.float32)
                valid = offsets[None, :] < degree[members][:, None]
                src = starts[members][:, None] + offsets[None, :]
                chunk_cols[:len(members)][valid] = cols[src[valid]]
                chunk_conf[:len(members)][valid] = conf[src[valid]]
                self.chunks.append((members, jnp.asarray(chunk_cols), jnp.asarray(chunk_conf)))


def _solve_all(fixed: jax.Array, lists: _Lists, num_rows: int,
               regularization: float) -> jax.Array:
    out = np.zeros((num_rows, fixed.shape[1]), np.float32)
    gram = fixed.T @ fixed
    reg = jnp.float32(regularization)
    for members, cols, conf in lists.chunks:
        solved = _solve_chunk(fixed, gram, cols, conf, reg)
        out[members] = np.asarray(solved[:len(members)])
    return jnp.asarray(out)


def solve_factors(fixed_factors: np.ndarray, row_ids: np.ndarray, col_ids: np.ndarray,
                  confidence: np.ndarray, num_rows: int, regularization: float) -> np.ndarray:
    """One ALS half-step: the exact minimiser of the loss over the rows' factors.

    Args:
      fixed_factors: [num_cols, d] factors held fixed (item factors when solving users).
      row_ids, col_ids: observed pairs, no duplicates; every observed pair has p = 1.
      confidence: c of each observed pair (>= 1); unobserved pairs have c = 1.
      num_rows: number of rows to solve for.
      regularization: L2 weight.

    Returns:
      [num_rows, d] float32 factors; rows with no observed pairs are zero.
    """
    fixed = jnp.asarray(fixed_factors, jnp.float32)
    lists = _Lists(np.asarray(row_ids, np.int64), np.asarray(col_ids, np.int64),
                   np.asarray(confidence, np.float32), num_rows, fixed.shape[1])
    return np.asarray(_solve_all(fixed, lists, num_rows, regularization))


@jax.jit
def _observed_terms(x: jax.Array, y: jax.Array, conf: jax.Array) -> jax.Array:
    """sum over observed pairs of c (1 - s)^2 - s^2, with s = x . y row by row."""
    s = jnp.sum(x * y, axis=1)
    return jnp.sum(conf * (1.0 - s) ** 2 - s ** 2)


def _loss(users: jax.Array, items: jax.Array, rows: np.ndarray, cols: np.ndarray,
          conf: np.ndarray, regularization: float) -> float:
    """The full objective over all users x items, computed in O(nnz d + (U + I) d^2).

    Unobserved pairs contribute s^2, so the sum over every pair of s^2 (a trace of Gram
    products) is corrected on the observed pairs only.
    """
    all_pairs = float(jnp.sum((users.T @ users) * (items.T @ items)))
    observed = 0.0
    step = 1 << 20
    for start in range(0, len(rows), step):
        sl = slice(start, start + step)
        observed += float(_observed_terms(users[rows[sl]], items[cols[sl]],
                                          jnp.asarray(conf[sl])))
    penalty = regularization * float(jnp.sum(users ** 2) + jnp.sum(items ** 2))
    return all_pairs + observed + penalty


def _validate(user_ids, item_ids, values, num_users: int, num_items: int):
    user_ids, item_ids, values = np.asarray(user_ids), np.asarray(item_ids), np.asarray(values)
    for name, n in (("num_users", num_users), ("num_items", num_items)):
        if not (isinstance(n, (int, np.integer)) and n >= 1):
            raise ValueError(f"{name} must be a positive int, got {n!r}")
    if not (user_ids.ndim == item_ids.ndim == values.ndim == 1
            and len(user_ids) == len(item_ids) == len(values)):
        raise ValueError("user_ids, item_ids and values must be 1-D of one length, got shapes "
                         f"{user_ids.shape}, {item_ids.shape}, {values.shape}")
    for name, ids, n in (("user_ids", user_ids, num_users), ("item_ids", item_ids, num_items)):
        if len(ids) and not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"{name} must be integers, got dtype {ids.dtype}")
        bad = (ids < 0) | (ids >= n)
        if bad.any():
            raise ValueError(f"{name} must lie in [0, {n}), got {ids[bad][0]} at position "
                             f"{np.flatnonzero(bad)[0]}")
    if len(values) and not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"values must be numeric, got dtype {values.dtype}")
    values = values.astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"values must be finite, got {values[bad][0]} at position "
                         f"{np.flatnonzero(bad)[0]}")
    bad = values < 0
    if bad.any():
        raise ValueError(f"values must be >= 0, got {values[bad][0]} at position "
                         f"{np.flatnonzero(bad)[0]}")
    return user_ids.astype(np.int64), item_ids.astype(np.int64), values


def fit_als(user_ids: np.ndarray, item_ids: np.ndarray, values: np.ndarray, num_users: int,
            num_items: int, config: AlsConfig = AlsConfig()) -> AlsFactors:
    """Fits implicit-feedback weighted ALS to (user, item, strength) interactions.

    Repeated (user, item) pairs are summed into one interaction; pairs whose strength is 0
    count as unobserved (p = 0), as in Hu et al.

    Args:
      user_ids: [n] ints in [0, num_users).
      item_ids: [n] ints in [0, num_items).
      values: [n] finite interaction strengths >= 0 (counts, ratings, watch time...).
      num_users, num_items: sizes of the factor matrices.
      config: hyperparameters.

    Returns:
      The factors and the objective after each iteration, which never increases since each
      half-step is an exact minimisation.

    Raises:
      ValueError: bad input, or a non-finite objective (the factors overflowed float32),
        naming the iteration and the largest value.
    """
    users_np, items_np, values = _validate(user_ids, item_ids, values, num_users, num_items)
    keys, inverse = np.unique(users_np * num_items + items_np, return_inverse=True)
    summed = np.bincount(inverse.ravel(), weights=values, minlength=len(keys))
    keep = summed > 0
    rows, cols = keys[keep] // num_items, keys[keep] % num_items
    conf = confidence_weights(summed[keep], config)

    key_users, key_items = jax.random.split(jax.random.PRNGKey(config.seed))
    # Small random start (as in common implementations): the first user solve is then
    # dominated by the data rather than by the initial guess.
    users = 0.01 * jax.random.normal(key_users, (num_users, config.dim), jnp.float32)
    items = 0.01 * jax.random.normal(key_items, (num_items, config.dim), jnp.float32)
    user_lists = _Lists(rows, cols, conf, num_users, config.dim)
    item_lists = _Lists(cols, rows, conf, num_items, config.dim)
    history = []
    for iteration in range(1, config.iterations + 1):
        users = _solve_all(items, user_lists, num_users, config.regularization)
        items = _solve_all(users, item_lists, num_items, config.regularization)
        history.append(_loss(users, items, rows, cols, conf, config.regularization))
        if not np.isfinite(history[-1]):  # NaN factors would go on silently to the tables
            largest = int(np.argmax(values))
            singular = (" or regularization 0 left a solve singular"
                        if config.regularization == 0 else "")
            raise ValueError(
                f"ALS diverged: objective {history[-1]} after iteration {iteration}. The largest "
                f"of the values is {values[largest]:g} (position {largest}); values far outside "
                f"the data's scale (a rating of 1e12 on a 1 to 5 scale) overflow float32"
                f"{singular}")
    return AlsFactors(np.asarray(users, np.float32), np.asarray(items, np.float32), history)
