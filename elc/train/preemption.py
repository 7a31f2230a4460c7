"""Turns SIGTERM (a TPU or cluster preemption notice) into a checkpoint and a clean exit.

The signal only sets a flag; the trainer asks at every step boundary whether any
process has seen it, so all hosts stop after the same step and save together.
"""

from __future__ import annotations

import signal

import jax
import numpy as np
from jax.experimental import multihost_utils


class PreemptionWatch:
    """Installs a SIGTERM handler for its lifetime (use as a context manager)."""

    def __init__(self):
        self._requested = False
        self._previous = None

    def __enter__(self) -> "PreemptionWatch":
        self._previous = signal.signal(signal.SIGTERM, self._on_signal)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGTERM, self._previous)

    def _on_signal(self, signum, frame) -> None:
        del signum, frame
        self._requested = True

    def should_stop(self) -> bool:
        """True on every process once any process received SIGTERM."""
        if jax.process_count() == 1:
            return self._requested
        flags = multihost_utils.process_allgather(np.asarray(self._requested, np.int32))
        return bool(np.any(flags))
