"""Kill a training run with SIGKILL at random moments and check every resume is exact.

  python -m launch.kill_drill --config=configs/tiny_elm.py --workdir=/tmp/drill --kills=20 \
      -- --config.stage.adapter.steps=20 --config.stage.full.steps=20 \
      --config.train.checkpoint_every=5

Arguments after ``--`` go to ``launch.train`` as they are. First an uninterrupted
reference run (``WORKDIR/reference``), timed; then the drill (``WORKDIR/drill``): ``--kills``
distinct steps drawn at random over the run, in order; for each, the same command is
started (resuming from the last checkpoint) and killed with SIGKILL once it has logged
that step, after a further random fraction of a step's time (so kills land inside steps
and inside checkpoint writes too); then the run goes to the end. Every loss the drill
logged, for every step, each time it ran that step, must equal the reference's. Prints
one line per kill and a summary; exits non-zero when a resume differs or the final run
fails. Logs every step (``--config.train.log_every=1`` is added).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

from absl import app, flags

_CONFIG = flags.DEFINE_string("config", None, "Config file (configs/*.py), with any suffix.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Holds reference/ and drill/; replaced.")
_KILLS = flags.DEFINE_integer("kills", 20, "How many times the drill run is killed.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the random kill delays.")
flags.mark_flags_as_required(["config", "workdir"])


def _command(workdir: str, train_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "launch.train", f"--config={_CONFIG.value}",
            f"--workdir={workdir}", *train_args, "--config.train.log_every=1"]


def _losses(workdir: str) -> list[tuple[int, float]]:
    """Every (step, loss) the run logged, in order (a resumed run logs re-run steps again)."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.endswith("\n")]  # not one being written
    return [(r["step"], r["loss"]) for r in map(json.loads, lines) if "loss" in r]


def _run_to_end(workdir: str, train_args: list[str]) -> None:
    result = subprocess.run(_command(workdir, train_args), capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"launch.train failed in {workdir}:\n{result.stderr[-3000:]}")


def main(argv):
    train_args = argv[1:]
    reference, drill = (os.path.join(_WORKDIR.value, name) for name in ("reference", "drill"))
    for path in (reference, drill):
        shutil.rmtree(path, ignore_errors=True)
    start = time.time()
    _run_to_end(reference, train_args)
    duration = time.time() - start
    expected = dict(_losses(reference))
    print(f"reference: {len(expected)} steps in {duration:.0f}s")
    if _KILLS.value >= len(expected):
        raise app.UsageError(f"--kills={_KILLS.value} needs a run of more steps than "
                             f"{len(expected)}")
    step_seconds = duration / len(expected)
    rng = random.Random(_SEED.value)
    killed = 0
    for kill, step in enumerate(sorted(rng.sample(range(1, len(expected)), _KILLS.value)), 1):
        already = len(_losses(drill))
        process = subprocess.Popen(_command(drill, train_args), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        while process.poll() is None and not any(s >= step for s, _ in _losses(drill)[already:]):
            time.sleep(0.02)
        if process.poll() is None:
            time.sleep(rng.uniform(0.0, step_seconds))
            process.send_signal(signal.SIGKILL)
            process.wait()
            killed += 1
            outcome = "killed"
        else:
            outcome = f"ended by itself (exit {process.returncode})"
        logged = _losses(drill)[already:]
        print(f"kill {kill}, aimed just after step {step}: {outcome}; "
              f"this start ran steps {logged[0][0] if logged else '-'}..{logged[-1][0] if logged else '-'}")
    _run_to_end(drill, train_args)
    logged = _losses(drill)
    differing = [(step, loss) for step, loss in logged if loss != expected.get(step)]
    print(f"drill: killed {killed} times; {len(logged)} losses logged, {len(differing)} differ "
          f"from the reference; steps covered {len({s for s, _ in logged})}/{len(expected)}")
    if differing or {s for s, _ in logged} != set(expected):
        sys.exit(f"resumes are not exact: first differing (step, loss) {differing[:5]}")


if __name__ == "__main__":
    app.run(main)
