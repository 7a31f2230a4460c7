"""The ELM training loop: stages run one after another, resumable at any checkpoint.

A run is described by a config (see configs/tiny_elm.py). Stage 1 typically trains the
adapters with the backbone frozen, stage 2 everything (or a regex-selected subset). The
global step counts across stages; the checkpoint records the stage and the position of
the data iterator, so a run that is killed continues exactly where its last checkpoint was.
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import numpy as np
from absl import logging
from flax.core import meta

from elc.checkpoints.backbone import load_backbone
from elc.data.iterator import BatchIterator
from elc.model.elm import ELM, AdapterConfig, init_adapters, soft_token_scale, space_dims
from elc.train.checkpointing import Checkpointer
from elc.train.input_pipeline import build_input_pipeline
from elc.train.metrics_log import MetricsLog, Progress
from elc.train.optimizer import OptimizerConfig, learning_rate_schedule, make_optimizer
from elc.train.state import TrainState, create_state
from elc.train.step import make_eval_step, make_train_step


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training stage: how long, what is trained, with which optimizer."""

    name: str
    steps: int
    trainable: tuple[str, ...]
    optimizer: OptimizerConfig


def stages_from_config(config) -> list[Stage]:
    """The stages named in ``config.train.stages``, defined under ``config.stage``."""
    stages = []
    for name in config.train.stages:
        if name not in config.stage:
            raise ValueError(f"config.train.stages names {name!r}, but config.stage defines only "
                             f"{sorted(config.stage.keys())}")
        spec = config.stage[name]
        if spec.steps < 1:
            raise ValueError(f"config.stage.{name}.steps must be >= 1, got {spec.steps}")
        try:
            optimizer = OptimizerConfig(
                learning_rate=spec.learning_rate, warmup_steps=spec.warmup_steps,
                decay_steps=spec.steps, final_lr_ratio=spec.final_lr_ratio,
                weight_decay=spec.weight_decay, clip_norm=spec.clip_norm)
        except ValueError as error:
            raise ValueError(f"config.stage.{name}: {error}") from None
        stages.append(Stage(name, spec.steps, tuple(spec.trainable), optimizer))
    if not stages:
        raise ValueError("config.train.stages is empty")
    return stages


def _evaluate(eval_step, params, pipeline, config) -> dict[str, float]:
    iterator = BatchIterator(pipeline.eval, pipeline.encoder, batch_size=config.data.eval_batch_size,
                             seed=0, shuffle=False, num_epochs=1)
    totals: dict[str, float] = {}
    for index, batch in enumerate(iterator):
        if index >= config.train.max_eval_batches:
            break
        for key, value in jax.device_get(eval_step(params, batch)).items():
            totals[key] = totals.get(key, 0.0) + float(value)
    tokens, examples = max(totals["tokens"], 1.0), max(totals["examples"], 1.0)
    return {"eval/loss": totals["loss_sum"] / tokens,
            "eval/token_accuracy": totals["correct"] / tokens,
            "eval/exact_match": totals["exact"] / examples}


def train(config, workdir: str) -> dict[str, float]:
    """Runs (or resumes) every stage of ``config`` in ``workdir``; returns final eval metrics."""
    os.makedirs(workdir, exist_ok=True)
    backbone = load_backbone(config.backbone)
    if backbone.tokenizer is None:
        raise ValueError("the backbone has no tokenizer; set config.backbone.tokenizer")
    pipeline = build_input_pipeline(config.data, backbone.tokenizer,
                                    config.model.adapter.num_soft_tokens)
    adapter = config.model.adapter
    scale = adapter.output_scale or soft_token_scale(backbone.params["embedder"]["embedding"])
    elm = ELM(backbone.config, space_dims({n: s.dim for n, s in pipeline.spaces.items()}),
              AdapterConfig(num_soft_tokens=adapter.num_soft_tokens,
                            hidden_dims=tuple(adapter.hidden_dims), activation=adapter.activation,
                            input_norm=adapter.input_norm, output_scale=float(scale)))
    rng = jax.random.key(config.train.seed)
    params = {"backbone": jax.tree_util.tree_map(jax.numpy.asarray, backbone.params),
              "adapters": meta.unbox(init_adapters(elm, jax.random.fold_in(rng, 1)))}
    stages = stages_from_config(config)
    boundaries = np.cumsum([0] + [s.steps for s in stages]).tolist()
    total_steps = boundaries[-1]

    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"),
                                save_every=config.train.checkpoint_every,
                                keep=config.train.keep_checkpoints,
                                async_save=config.train.async_checkpoints)
    train_batches = BatchIterator(pipeline.train, pipeline.encoder,
                                  batch_size=config.data.batch_size, seed=config.data.seed,
                                  shuffle=True)
    start_stage, resume_step = 0, checkpointer.latest_step()
    if resume_step is not None:
        record = checkpointer.restore_record(resume_step)
        start_stage = record["stage_index"]
        train_batches.set_state(record["data"])
        logging.info("resuming from step %d (stage %s)", resume_step, record["stage"])

    log = MetricsLog(workdir, enabled=jax.process_index() == 0)
    progress = Progress(total_steps, resume_step or 0)
    eval_step = jax.jit(make_eval_step(elm))
    rng_data = jax.random.key_data(jax.random.fold_in(rng, 2))
    for index in range(start_stage, len(stages)):
        stage, begin, end = stages[index], boundaries[index], boundaries[index + 1]
        optimizer = make_optimizer(stage.optimizer)
        state: TrainState = create_state(params, list(stage.trainable), optimizer, begin, rng_data)
        if resume_step is not None:
            state = checkpointer.restore_state(resume_step, state)
            resume_step = None
        train_step = jax.jit(make_train_step(elm, optimizer, learning_rate_schedule(stage.optimizer),
                                             begin, config.train.grad_accum_steps),
                             donate_argnums=0)
        window_start, window_tokens, window_steps = time.time(), 0, 0
        step = int(state.step)
        while step < end:
            batch = next(train_batches)
            state, metrics = train_step(state, batch)
            step += 1
            window_tokens += int(batch["input_mask"].sum())
            window_steps += 1
            if step % config.train.log_every == 0 or step == end:
                metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
                elapsed = time.time() - window_start
                metrics.update({"step_time": elapsed / window_steps,
                                "tokens_per_second": window_tokens / elapsed})
                log.write(step, stage.name, metrics)
                progress.report(step, stage.name, {k: metrics[k] for k in (
                    "loss", "token_accuracy", "learning_rate", "tokens_per_second")})
                window_start, window_tokens, window_steps = time.time(), 0, 0
            if step % config.train.eval_every == 0 and step != end:
                log.write(step, stage.name, _evaluate(eval_step, state.params, pipeline, config))
            record = {"stage_index": index, "stage": stage.name, "data": train_batches.get_state()}
            checkpointer.save(step, state, record, force=step == end)
        params, rng_data = state.params, state.rng
        results = _evaluate(eval_step, params, pipeline, config)
        log.write(end, stage.name, results)
        logging.info("end of stage %s: %s", stage.name,
                     " ".join(f"{k} {v:.4f}" for k, v in results.items()))
    checkpointer.close()
    log.close()
    return results
