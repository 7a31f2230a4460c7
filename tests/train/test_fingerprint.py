"""Checkpoint fingerprints: checksums of an array's raw bits, against numpy's."""

import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np

from elc.train.fingerprint import fingerprints, mismatches, non_finite_leaves

from helpers import ROOT, fake_devices_env


def numpy_checksums(array: np.ndarray) -> dict:
    """The fingerprint's two sums, computed in numpy with 64-bit integers."""
    words = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint32).astype(np.uint64)
    weights = 2 * np.arange(words.size, dtype=np.uint64) + 1
    return {"sum": int(words.sum() % 2**32), "weighted_sum": int((words * weights % 2**32).sum() % 2**32)}


def test_sums_match_numpy_and_name_each_leaf():
    values = np.random.default_rng(0).normal(size=(37, 11)).astype(np.float32)
    prints = fingerprints({"a": {"kernel": jnp.asarray(values)}, "step": jnp.asarray(7, jnp.int32)})
    assert set(prints) == {"a/kernel", "step"}
    kernel = prints["a/kernel"]
    assert {k: kernel[k] for k in ("sum", "weighted_sum")} == numpy_checksums(values)
    assert kernel["finite"] is True
    assert prints["step"] == {"sum": 7, "weighted_sum": 7}  # integers carry no "finite"


def test_one_flipped_bit_or_two_swapped_values_change_the_fingerprint():
    values = np.arange(64, dtype=np.float32)
    flipped = values.copy()
    flipped.view(np.uint32)[40] ^= 1 << 3
    swapped = values.copy()
    swapped[[3, 9]] = swapped[[9, 3]]
    saved = fingerprints({"w": jnp.asarray(values)})
    assert mismatches(saved, fingerprints({"w": jnp.asarray(values)})) == []
    assert mismatches(saved, fingerprints({"w": jnp.asarray(flipped)})) == ["w: checksum differs"]
    # A swap keeps the plain sum; the position-weighted one sees it.
    swapped_prints = fingerprints({"w": jnp.asarray(swapped)})
    assert swapped_prints["w"]["sum"] == saved["w"]["sum"]
    assert mismatches(saved, swapped_prints) == ["w: checksum differs"]
    assert mismatches(saved, fingerprints({"v": jnp.asarray(values)})) == [
        "w: missing from the restored state", "v: not in the saved state"]


def test_narrow_dtypes_and_non_finite_values():
    half = np.array([1.5, -2.0, 3.25], np.float16)
    prints = fingerprints({"h": jnp.asarray(half), "bad": jnp.asarray([1.0, np.nan]),
                           "inf": jnp.asarray([np.inf], jnp.bfloat16)})
    bits = half.view(np.uint16).astype(np.uint64)
    assert prints["h"]["sum"] == int(bits.sum())
    assert prints["h"]["weighted_sum"] == int((bits * np.array([1, 3, 5])).sum())
    assert non_finite_leaves(prints) == ["bad", "inf"]


def test_arrays_longer_than_a_block_are_summed_whole():
    # On the CPU the sums are taken block by block (2**20 values); the blocks, the last
    # partial one included, must add up to the whole array's sums and finiteness.
    values = np.random.default_rng(2).normal(size=(2 * 2**20 + 4097,)).astype(np.float32)
    prints = fingerprints({"w": jnp.asarray(values)})
    assert {k: prints["w"][k] for k in ("sum", "weighted_sum")} == numpy_checksums(values)
    for position in (2**20 + 5, values.size - 1):  # a middle block, the tail
        spoiled = values.copy()
        spoiled[position] = np.inf
        assert non_finite_leaves(fingerprints({"w": jnp.asarray(spoiled)})) == ["w"]


def test_the_same_array_sharded_differently_has_the_same_fingerprint():
    # Sums modulo 2**32 do not depend on the order of additions: a run may resume on
    # another mesh and still check its checkpoint.
    program = textwrap.dedent("""
        import jax, numpy as np
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
        from elc.train.fingerprint import fingerprints
        values = np.random.default_rng(1).normal(size=(64, 48)).astype(np.float32)
        mesh = Mesh(np.array(jax.devices()).reshape(4, 2), ("a", "b"))  # as elc's meshes
        # 2 x 2**20 + 4096 values: two whole blocks and a partial one.
        large = np.random.default_rng(2).normal(size=(2052, 1024)).astype(np.float32)
        prints = [fingerprints({"x": jax.device_put(values, NamedSharding(mesh, spec)),
                                "large": jax.device_put(large, NamedSharding(mesh, spec))})
                  for spec in (P(), P("a", "b"), P("b", "a"), P(None, ("a", "b")))]
        assert all(p == prints[0] for p in prints), prints
        print("same")
    """)
    env = dict(fake_devices_env(8), JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "same" in result.stdout, result.stderr[-3000:]
