"""The launchers' heap settings: a large buffer freed and allocated again reuses its pages
instead of being mapped and faulted in anew (elc/host_memory.py)."""

import os
import subprocess
import sys

import pytest

from helpers import ROOT

# Allocates (with malloc, as XLA's CPU runtime does), touches and frees a 64 MiB buffer
# 5 times after a first round; prints the minor page faults of those 5 rounds.
_PROBE = """
import ctypes, resource
import launch
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def touch():
    size = 64 << 20
    buffer = libc.malloc(size)
    ctypes.memset(buffer, 1, size)
    libc.free(buffer)
touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    touch()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(**env) -> int:
    result = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, **env}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_freed_buffers_are_reused_without_page_faults():
    # 64 MiB is 16,384 pages: glibc's defaults map and fault them in every round.
    assert _faults(ELC_MALLOC_DEFAULTS="1") > 5 * 16_000
    assert _faults(ELC_MALLOC_DEFAULTS="0") < 1_000


def test_a_bad_switch_is_named():
    result = subprocess.run([sys.executable, "-c", "import launch"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "ELC_MALLOC_DEFAULTS": "yes"})
    assert result.returncode != 0
    assert "ELC_MALLOC_DEFAULTS='yes'; expected 1" in result.stderr
