"""Runs one benchmark case in this process and prints its result as the last line.

  python -m elc.benchmarks.worker '{"kind": "train", "preset": "270m", ...}'

The accelerator suite starts one worker per case (see elc.benchmarks.suite), so each case
has the device to itself and its peak memory is its own. Kinds: ``ceilings``,
``correctness``, ``train``, ``decode`` (functions of elc.benchmarks.jax_cases) and ``plan``
(launch.plan's per-device memory of the same training case, on this host's CPU).
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any, Callable

RESULT_PREFIX = "BENCHMARK_RESULT "


def _plan(preset: str, rows: int, length: int, stage: str, attention: str = "xla",
          remat: str = "none") -> dict:
    from elc.benchmarks.jax_cases import case_config
    from elc.train.stage_program import memory_plan
    from elc.train.trainer import stages_from_config
    config = case_config(preset, rows, length, stage, attention, remat)
    return memory_plan(config, stages_from_config(config)[0])


def serve(kinds: dict[str, Callable[..., Any]]) -> None:
    """Runs the case given as JSON in ``sys.argv[1]`` ({'kind': one of ``kinds``, keyword
    arguments...}) and prints ``RESULT_PREFIX`` + {'result': ...} or {'error': ...}."""
    if len(sys.argv) != 2:
        sys.exit(f"usage: python -m {sys.modules['__main__'].__spec__.name} '<case as JSON>'")
    try:
        spec = json.loads(sys.argv[1])
        kind = spec.pop("kind")
        if kind not in kinds:
            raise ValueError(f"unknown benchmark kind {kind!r}; expected one of {sorted(kinds)}")
        out = {"result": kinds[kind](**spec)}
    except Exception as error:  # reported to the suite as this case's result
        traceback.print_exc()
        out = {"error": f"{type(error).__name__}: {error}"[:2000]}
    print(RESULT_PREFIX + json.dumps(out), flush=True)


if __name__ == "__main__":
    from elc.benchmarks import jax_cases
    serve({"ceilings": jax_cases.ceilings, "correctness": jax_cases.correctness,
           "train": jax_cases.train_speed, "decode": jax_cases.decode_speed, "plan": _plan})
