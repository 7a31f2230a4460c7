"""What the trainer does about a step whose loss or gradient norm is NaN or infinite.

Two modes (``train.nonfinite_updates``):
  stop  the run ends with an error naming the step, before a checkpoint of the bad state
        can be written. The check waits for a step's result only once the next step has
        been dispatched, so that the devices never idle for it.
  skip  the train step itself leaves the parameters and optimizer state as they were
        (elc/train/step.py, metric ``skipped_update``); the guard counts and reports it.
"""

from __future__ import annotations

import jax
import numpy as np
from absl import logging

NONFINITE_MODES = ("stop", "skip")


class NonFiniteGuard:
    """Checks each step's metrics; ``skipped`` counts the updates skipped so far."""

    def __init__(self, mode: str, skipped: int = 0):
        if mode not in NONFINITE_MODES:
            raise ValueError(f"train.nonfinite_updates must be one of {NONFINITE_MODES}, "
                             f"got {mode!r}")
        self.mode = mode
        self.skipped = skipped
        self._pending: tuple[int, dict] | None = None

    def after_step(self, step: int, metrics: dict) -> None:
        """Called with each step's (device) metrics right after it is dispatched."""
        if self.mode == "skip":
            if int(jax.device_get(metrics["skipped_update"])):
                self.skipped += 1
                logging.warning("step %d: NaN or infinite loss or gradient norm; update "
                                "skipped (%d so far)", step, self.skipped)
            return
        self.flush()
        self._pending = (step, metrics)

    def flush(self) -> None:
        """Checks the step still waiting (call before the state is saved or the stage ends)."""
        if self._pending is None:
            return
        step, metrics = self._pending
        self._pending = None
        loss, grad_norm = jax.device_get((metrics["loss"], metrics["grad_norm"]))
        if not (np.isfinite(loss) and np.isfinite(grad_norm)):
            raise FloatingPointError(
                f"step {step}: the loss is {float(loss)} and the gradient norm "
                f"{float(grad_norm)}; the run stops without saving this state. Lower the "
                "learning rate or check the data, or set --config.train.nonfinite_updates=skip "
                "to skip such updates")
