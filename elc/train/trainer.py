"""The ELM training loop: stages run one after another, resumable at any checkpoint.

A run is described by a config (see configs/tiny_elm.py). Stage 1 typically trains the
adapters with the backbone frozen, stage 2 everything (or a regex-selected subset). The
global step counts across stages; the checkpoint records the stage and the position of
the data iterator, so a run that is killed continues exactly where its last checkpoint was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import time
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from absl import logging
from flax.core import meta
from jax.experimental.multihost_utils import process_allgather
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from elc.checkpoints.backbone import Backbone, load_backbone
from elc.data.iterator import BatchIterator
from elc.data.swapped_vectors import with_swapped_vectors
from elc.model.elm import ELM, init_adapters
from elc.sharding import (Rules, batch_sharding, global_batch, logical_rules, make_mesh, put_sharded,
                          rows_per_batch_shard, tree_shardings)
from elc.host_memory import arrays_in_host_memory, release_freed_host_memory
from elc.train.checkpointing import Checkpointer
from elc.train.config_check import check_run_config
from elc.train.workdir_lock import workdir_lock
from elc.data.input_pipeline import InputPipeline, build_input_pipeline
from elc.data.packing import RowLayout, row_layout
from elc.train.metrics_log import MetricsLog, Progress
from elc.train.nonfinite_guard import NonFiniteGuard
from elc.train.adapter_alignment import align_adapters
from elc.train.build import (AbstractState, Stage, abstract_params, abstract_train_state,
                             build_elm, stages_from_config, state_factory)
from elc.train.optimizer import learning_rate_schedule
from elc.train.partition import merge_params
from elc.train.preemption import PreemptionWatch
from elc.train.step import make_eval_step, make_train_step
from elc.train.token_statistics import config_statistics


def _evaluate(eval_step, params, run: "Run", config) -> dict[str, float]:
    """Held-out loss, token accuracy and exact match over ``train.max_eval_batches``, and
    ``eval/vector_gain``: how much higher the loss is when the examples of a batch are
    given each other's vectors (elc/data/swapped_vectors.py); about 0 for a model that
    does not read its vectors."""
    # Shuffled with a fixed seed: the first max_eval_batches are then the same sample at
    # every evaluation, drawn across all tasks of an eval file grouped by task.
    pipeline, mesh = run.pipeline, run.mesh
    iterator = BatchIterator(pipeline.eval, pipeline.encoder, batch_size=config.data.eval_batch_size,
                             seed=0, shuffle=True, num_epochs=1, layout=run.eval_layout,
                             process_index=jax.process_index(), process_count=jax.process_count())
    totals: dict[str, float] = {}
    swapped_loss = 0.0
    for index, batch in enumerate(iterator):
        if index >= config.train.max_eval_batches:
            break
        for key, value in jax.device_get(eval_step(params, global_batch(batch, mesh))).items():
            totals[key] = totals.get(key, 0.0) + float(value)
        swapped = eval_step(params, global_batch(with_swapped_vectors(batch), mesh))
        swapped_loss += float(jax.device_get(swapped["loss_sum"]))
    tokens, examples = max(totals["tokens"], 1.0), max(totals["examples"], 1.0)
    return {"eval/loss": totals["loss_sum"] / tokens,
            "eval/token_accuracy": totals["correct"] / tokens,
            "eval/exact_match": totals["exact"] / examples,
            "eval/vector_gain": (swapped_loss - totals["loss_sum"]) / tokens}


class _Window:
    """Throughput between two log lines, over all processes (each sees its rows only)."""

    def __init__(self):
        self.start, self.steps, self.tokens, self.slots, self.examples = time.time(), 0, 0, 0, 0

    def add(self, local: dict) -> None:
        self.steps += 1
        self.tokens += int(local["input_mask"].sum()) * jax.process_count()
        self.slots += int(local["input_mask"].size) * jax.process_count()
        # Segments are numbered 1, 2, ... in each row, so a row's largest is its count.
        self.examples += int(local["segment_ids"].max(axis=1).sum()) * jax.process_count()

    def rates(self) -> dict[str, float]:
        elapsed = max(time.time() - self.start, 1e-9)
        return {"step_time": elapsed / self.steps, "tokens_per_second": self.tokens / elapsed,
                "examples_per_second": self.examples / elapsed,
                "packing_efficiency": self.tokens / self.slots}


@dataclasses.dataclass
class Run:
    """What a config describes, built once: the model, the data, the stages and the mesh.

    Attributes:
      backbone: the loaded backbone (its params are the starting point of training); the
        trainer drops it once they are on the devices.
      pipeline: spaces, encoder, train and eval examples.
      data_config: the config's ``data`` section.
      elm: the model.
      stages: the stages in order; ``boundaries[i]`` is the global step where stage ``i``
        starts and ``boundaries[i + 1]`` where it ends.
      mesh, rules: the device mesh and the logical axis rules.
      abstract_params: parameter shapes boxed with their logical names.
      adapter_config: the config's ``model.adapter`` section.
    """

    backbone: Backbone | None
    pipeline: InputPipeline
    data_config: Any
    elm: ELM
    stages: list[Stage]
    boundaries: list[int]
    mesh: Mesh
    rules: Rules
    abstract_params: dict
    adapter_config: Any

    # Measured on first use only: sampling and evaluation never batch training rows.
    @functools.cached_property
    def train_layout(self) -> RowLayout:
        """How the train examples fill rows (packing, the target bound)."""
        return row_layout(self.data_config, self.pipeline.train, self.pipeline.encoder,
                          "train examples",
                          rows_per_batch_shard(self.mesh, self.data_config.batch_size))

    @functools.cached_property
    def eval_layout(self) -> RowLayout:
        """How the eval examples fill rows."""
        return row_layout(self.data_config, self.pipeline.eval, self.pipeline.encoder,
                          "eval examples",
                          rows_per_batch_shard(self.mesh, self.data_config.eval_batch_size))


def setup_run(config) -> Run:
    """Loads the backbone and the data of ``config`` and builds the ELM, stages and mesh."""
    backbone = load_backbone(config.backbone)
    if backbone.tokenizer is None:
        raise ValueError("the backbone has no tokenizer; set config.backbone.tokenizer")
    pipeline = build_input_pipeline(config.data, backbone.tokenizer,
                                    config.model.adapter.num_soft_tokens)
    elm = build_elm(config, backbone.config, backbone.params["embedder"]["embedding"])
    stages = stages_from_config(config)
    mesh = make_mesh(config.mesh)
    batch_rows = mesh.shape["data"] * mesh.shape["fsdp"]
    for name in ("batch_size", "eval_batch_size"):
        if config.data[name] % batch_rows:
            raise ValueError(f"data.{name}={config.data[name]} must be a multiple of the "
                             f"mesh's data x fsdp = {batch_rows}")
    # Outside the mesh: Flax would otherwise apply sharding constraints while tracing the
    # init, which it gets wrong for rematerialised layers inside a scan.
    return Run(backbone, pipeline, config.data, elm, stages,
               np.cumsum([0] + [s.steps for s in stages]).tolist(), mesh,
               logical_rules(config.mesh.rules), abstract_params(elm), config.model.adapter)


def initial_params(run: Run, rng: jax.Array) -> dict:
    """The backbone's params and fresh adapters (from ``fold_in(rng, 1)``; fitted to the
    training answers when ``model.adapter.init`` is ``aligned``), sharded over the mesh.
    Call inside ``jax.set_mesh(run.mesh)`` and the logical axis rules."""
    shardings = tree_shardings(run.abstract_params, run.mesh, run.rules)
    adapters = jax.jit(lambda r: meta.unbox(init_adapters(run.elm, r)),
                       out_shardings=shardings["adapters"])(jax.random.fold_in(rng, 1))
    if run.adapter_config.init == "aligned":
        # Fitted on the host, from the whole init (gathered from every process), then sharded.
        adapters = put_sharded(align_adapters(
            run.elm, process_allgather(adapters, tiled=True), run.pipeline.train,
            run.pipeline.encoder, run.backbone.tokenizer,
            run.backbone.params["embedder"]["embedding"], ridge=run.adapter_config.align_ridge),
            shardings["adapters"])
    return {"backbone": put_sharded(run.backbone.params, shardings["backbone"]),
            "adapters": adapters}


def stage_state(run: Run, index: int) -> AbstractState:
    """The abstract train state of stage ``index`` of ``run``, sharded over its mesh."""
    return abstract_train_state(run.elm, run.stages[index], run.mesh, run.rules,
                                run.boundaries[index], params=run.abstract_params)


def _checkpointer(config, workdir: str, run: Run) -> Checkpointer:
    return Checkpointer(config.train.checkpoint_dir or os.path.join(workdir, "checkpoints"),
                        save_every=config.train.checkpoint_every,
                        keep=config.train.keep_checkpoints,
                        async_save=config.train.async_checkpoints,
                        preserve_steps=run.boundaries[1:])


def restore_stage_params(config, workdir: str, run: Run, stage: str) -> dict:
    """The parameters at the end of ``stage`` of the run in ``workdir``, sharded over the
    mesh. Call inside ``jax.set_mesh(run.mesh)`` and the logical axis rules."""
    names = [s.name for s in run.stages]
    if stage not in names:
        raise ValueError(f"stage {stage!r} is not one of this config's stages {names}")
    index = names.index(stage)
    step = run.boundaries[index + 1]
    checkpointer = _checkpointer(config, workdir, run)
    try:
        latest = checkpointer.latest_step()
        if latest is None or latest < step:
            raise FileNotFoundError(
                f"no checkpoint of the end of stage {stage!r} (step {step}) in {workdir}: the "
                f"latest step there is {latest}; train first (python -m launch.train)")
        # The parameters only: the optimizer's moments are not read.
        parts = checkpointer.restore_state(step, stage_state(run, index).abstract,
                                           fields=("trainable", "frozen"))
        return run.stages[index].final_params(merge_params(parts["trainable"], parts["frozen"]))
    finally:
        checkpointer.close()


def train(config, workdir: str) -> dict[str, float]:
    """Runs (or resumes) every stage of ``config`` in ``workdir``; returns final eval metrics.

    Every process of a multi-host run calls this with the same arguments; each reads its
    own slice of every batch, and process 0 writes the logs and holds the workdir's lock.
    """
    check_run_config(config)  # every problem at once, before anything heavy loads
    lock = workdir_lock(workdir) if jax.process_index() == 0 else contextlib.nullcontext()
    with lock:
        run = setup_run(config)
        checkpointer = _checkpointer(config, workdir, run)
        log = MetricsLog(workdir, enabled=jax.process_index() == 0)
        try:
            return _train_stages(config, run, checkpointer, log)
        finally:  # also on errors, so that the error is the last thing printed
            checkpointer.close()
            log.close()


def _train_stages(config, run: Run, checkpointer: Checkpointer, log: MetricsLog
                  ) -> dict[str, float]:
    pipeline, mesh, stages, boundaries = run.pipeline, run.mesh, run.stages, run.boundaries
    train_batches = BatchIterator(pipeline.train, pipeline.encoder,
                                  batch_size=config.data.batch_size, seed=config.data.seed,
                                  shuffle=True, layout=run.train_layout,
                                  process_index=jax.process_index(),
                                  process_count=jax.process_count())
    logging.info("rows of %d tokens holding up to %d examples; %d target tokens per %d rows "
                 "(eval: %d per %d)", config.data.max_length, config.data.examples_per_row,
                 run.train_layout.group_target_tokens, run.train_layout.group_rows,
                 run.eval_layout.group_target_tokens, run.eval_layout.group_rows)
    rng = jax.random.key(config.train.seed)
    with jax.set_mesh(mesh), nn.logical_axis_rules(run.rules), PreemptionWatch() as preemption:
        resumed = checkpointer.restore_latest_usable(
            lambda record: stage_state(run, record["stage_index"]).abstract)
        start_stage, resume_step, state, params = 0, 0, None, None
        guard = NonFiniteGuard(config.train.nonfinite_updates)
        if resumed is not None:
            resume_step, record, state = resumed
            start_stage = record["stage_index"]
            guard.skipped = record.get("skipped_updates", 0)
            train_batches.set_state(record["data"])
            logging.info("resuming from step %d (stage %s)", resume_step, record["stage"])
        else:
            params = initial_params(run, rng)
        run.backbone = None  # its arrays now live in params (or the restored state)
        progress = Progress(boundaries[-1], resume_step)
        replicated = NamedSharding(mesh, PartitionSpec())
        rng_data = jax.device_put(jax.random.key_data(jax.random.fold_in(rng, 2)), replicated)
        statistics = config_statistics(config.train)
        eval_step = jax.jit(make_eval_step(run.elm, statistics))
        # Every batch has the structure of one encoded row with a leading batch axis.
        row = pipeline.encoder.encode(pipeline.train[0])
        row["target_positions"] = np.zeros(run.train_layout.group_target_tokens, np.int32)
        batch_shardings = jax.tree_util.tree_map(lambda x: batch_sharding(mesh, np.ndim(x) + 1),
                                                 row)
        results: dict[str, float] = {}
        # Where arrays live in host memory, each step dispatched ahead of the running one
        # holds a state of its own: with five steps between log lines, stage 2 of cpu_quick
        # peaked at 9.1 GiB instead of 5.4, and its steps were slower (BENCHMARKS.md). There
        # each step is waited for; on an accelerator the host runs ahead to hide dispatch.
        one_step_at_a_time = arrays_in_host_memory()
        for index in range(start_stage, len(stages)):
            stage, begin, end = stages[index], boundaries[index], boundaries[index + 1]
            new_state, optimizer = state_factory(stage, begin)
            abstract = stage_state(run, index)
            state_shardings = abstract.shardings
            logging.info("stage %s: %d trainable of %d parameters", stage.name,
                         abstract.trainable_parameters, abstract.total_parameters)
            if state is None:
                state = jax.jit(new_state, out_shardings=state_shardings)(params, rng_data)
            del params
            train_step = jax.jit(
                make_train_step(run.elm, optimizer, learning_rate_schedule(stage.optimizer),
                                begin, config.train.grad_accum_steps, statistics, stage.lora,
                                skip_nonfinite=guard.mode == "skip"),
                in_shardings=(state_shardings, batch_shardings),
                out_shardings=(state_shardings, replicated), donate_argnums=0)
            window = _Window()
            step = int(state.step)
            while step < end:
                local = next(train_batches)
                state, metrics = train_step(state, global_batch(local, mesh))
                if one_step_at_a_time:
                    jax.block_until_ready(metrics)
                step += 1
                window.add(local)
                guard.after_step(step, metrics)
                stop = preemption.should_stop()
                log_due = step % config.train.log_every == 0 or step == end
                if log_due or stop or checkpointer.due(step):
                    guard.flush()  # before the metrics are logged or the state saved
                if log_due:
                    metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
                    metrics.update(window.rates())
                    if guard.mode == "skip":
                        metrics["skipped_updates"] = float(guard.skipped)
                    log.write(step, stage.name, metrics)
                    progress.report(step, stage.name, {k: metrics[k] for k in (
                        "loss", "token_accuracy", "learning_rate", "examples_per_second")})
                    window = _Window()
                if step % config.train.eval_every == 0 and step != end:
                    log.write(step, stage.name, _evaluate(
                        eval_step, stage.final_params(state.params), run, config))
                record = {"stage_index": index, "stage": stage.name,
                          "data": train_batches.get_state(), "skipped_updates": guard.skipped}
                checkpointer.save(step, state, record, force=step == end or stop)
                if stop:
                    logging.warning("SIGTERM received: saved step %d, exiting", step)
                    return {"preempted_at_step": float(step)}
            params, rng_data = stage.final_params(state.params), state.rng
            state = None
            results = _evaluate(eval_step, params, run, config)
            release_freed_host_memory()  # the stage's state and programs, before the next's
            log.write(end, stage.name, results)
            logging.info("end of stage %s: %s", stage.name,
                         " ".join(f"{k} {v:.4f}" for k, v in results.items()))
    return results
