"""The accelerator suite: elc's training and decoding speed, memory and numerics on one
device, beside a peer measured in the same run, as one table and one JSON file.

Every case runs in its own process (``elc.benchmarks.worker`` for elc, the peer's own
module for the peer), so each starts on an empty device and a crash or an out-of-memory
case costs only its own row. Cases run in order of importance under a time budget;
those that no longer fit are listed as skipped. launch.plan's memory predictions for the
same training cases are compiled for the host CPU alongside, as launch.plan does.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import glob
import importlib.util
import json
import os
import subprocess
import sys
import time
from typing import Any, Callable, Sequence

from elc.benchmarks.flops import decode_bytes_per_step, mfu
from elc.benchmarks.worker import RESULT_PREFIX
from elc.distributed import accelerator_available
from elc.model.config import get_preset

ELC_WORKER = "elc.benchmarks.worker"
PEER_WORKER = "launch.peers.transformers_gemma3"
PEER_NAME = "transformers Gemma3ForCausalLM (torch.compile)"


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the suite measures.

    Attributes:
      presets: backbone presets (random init at their shapes).
      shapes: (rows, sequence length) of the training batches.
      stages: training stages ('adapter': frozen backbone; 'full': everything).
      attentions: attention implementations ('xla', 'cudnn').
      decode_batches: batch sizes of the decoding cases.
      prompt_length, new_tokens: of every decoded row.
      matmul_size, copy_mib: sizes of the ceiling measurements.
      correctness_shape: (rows, length) of the numerics check.
      train_steps: timed steps per training case.
      peer: whether the peer runs.
    """

    presets: tuple[str, ...]
    shapes: tuple[tuple[int, int], ...]
    stages: tuple[str, ...] = ("full", "adapter")
    attentions: tuple[str, ...] = ("xla", "cudnn")
    decode_batches: tuple[int, ...] = (1, 32, 256)
    prompt_length: int = 64
    new_tokens: int = 128
    matmul_size: int = 8192
    copy_mib: int = 2048
    correctness_shape: tuple[int, int] = (2, 256)
    train_steps: int = 10
    peer: bool = True


def default_settings(peer: bool) -> Settings:
    """The full-sized suite where a GPU or TPU and its JAX runtime are found (cuDNN
    attention and ``peer`` on a GPU only); tiny shapes that run in minutes elsewhere.
    Decided without initialising JAX, whose first use would claim the device memory
    that the cases' own processes need."""
    if accelerator_available():
        gpu = bool(glob.glob("/dev/nvidia[0-9]*"))
        return Settings(presets=("270m", "1b"), shapes=((16, 1024), (8, 2048)),
                        attentions=("xla", "cudnn") if gpu else ("xla",), peer=peer and gpu)
    return Settings(presets=("tiny",), shapes=((2, 32),), attentions=("xla",),
                    decode_batches=(1, 4), prompt_length=16, new_tokens=8, matmul_size=256,
                    copy_mib=8, correctness_shape=(2, 32), train_steps=3, peer=False)


def peer_available() -> bool:
    """Whether the peer's frameworks are importable here (checked without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers"))


@dataclasses.dataclass(frozen=True)
class Case:
    """One measurement: ``spec`` (kind + arguments) run by the module ``worker``."""

    name: str
    worker: str
    spec: dict
    host_only: bool = False  # compiled for the host CPU (launch.plan's figures)


def _shape_name(rows: int, length: int) -> str:
    return f"{rows}x{length}"


def cases(settings: Settings) -> list[Case]:
    """Every case, most telling first, so that a short budget still gives ratios:
    ceilings and numerics; then for each preset at the first batch shape, the full stage
    with the first attention (elc, then the peer), the frozen stage, decoding (elc, then
    the peer) and the other attentions; then the other batch shapes and the peer's frozen
    stage. launch.plan's predictions come last (they run on the host, alongside)."""
    out = [Case("ceilings", ELC_WORKER, {"kind": "ceilings", "matmul_size": settings.matmul_size,
                                         "copy_mib": settings.copy_mib}),
           Case("correctness", ELC_WORKER, {"kind": "correctness", "preset": settings.presets[0],
                                            "rows": settings.correctness_shape[0],
                                            "length": settings.correctness_shape[1]})]
    decode = {"batches": list(settings.decode_batches), "prompt_length": settings.prompt_length,
              "new_tokens": settings.new_tokens}

    def train(preset, rows, length, stage, attention):
        return Case(f"train/{preset}/{_shape_name(rows, length)}/{stage}/{attention}", ELC_WORKER,
                    {"kind": "train", "preset": preset, "rows": rows, "length": length,
                     "stage": stage, "attention": attention, "steps": settings.train_steps})

    def peer(preset, rows, length, stage):
        return Case(f"peer/{preset}/{_shape_name(rows, length)}/{stage}", PEER_WORKER,
                    {"kind": "train", "preset": preset, "rows": rows, "length": length,
                     "stage": stage, "steps": settings.train_steps})

    first_attention, other_attentions = settings.attentions[0], settings.attentions[1:]
    first_stage, other_stages = settings.stages[0], settings.stages[1:]
    later = []
    for preset in settings.presets:
        for index, (rows, length) in enumerate(settings.shapes):
            group = out if index == 0 else later
            group.append(train(preset, rows, length, first_stage, first_attention))
            if settings.peer:
                group.append(peer(preset, rows, length, first_stage))
            group += [train(preset, rows, length, stage, first_attention)
                      for stage in other_stages]
            if index == 0:
                out.append(Case(f"decode/{preset}", ELC_WORKER,
                                {"kind": "decode", "preset": preset, **decode}))
                if settings.peer:
                    out.append(Case(f"peer_decode/{preset}", PEER_WORKER,
                                    {"kind": "decode", "preset": preset, **decode}))
            group += [train(preset, rows, length, stage, attention)
                      for stage in settings.stages for attention in other_attentions]
            if settings.peer:
                later += [peer(preset, rows, length, stage) for stage in other_stages]
    # launch.plan compiles for the host CPU, which has no cuDNN kernels: it plans each
    # training case once, with XLA attention.
    plans = [Case(f"plan/{c.spec['preset']}/{_shape_name(c.spec['rows'], c.spec['length'])}/"
                  f"{c.spec['stage']}", ELC_WORKER,
                  {**{k: v for k, v in c.spec.items() if k != "steps"}, "kind": "plan",
                   "attention": "xla"}, host_only=True)
             for c in out + later if c.name.startswith("train/")
             and c.spec["attention"] == first_attention]
    return out + later + plans


def run_case(case: Case, timeout_s: float) -> dict[str, Any]:
    """Runs ``case`` in a fresh process; {'result': ...} or {'error': ...}, plus 'seconds'."""
    env = dict(os.environ)
    if case.host_only:
        env["JAX_PLATFORMS"] = "cpu"
    else:
        # One case owns the device at a time: let JAX take nearly all of it (its default
        # pool of 75% would fail cases that fit the card).
        env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.95")
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", case.worker, json.dumps(case.spec)],
                              capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s",
                "seconds": time.perf_counter() - start}
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if lines:
        out = json.loads(lines[-1][len(RESULT_PREFIX):])
    else:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        out = {"error": f"exit code {done.returncode}: " + " | ".join(tail)}
    out["seconds"] = time.perf_counter() - start
    return out


def run_suite(settings: Settings, budget_s: float, out_path: str | None,
              case_timeout_s: float = 300.0, log: Callable[[str], None] = print) -> dict:
    """Runs every case of ``settings`` within ``budget_s`` seconds; writes the results to
    ``out_path`` (JSON) after each case, so a killed run keeps what it measured."""
    import jax  # imported for its version only: the cases' processes own the device
    report = {"backend": "?", "device": "?", "jax": jax.__version__,
              "date": time.strftime("%Y-%m-%d"), "settings": dataclasses.asdict(settings),
              "cases": {}}
    start = time.perf_counter()
    todo = cases(settings)
    host = [c for c in todo if c.host_only]
    device = [c for c in todo if not c.host_only]

    def save():
        if out_path:
            temporary = out_path + ".tmp"
            with open(temporary, "w") as f:
                json.dump(report, f, indent=1, allow_nan=False, default=str)
            os.replace(temporary, out_path)

    def record(case: Case, result: dict):
        report["cases"][case.name] = {"spec": case.spec, **result}
        if case.name == "ceilings" and "result" in result:
            report["backend"] = result["result"]["backend"]
            report["device"] = result["result"]["device"]
        state = ("error: " + result["error"][:300]) if "error" in result else "ok"
        log(f"[{time.perf_counter() - start:6.0f} s] {case.name}: {state} "
            f"({result.get('seconds', 0):.0f} s)")
        save()

    def remaining() -> float:
        return budget_s - (time.perf_counter() - start)

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        # launch.plan compiles on the host CPU, so it runs while the device cases do.
        futures = {}
        for case in host:
            futures[pool.submit(lambda c=case: run_case(c, min(case_timeout_s, remaining())))] = case
        for case in device:
            if remaining() < 10:
                record(case, {"skipped": "time budget used up"})
                continue
            record(case, run_case(case, min(case_timeout_s, remaining())))
        for future, case in futures.items():
            try:
                result = future.result(timeout=max(remaining(), 1))
            except concurrent.futures.TimeoutError:
                result = {"skipped": "time budget used up"}
            record(case, result)
        if remaining() <= 1:
            pool.shutdown(wait=False, cancel_futures=True)
    report["seconds"] = time.perf_counter() - start
    save()
    return report


def _result(report: dict, name: str) -> Any:
    return report["cases"].get(name, {}).get("result")


def _fmt(value: float | None, spec: str = ".0f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def summary(report: dict) -> str:
    """The report as markdown tables: ceilings, numerics, training, decoding, failures."""
    lines = [f"device: {report['device']} ({report['backend']}), jax {report['jax']}, "
             f"{report['date']}; peer: {PEER_NAME if report['settings']['peer'] else 'off'}"]
    ceilings = _result(report, "ceilings") or {}
    peak, bandwidth = ceilings.get("matmul_flops"), ceilings.get("copy_bytes_per_second")
    lines += ["", f"bf16 matmul {_fmt(peak and peak / 1e12, '.3g')} TFLOP/s "
              f"({ceilings.get('matmul_size', '?')}^3); copy "
              f"{_fmt(bandwidth and bandwidth / 1e12, '.3g')} TB/s (read + write)"]
    numerics = _result(report, "correctness")
    if numerics:
        lines.append("numerics: logits rel. error vs float32 on the host "
                     f"{numerics['logits_rel_error']:.2e}; cuDNN vs XLA attention "
                     f"{_fmt(numerics.get('cudnn_vs_xla_rel_error'), '.2e')}; train-step loss "
                     f"{numerics['device_train_loss']:.4f} on the device vs "
                     f"{numerics['host_loss']:.4f} on the host")
    lines += ["", "| model | batch | stage | attention | tokens/s | MFU | peak GiB | plan GiB | "
              "peak / plan | peer tokens/s | elc / peer | stage 1 / stage 2 |",
              "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, entry in report["cases"].items():
        if not name.startswith("train/"):
            continue
        _, preset, shape, stage, attention = name.split("/")
        result = entry.get("result")
        rows, length = (int(x) for x in shape.split("x"))
        speed = result and result["tokens_per_second"]
        used = result and result["peak_bytes"]
        plan = _result(report, f"plan/{preset}/{shape}/{stage}")
        peer = _result(report, f"peer/{preset}/{shape}/{stage}")
        full = _result(report, f"train/{preset}/{shape}/full/{attention}")
        frozen_ratio = _ratio(speed, full and full["tokens_per_second"]) \
            if stage == "adapter" else None
        utilisation = speed and peak and mfu(speed, get_preset(preset), length, peak)
        status = "" if result else f" ({entry.get('error') or entry.get('skipped')})"[:80]
        lines.append(
            f"| {preset} | {shape} | {stage} | {attention}{status} | {_fmt(speed)} | "
            f"{_fmt(utilisation and 100 * utilisation, '.1f', '%')} | "
            f"{_fmt(used and used / 2**30, '.1f')} | {_fmt(plan and plan['total'] / 2**30, '.1f')} | "
            f"{_fmt(_ratio(used, plan and plan['total']), '.2f')} | "
            f"{_fmt(peer and peer['tokens_per_second'])} | "
            f"{_fmt(_ratio(speed, peer and peer['tokens_per_second']), '.2f', 'x')} | "
            f"{_fmt(frozen_ratio, '.2f', 'x')} |")
    lines += ["", "| model | decode batch | tokens/s | HBM floor tokens/s | of floor | "
              "peer tokens/s | elc / peer |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    settings = report["settings"]
    for preset in settings["presets"]:
        ours = {r["batch"]: r for r in _result(report, f"decode/{preset}") or []}
        theirs = {r["batch"]: r for r in _result(report, f"peer_decode/{preset}") or []}
        for batch in settings["decode_batches"]:
            speed = ours.get(batch, {}).get("tokens_per_second")
            floor = None
            if bandwidth:
                context = settings["prompt_length"] + settings["new_tokens"] // 2
                floor = batch * bandwidth / decode_bytes_per_step(get_preset(preset), batch,
                                                                  context)
            peer = theirs.get(batch, {}).get("tokens_per_second")
            lines.append(f"| {preset} | {batch} | {_fmt(speed)} | {_fmt(floor)} | "
                         f"{_fmt(_ratio(speed, floor) and 100 * _ratio(speed, floor), '.1f', '%')}"
                         f" | {_fmt(peer)} | {_fmt(_ratio(speed, peer), '.2f', 'x')} |")
    failed = [(n, e.get("error") or e.get("skipped")) for n, e in report["cases"].items()
              if "result" not in e]
    if failed:
        lines += ["", "Not measured:"] + [f"- {name}: {why}" for name, why in failed]
    return "\n".join(lines)


def parse_shapes(text: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """['16x1024', ...] -> ((16, 1024), ...), with an error naming a malformed entry."""
    shapes = []
    for item in text:
        try:
            rows, length = (int(x) for x in item.lower().split("x"))
        except ValueError:
            raise ValueError(f"batch shape {item!r} is not ROWSxLENGTH, e.g. 16x1024") from None
        if rows < 1 or length < 2:
            raise ValueError(f"batch shape {item!r} needs rows >= 1 and length >= 2")
        shapes.append((rows, length))
    return tuple(shapes)
