"""A stage's train step built from abstract shapes: what launch.plan compiles to plan memory
and what launch.benchmark runs to measure speed, so both speak of the same program.

The model is the config's (``elc.train.build.build_elm``) on its preset backbone with a
random init, so nothing is read but the headers of the embedding tables; the batch is
``data.batch_size`` rows of ``data.max_length`` tokens carrying ``max_slots`` vector slots
of every space per example of a row, and ``data.max_target_tokens`` target positions
(the whole row when it is 0, which the data would otherwise decide).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from elc.data.space_spec import model_spaces
from elc.model.elm import ELM
from elc.sharding import Rules, batch_sharding, logical_rules, make_mesh, strip_boxes
from elc.train.build import (Stage, abstract_train_state, build_elm, count_parameters,
                             init_params, preset_backbone, state_factory)
from elc.train.optimizer import learning_rate_schedule
from elc.train.step import make_train_step
from elc.train.token_statistics import StatisticsFn, config_statistics


def _slot_positions(config) -> dict[str, np.ndarray]:
    """Space -> [max_slots, num_soft_tokens] token positions: every slot of every space
    in turn, right after the first token."""
    soft = config.model.adapter.num_soft_tokens
    positions, start = {}, 1
    for space in model_spaces(config.data):
        count = space.max_slots * soft
        positions[space.name] = (start + np.arange(count, dtype=np.int32)).reshape(
            space.max_slots, soft)
        start += count
    if start > config.data.max_length:
        raise ValueError(f"data.max_length={config.data.max_length} has no room for the "
                         f"{start - 1} soft tokens of a batch row")
    return positions


def _target_count(config) -> int:
    return config.data.max_target_tokens or config.data.max_length


def abstract_batch(config) -> dict:
    """Shapes and dtypes of one training batch of the config's model."""
    rows, length = config.data.batch_size, config.data.max_length
    soft, per_row = config.model.adapter.num_soft_tokens, config.data.examples_per_row
    shape = jax.ShapeDtypeStruct
    return {"tokens": shape((rows, length), jnp.int32),
            "input_mask": shape((rows, length), jnp.bool_),
            "segment_ids": shape((rows, length), jnp.int32),
            "positions": shape((rows, length), jnp.int32),
            "targets": shape((rows, length), jnp.int32),
            "loss_mask": shape((rows, length), jnp.float32),
            "target_positions": shape((rows, _target_count(config)), jnp.int32),
            "slots": {s.name: {
                "vectors": shape((rows, s.max_slots * per_row, s.dim), jnp.float32),
                "mask": shape((rows, s.max_slots * per_row), jnp.bool_),
                "positions": shape((rows, s.max_slots * per_row, soft), jnp.int32)}
                for s in model_spaces(config.data)}}


def random_batch(config, seed: int = 0) -> dict[str, Any]:
    """A full batch of ``abstract_batch``'s shapes: one example of random tokens per row,
    its first ``max_target_tokens`` positions targets (all of them when that is 0), and
    its first slot of every space used, one after another from the second position."""
    rows, length = config.data.batch_size, config.data.max_length
    vocab = preset_backbone(config.backbone).vocab_size
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, size=(rows, length + 1), dtype=np.int32)
    positions = _slot_positions(config)
    count = _target_count(config)
    loss_mask = np.zeros((rows, length), np.float32)
    loss_mask[:, :count] = 1.0
    batch = {"tokens": tokens[:, :-1], "input_mask": np.ones((rows, length), bool),
             "segment_ids": np.ones((rows, length), np.int32),
             "positions": np.broadcast_to(np.arange(length, dtype=np.int32),
                                          (rows, length)).copy(),
             "targets": tokens[:, 1:], "loss_mask": loss_mask,
             "target_positions": np.broadcast_to(np.arange(count, dtype=np.int32),
                                                 (rows, count)).copy(),
             "slots": {}}
    for space in model_spaces(config.data):
        capacity = space.max_slots * config.data.examples_per_row
        slot_positions = np.full((rows, capacity, positions[space.name].shape[1]), length,
                                 np.int32)
        slot_positions[:, :space.max_slots] = positions[space.name]
        batch["slots"][space.name] = {
            "vectors": rng.standard_normal((rows, capacity, space.dim), dtype=np.float32),
            "mask": np.broadcast_to(np.arange(capacity) < space.max_slots,
                                    (rows, capacity)).copy(),
            "positions": slot_positions}
    return batch


@dataclasses.dataclass
class StageProgram:
    """A stage's jitted train step and what it runs on.

    Attributes:
      step: ``step(state, batch) -> (state, metrics)``, jitted with the shardings below
        (state donated).
      init_state: ``init_state()`` builds a fresh random state with ``state_shardings``.
      abstract_state: the state's shapes with their shardings (nothing allocated).
      state_shardings, batch_shardings: NamedShardings over the mesh.
    """

    step: Callable
    init_state: Callable[[], Any]
    abstract_state: Any
    state_shardings: Any
    batch_shardings: Any


def stage_program(config, elm: ELM, stage: Stage, mesh: Mesh, rules: Rules,
                  statistics: StatisticsFn | None = None) -> StageProgram:
    """Builds ``stage``'s program for ``elm`` on ``mesh``; its loss comes from
    ``statistics`` (default: the config's, see ``config_statistics``).

    Call it, and ``init_state``, outside any mesh context: Flax would otherwise apply
    sharding constraints while tracing the init, which it gets wrong for remat inside a
    scan (the trainer initialises outside the mesh too). Lower or call ``step`` inside
    ``jax.set_mesh(mesh)`` and ``nn.logical_axis_rules(rules)``.
    """
    new_state, optimizer = state_factory(stage, 0)
    state = abstract_train_state(elm, stage, mesh, rules)
    shardings = state.shardings
    batch_shardings = jax.tree_util.tree_map(lambda x: batch_sharding(mesh, len(x.shape)),
                                             abstract_batch(config))
    step = jax.jit(make_train_step(elm, optimizer, learning_rate_schedule(stage.optimizer), 0,
                                   config.train.grad_accum_steps,
                                   statistics or config_statistics(config.train), stage.lora),
                   in_shardings=(shardings, batch_shardings),
                   out_shardings=(shardings, NamedSharding(mesh, PartitionSpec())),
                   donate_argnums=0)
    init_state = jax.jit(lambda: strip_boxes(new_state(
        init_params(elm, jax.random.key(0)), jax.random.key_data(jax.random.key(2)))),
        out_shardings=shardings)
    return StageProgram(step, init_state, state.abstract, shardings, batch_shardings)


def _per_device_bytes(abstract) -> int:
    """Bytes one device holds of a tree of ShapeDtypeStructs that carry shardings."""
    return sum(int(jnp.dtype(leaf.dtype).itemsize) * math.prod(
        leaf.sharding.shard_shape(leaf.shape)) for leaf in jax.tree_util.tree_leaves(abstract))


def memory_plan(config, stage: Stage, statistics: StatisticsFn | None = None
                ) -> dict[str, Any]:
    """Per-device bytes of ``stage``'s train step for the planned model on ``config``'s
    mesh: parameters, optimizer state and batch exactly (from their shardings), and the
    temporaries (activations, gradients, logits) from the compiled step's memory analysis;
    and the stage's trainable and total parameter counts. Nothing is allocated.
    ``statistics``: as for ``stage_program``."""
    elm = build_elm(config)
    mesh = make_mesh(config.mesh)
    rules = logical_rules(config.mesh.rules)
    program = stage_program(config, elm, stage, mesh, rules, statistics)
    batch = jax.tree_util.tree_map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                                   abstract_batch(config), program.batch_shardings)
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        compiled = program.step.lower(program.abstract_state, batch).compile()
    state = program.abstract_state
    params = _per_device_bytes((state.trainable, state.frozen))
    optimizer = _per_device_bytes(state.opt_state)
    batch_bytes = _per_device_bytes(batch)
    temporaries = int(compiled.memory_analysis().temp_size_in_bytes)
    return {"stage": stage.name, "trainable_parameters": count_parameters(state.trainable),
            "total_parameters": count_parameters((state.trainable, state.frozen)),
            "params": params, "optimizer": optimizer, "batch": batch_bytes,
            "temporaries": temporaries, "total": params + optimizer + batch_bytes + temporaries}
