"""Fingerprints of a pytree's arrays: what a checkpoint records so that a restore can
tell a faithful copy of the saved state from a damaged one.

Each array leaf gets two 32-bit checksums of its raw bits, computed on the devices where
it lives: the sum of its 32-bit words and the sum of each word times an odd weight that
depends on its position. Integer sums modulo 2**32 do not depend on the order of the
additions, so the fingerprint is the same however the array is sharded (a run may resume
on another mesh), and any change to a single word changes both sums. Each floating leaf
also reports whether all its values are finite.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from elc.host_memory import arrays_in_host_memory

Fingerprints = dict[str, dict[str, Any]]


def _words(x: jax.Array) -> jax.Array:
    """The raw bits of ``x`` as a flat uint32 vector."""
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    if x.dtype == jnp.bool_:
        return x.astype(jnp.uint32).reshape(-1)
    size = x.dtype.itemsize
    if size >= 4:  # 8-byte values become pairs of words
        return jax.lax.bitcast_convert_type(x, jnp.uint32).reshape(-1)
    narrow = {1: jnp.uint8, 2: jnp.uint16}[size]
    return jax.lax.bitcast_convert_type(x, narrow).astype(jnp.uint32).reshape(-1)


# Elements per block where the sums are taken block by block (the CPU backend).
_BLOCK = 1 << 20


def _blockwise_sums(flat: jax.Array, block_sums: Callable[[jax.Array, jax.Array], tuple]
                    ) -> tuple:
    """The sums ``block_sums(block, offset)`` (uint32 scalars) added over consecutive
    blocks of the flat array ``flat``, ``offset`` being the block's first index. Blocks
    are cut from the array as it is: a bit cast of the whole array would be a copy.

    XLA's CPU backend turns a long reduction into a tree of partial sums whose input it
    materialises: summing a weighted array in one go would hold two or three temporaries
    the size of the array (4.5 GB for a 2 GB train state), in the RAM the state lives
    in. Block by block the temporaries are one block's. Elsewhere the reduction fuses
    with its input and runs whole, where the array lives, however it is sharded.
    """
    size = flat.shape[0]
    if not arrays_in_host_memory() or size <= _BLOCK:
        return block_sums(flat, jnp.uint32(0))
    full = size // _BLOCK

    def add_block(index, totals):
        block = jax.lax.dynamic_slice(flat, (index * _BLOCK,), (_BLOCK,))
        offset = index.astype(jnp.uint32) * jnp.uint32(_BLOCK)
        return tuple(t + s for t, s in zip(totals, block_sums(block, offset)))

    totals = jax.lax.fori_loop(1, full, add_block, block_sums(flat[:_BLOCK], jnp.uint32(0)))
    if size > full * _BLOCK:
        tail = block_sums(flat[full * _BLOCK:], jnp.uint32(full * _BLOCK))
        totals = tuple(t + s for t, s in zip(totals, tail))
    return totals


def _word_sums(values: jax.Array, offset: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The sum of the raw words of ``values`` and of each word times its odd weight,
    2 * (its position in the whole array's words) + 1; ``offset`` counts values."""
    words = _words(values)
    per_value = words.shape[0] // max(values.size, 1)  # 2 for 8-byte values
    positions = jax.lax.iota(jnp.uint32, words.shape[0]) + offset * jnp.uint32(per_value)
    return (jnp.sum(words, dtype=jnp.uint32),
            jnp.sum(words * (positions * jnp.uint32(2) + jnp.uint32(1)), dtype=jnp.uint32))


def _non_finite_count(values: jax.Array, offset: jax.Array) -> tuple[jax.Array]:
    del offset  # a count does not depend on where the values are
    return (jnp.sum(~jnp.isfinite(values), dtype=jnp.uint32),)


def _leaf_fingerprint(x: jax.Array) -> dict[str, jax.Array]:
    flat = x.reshape(-1)
    total, weighted = _blockwise_sums(flat, _word_sums)
    result = {"sum": total, "weighted_sum": weighted}
    if jnp.issubdtype(x.dtype, jnp.floating):
        (non_finite,) = _blockwise_sums(flat, _non_finite_count)
        result["finite"] = non_finite == 0
    return result


@jax.jit
def _fingerprints(leaves: list[jax.Array]) -> list[dict[str, jax.Array]]:
    return [_leaf_fingerprint(leaf) for leaf in leaves]


def fingerprints(tree: Any) -> Fingerprints:
    """``{leaf path: {"sum", "weighted_sum"[, "finite"]}}`` for the arrays of ``tree``,
    as plain Python values (JSON-serialisable)."""
    paths, leaves = zip(*jax.tree_util.tree_flatten_with_path(tree)[0])
    values = jax.device_get(_fingerprints(list(leaves)))
    # "step", "trainable/adapters/vec/hidden_0/kernel": the same for a dataclass field
    # and a dict key, as a state restored without its abstract form is a dict.
    return {jax.tree_util.keystr(path, simple=True, separator="/"):
            {key: bool(v) if key == "finite" else int(np.uint32(v)) for key, v in leaf.items()}
            for path, leaf in zip(paths, values)}


def non_finite_leaves(prints: Fingerprints) -> list[str]:
    """The paths of the floating leaves that hold a NaN or an infinity."""
    return [path for path, leaf in prints.items() if not leaf.get("finite", True)]


def mismatches(saved: Fingerprints, restored: Fingerprints) -> list[str]:
    """What differs between the fingerprints recorded at save time and those of the
    restored arrays, one line per leaf (empty when they agree)."""
    problems = [f"{path}: missing from the restored state"
                for path in saved if path not in restored]
    problems += [f"{path}: not in the saved state" for path in restored if path not in saved]
    problems += [f"{path}: checksum differs" for path in saved
                 if path in restored and (saved[path]["sum"], saved[path]["weighted_sum"])
                 != (restored[path]["sum"], restored[path]["weighted_sum"])]
    return problems
