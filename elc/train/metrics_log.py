"""Training metrics to JSONL, TensorBoard event files and a console progress line."""

from __future__ import annotations

import json
import math
import os
import time

from absl import logging


def _format_duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


class MetricsLog:
    """Writes ``{step, stage, **metrics}`` lines to ``metrics.jsonl`` (a NaN or infinite
    value as null) and scalars to TensorBoard under ``tensorboard/``, both in ``workdir``;
    only when ``enabled`` (process 0 of a multi-host run)."""

    def __init__(self, workdir: str, *, enabled: bool = True):
        self.enabled = enabled
        self._jsonl = None
        self._tensorboard = None
        if enabled:
            from tensorboardX import SummaryWriter  # imported lazily: pulls in protobuf stubs
            os.makedirs(workdir, exist_ok=True)
            self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a", buffering=1)
            self._tensorboard = SummaryWriter(os.path.join(workdir, "tensorboard"))

    def write(self, step: int, stage: str, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        values = {k: float(v) for k, v in metrics.items()}
        # JSON has no NaN or infinity: such values are written as null.
        record = {"step": step, "stage": stage,
                  **{k: v if math.isfinite(v) else None for k, v in values.items()}}
        self._jsonl.write(json.dumps(record, allow_nan=False) + "\n")
        for name, value in metrics.items():
            self._tensorboard.add_scalar(name, float(value), step)

    def close(self) -> None:
        if self.enabled:
            self._jsonl.close()
            self._tensorboard.close()


def stage_end_evals(workdir: str) -> dict[str, dict[str, float]]:
    """Stage name -> the held-out metrics logged at the end of that stage in
    ``workdir/metrics.jsonl`` (``eval/...`` keys without the prefix); empty without a log.
    A stage's last evaluation is its end: evaluations inside a stage come before it, and
    a resumed run appends."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return {}
    ends: dict[str, tuple[int, dict[str, float]]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            evals = {k[len("eval/"):]: v for k, v in record.items() if k.startswith("eval/")}
            if evals and record["step"] >= ends.get(record["stage"], (-1, {}))[0]:
                ends[record["stage"]] = (record["step"], evals)
    return {stage: evals for stage, (_, evals) in ends.items()}


class Progress:
    """A console line per report: step, percentage, rate and ETA of the whole run."""

    def __init__(self, total_steps: int, start_step: int):
        self.total = total_steps
        self._start_step = start_step
        self._start_time = time.time()

    def report(self, step: int, stage: str, metrics: dict[str, float]) -> None:
        elapsed = time.time() - self._start_time
        done = step - self._start_step
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        shown = " ".join(f"{k} {float(v):.4g}" for k, v in metrics.items())
        logging.info("[%s] step %d/%d (%.0f%%) %s | %.2f steps/s ETA %s", stage, step, self.total,
                     100.0 * step / self.total, shown, rate,
                     _format_duration(eta) if rate > 0 else "?")
