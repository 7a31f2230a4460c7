"""The training suite: the old train step against each new path, in one process, on the
same data, with the config's real backbone.

Paths, each for stage 1 (adapters) and stage 2 (everything):

- ``old``: logits at every position of padded rows (``full_logits_statistics``), one
  example per row: the step before target-only logits and packing existed;
- ``target``: logits at target positions only, in chunks (``target_statistics``), one
  example per row;
- ``packed``: ``target`` with up to ``examples_per_row`` examples packed into each row;
- ``lora`` (stage 2 only): ``packed`` with the backbone frozen and LoRA pairs on the
  attention kernels trained beside the adapters.

Every path starts from the same parameters and reads the train examples in the same
seeded order; the first step (compilation included) is timed apart, then ``steps``
steps are timed, the paths of a stage taking turns step by step so that a machine whose
speed drifts slows them alike. Examples/s and target tokens/s count what the timed steps
consumed (batches are prepared outside the timed span).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import flax.linen as nn
import jax
from absl import logging

from elc.data.input_pipeline import build_input_pipeline
from elc.data.iterator import BatchIterator
from elc.data.packing import row_layout
from elc.sharding import rows_per_batch_shard
from elc.train.build import Stage, state_factory
from elc.train.default_config import lora_config
from elc.train.lora import LoraConfig
from elc.train.optimizer import learning_rate_schedule
from elc.train.step import make_train_step
from elc.train.token_statistics import config_statistics, full_logits_statistics
from elc.train.trainer import initial_params, setup_run


@dataclasses.dataclass(frozen=True)
class TrainingPath:
    """One way of running a stage's step (see the module docstring)."""

    name: str
    full_logits: bool
    examples_per_row: int
    lora: bool = False


def training_paths(examples_per_row: int) -> tuple[TrainingPath, ...]:
    return (TrainingPath("old", True, 1), TrainingPath("target", False, 1),
            TrainingPath("packed", False, examples_per_row),
            TrainingPath("lora", False, examples_per_row, lora=True))


def _lora_stage(stage: Stage, rank: int) -> Stage:
    """``stage`` training the adapters and rank-``rank`` LoRA pairs on the attention
    kernels (the default targets), the backbone frozen."""
    defaults = lora_config()
    return dataclasses.replace(stage, trainable=("adapters/.*",), lora=LoraConfig(
        rank=rank, alpha=defaults.alpha, dropout=0.0, targets=tuple(defaults.targets)))


def run_training_suite(config, steps: int, examples_per_row: int,
                       lora_rank: int = 8) -> list[dict[str, Any]]:
    """One row per (stage, path): seconds of the first step, and of the timed steps,
    examples and target tokens they consumed, their rates and packing efficiency."""
    if steps < 1 or examples_per_row < 2:
        raise ValueError(f"need steps >= 1 and examples_per_row >= 2, got {steps} and "
                         f"{examples_per_row}")
    run = setup_run(config)
    tokenizer, soft = run.backbone.tokenizer, config.model.adapter.num_soft_tokens
    # Pipeline per examples_per_row, layout per (examples_per_row, rows sharing the target
    # bound), each measured once for every stage. The old path takes no target positions,
    # so its rows are never grouped (no group closes early on it).
    pipelines, layouts, path_inputs = {}, {}, {}
    for path in training_paths(examples_per_row):
        if path.examples_per_row not in pipelines:
            data = config.data.copy_and_resolve_references()
            data.examples_per_row = path.examples_per_row
            pipelines[path.examples_per_row] = (data, build_input_pipeline(data, tokenizer, soft))
        data, pipeline = pipelines[path.examples_per_row]
        group = 1 if path.full_logits else rows_per_batch_shard(run.mesh, data.batch_size)
        if (path.examples_per_row, group) not in layouts:
            layouts[path.examples_per_row, group] = row_layout(
                data, pipeline.train, pipeline.encoder, "train examples", group)
        path_inputs[path] = (data, pipeline, layouts[path.examples_per_row, group])
    results = []
    with jax.set_mesh(run.mesh), nn.logical_axis_rules(run.rules):
        params = initial_params(run, jax.random.key(config.train.seed))
        run.backbone = None
        for index, stage in enumerate(run.stages[:2]):
            runners = {}
            for path in training_paths(examples_per_row):
                if path.lora and index == 0:
                    continue
                data, pipeline, layout = path_inputs[path]
                batches = BatchIterator(pipeline.train, pipeline.encoder,
                                        batch_size=data.batch_size, seed=data.seed,
                                        layout=layout)
                statistics = (full_logits_statistics if path.full_logits
                              else config_statistics(config.train))
                runners[path] = _PathRunner(
                    run.elm, _lora_stage(stage, lora_rank) if path.lora else stage, params,
                    batches, statistics)
            # Round-robin, one step per path at a time: a machine whose speed drifts
            # (a shared VM) slows every path alike, so the ratios hold.
            for _ in range(steps):
                for runner in runners.values():
                    runner.timed_step()
            for path, runner in runners.items():
                layout = path_inputs[path][2]
                row = runner.result()
                row.update(stage=stage.name, path=path.name,
                           group_target_tokens=layout.group_target_tokens,
                           group_rows=layout.group_rows)
                logging.info("%s %s: %.2f examples/s", stage.name, path.name,
                             row["examples_per_second"])
                results.append(row)
            del runners
    return results


class _PathRunner:
    """One path's state and compiled step; the first step (compilation included) runs
    and is timed on construction, each ``timed_step`` adds to the path's totals."""

    def __init__(self, elm, stage: Stage, params, batches: BatchIterator, statistics):
        new_state, optimizer = state_factory(stage, 0)
        self._state = jax.jit(new_state)(params, jax.random.key_data(jax.random.key(2)))
        self._step = jax.jit(make_train_step(
            elm, optimizer, learning_rate_schedule(stage.optimizer), 0,
            statistics=statistics, lora=stage.lora), donate_argnums=0)
        self._batches = batches
        start = time.perf_counter()
        self._state, metrics = self._step(self._state, next(batches))
        jax.block_until_ready(metrics)
        self._first = time.perf_counter() - start
        self._steps, self._seconds = 0, 0.0
        self._examples = self._tokens = self._real = self._slots = 0
        self._loss = float(metrics["loss"])

    def timed_step(self) -> None:
        batch = next(self._batches)
        start = time.perf_counter()
        self._state, metrics = self._step(self._state, batch)
        jax.block_until_ready(metrics)
        self._seconds += time.perf_counter() - start
        self._steps += 1
        self._examples += int(batch["segment_ids"].max(axis=1).sum())
        self._tokens += int(batch["loss_mask"].sum())
        self._real += int(batch["input_mask"].sum())
        self._slots += batch["input_mask"].size
        self._loss = float(metrics["loss"])

    def result(self) -> dict[str, Any]:
        seconds = self._seconds
        return {"first_step_s": self._first, "step_s": seconds / self._steps,
                "examples": self._examples, "target_tokens": self._tokens,
                "examples_per_second": self._examples / seconds,
                "target_tokens_per_second": self._tokens / seconds,
                "packing_efficiency": self._real / self._slots, "loss": self._loss}


def target_bound(result: dict[str, Any]) -> str:
    """A path's target positions: "K" per row, or "K / g rows" for a group of g."""
    bound, rows = result["group_target_tokens"], result["group_rows"]
    return str(bound) if rows == 1 else f"{bound} / {rows} rows"


def training_table(results: list[dict[str, Any]]) -> str:
    """Markdown: one line per (stage, path) with its ratio to the stage's ``old`` path,
    and for ``lora`` to the stage's ``packed`` (full fine-tuning) path as well."""
    lines = ["| stage | path | s/step | examples/s | target tokens/s | packing | target bound "
             "| vs old | vs packed full |", "|---|---|---|---|---|---|---|---|---|"]
    by_key = {(r["stage"], r["path"]): r for r in results}
    for r in results:
        old = by_key.get((r["stage"], "old"))
        packed = by_key.get((r["stage"], "packed"))
        ratio = lambda base: f"{r['examples_per_second'] / base['examples_per_second']:.2f}x"
        lines.append(
            f"| {r['stage']} | {r['path']} | {r['step_s']:.2f} | {r['examples_per_second']:.2f} "
            f"| {r['target_tokens_per_second']:.0f} | {r['packing_efficiency']:.2f} "
            f"| {'all' if r['path'] == 'old' else target_bound(r)} "
            f"| {ratio(old) if old else '-'} "
            f"| {ratio(packed) if packed and r['path'] == 'lora' else '-'} |")
    return "\n".join(lines)
