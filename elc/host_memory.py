"""How the process's C heap (glibc malloc) treats the large buffers of XLA's CPU runtime.

XLA on the CPU allocates each step's large temporaries with malloc and frees them at the
end of the step. glibc serves every block above its mmap threshold (at most 32 MiB) with
a fresh anonymous mapping, and worker threads get arenas whose heaps are too small for
such blocks, so they too are mapped afresh. The kernel then zeroes and faults in every
page of them again at every step: about a million page faults per training step of the
270M on 2 cores (see BENCHMARKS.md). Keeping large blocks in the main heap lets the next
step reuse the same pages.
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
# -1: the heap never shrinks on its own (malloc_trim still returns free pages).
_NEVER_TRIM = -1
DISABLE_ENV = "ELC_MALLOC_DEFAULTS"


def _libc_function(name: str):
    """``name`` from the process's C library, or None where it has none (not glibc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


def keep_large_buffers_in_heap() -> bool:
    """Serves all threads' allocations from the main heap and never with mmap, so that
    freed buffers are reused by the next step instead of being mapped and faulted in anew.

    Call before JAX starts its threads (the launchers do, on import of ``launch``). Set
    the environment variable ELC_MALLOC_DEFAULTS=1 to keep glibc's defaults. Returns
    whether the settings were applied (False off glibc or when disabled).
    """
    setting = os.environ.get(DISABLE_ENV, "0")
    if setting not in ("0", "1"):
        raise ValueError(f"{DISABLE_ENV}={setting!r}; expected 1 (keep glibc's defaults) or "
                         "0 (the launchers' heap settings)")
    if setting == "1":
        return False
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in (
        (_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER_TRIM)))


def release_freed_host_memory() -> None:
    """Hands the pages that malloc keeps after frees back to the OS (malloc_trim).

    Freed blocks stay in malloc's heap and stay resident; after a checkpoint save, whose
    writer allocates buffers of its own, this returns them before the next step's
    temporaries come on top. A no-op where the C library has no malloc_trim.
    """
    trim = _libc_function("malloc_trim")
    if trim is None:
        return
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)


def arrays_in_host_memory() -> bool:
    """Whether JAX's arrays live in host memory (its CPU backend), in the RAM that the
    C heap above also serves."""
    import jax  # here: the launchers import this module before JAX starts its threads

    return jax.default_backend() == "cpu"
