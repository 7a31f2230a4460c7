"""A stage's train step built from abstract shapes: what launch.plan compiles to plan memory
and what launch.benchmark runs to measure speed, so both speak of the same program.

The model is the one ``launch.plan`` plans: the config's backbone (random init) with one
synthetic embedding space ``vec`` of ``data.synthetic.dim`` and the config's adapter; the
batch is ``data.batch_size`` rows of ``data.max_length`` tokens with one vector slot each.
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

from elc.model.config import GemmaConfig, get_preset
from elc.model.elm import ELM, AdapterConfig, init_adapters, space_dims
from elc.model.gemma import Gemma3
from elc.sharding import (Rules, batch_sharding, logical_rules, make_mesh, strip_boxes,
                          tree_shardings)
from elc.train.optimizer import learning_rate_schedule, make_optimizer
from elc.train.state import create_state
from elc.train.step import make_train_step
from elc.train.trainer import Stage

SPACE = "vec"  # the one synthetic embedding space of the planned model


def planned_backbone(config) -> GemmaConfig:
    """The backbone preset of ``config.backbone`` with its runtime fields applied."""
    backbone = config.backbone
    return get_preset(backbone.preset, dtype=backbone.dtype, param_dtype=backbone.param_dtype,
                      remat_policy=backbone.remat_policy, attention_impl=backbone.attention_impl)


def planned_elm(config) -> ELM:
    """The planned ELM: ``planned_backbone`` plus one adapter for the space ``vec``."""
    adapter = config.model.adapter
    return ELM(planned_backbone(config), space_dims({SPACE: config.data.synthetic.dim}),
               AdapterConfig(num_soft_tokens=adapter.num_soft_tokens,
                             hidden_dims=tuple(adapter.hidden_dims),
                             activation=adapter.activation, input_norm=adapter.input_norm))


def abstract_batch(config) -> dict:
    """Shapes and dtypes of one training batch of the planned model."""
    rows, length = config.data.batch_size, config.data.max_length
    dim, soft = config.data.synthetic.dim, config.model.adapter.num_soft_tokens
    shape = jax.ShapeDtypeStruct
    return {"tokens": shape((rows, length), jnp.int32),
            "input_mask": shape((rows, length), jnp.bool_),
            "positions": shape((rows, length), jnp.int32),
            "targets": shape((rows, length), jnp.int32),
            "loss_mask": shape((rows, length), jnp.float32),
            "slots": {SPACE: {"vectors": shape((rows, 1, dim), jnp.float32),
                              "mask": shape((rows, 1), jnp.bool_),
                              "positions": shape((rows, 1, soft), jnp.int32)}}}


def random_batch(config, seed: int = 0) -> dict[str, Any]:
    """A full batch of ``abstract_batch``'s shapes: random tokens at every position, all of
    them targets (next-token prediction over the whole row), one vector slot at the start."""
    rows, length = config.data.batch_size, config.data.max_length
    vocab = planned_backbone(config).vocab_size
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, size=(rows, length + 1), dtype=np.int32)
    soft = config.model.adapter.num_soft_tokens
    return {"tokens": tokens[:, :-1], "input_mask": np.ones((rows, length), bool),
            "positions": np.broadcast_to(np.arange(length, dtype=np.int32), (rows, length)).copy(),
            "targets": tokens[:, 1:], "loss_mask": np.ones((rows, length), np.float32),
            "slots": {SPACE: {
                "vectors": rng.standard_normal((rows, 1, config.data.synthetic.dim),
                                               dtype=np.float32),
                "mask": np.ones((rows, 1), bool),
                "positions": np.broadcast_to(1 + np.arange(soft, dtype=np.int32),
                                             (rows, 1, soft)).copy()}}}


@dataclasses.dataclass
class StageProgram:
    """A stage's jitted train step and what it runs on.

    Attributes:
      step: ``step(state, batch) -> (state, metrics)``, jitted with the shardings below
        (state donated).
      init_state: ``init_state()`` builds a fresh random state with ``state_shardings``.
      abstract_state: the state's shapes with their shardings (nothing allocated).
      boxed_state: the same, boxed with logical axis names.
      state_shardings, batch_shardings: NamedShardings over the mesh.
    """

    step: Callable
    init_state: Callable[[], Any]
    abstract_state: Any
    boxed_state: Any
    state_shardings: Any
    batch_shardings: Any


def stage_program(config, elm: ELM, stage: Stage, mesh: Mesh, rules: Rules) -> StageProgram:
    """Builds ``stage``'s program for ``elm`` on ``mesh``.

    Call it, and ``init_state``, outside any mesh context: Flax would otherwise apply
    sharding constraints while tracing the init, which it gets wrong for remat inside a
    scan (the trainer initialises outside the mesh too). Lower or call ``step`` inside
    ``jax.set_mesh(mesh)`` and ``nn.logical_axis_rules(rules)``.
    """
    optimizer = make_optimizer(stage.optimizer)

    def init():
        params = {"backbone": Gemma3(elm.backbone_config).init(
            jax.random.key(0), jnp.zeros((1, 1), jnp.int32))["params"],
            "adapters": init_adapters(elm, jax.random.key(1))}
        return create_state(params, list(stage.trainable), optimizer, 0,
                            jax.random.key_data(jax.random.key(2)))

    boxed = jax.eval_shape(init)
    shardings = tree_shardings(boxed, mesh, rules)
    abstract = jax.tree_util.tree_map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), strip_boxes(boxed),
        shardings)
    batch_shardings = jax.tree_util.tree_map(lambda x: batch_sharding(mesh, len(x.shape)),
                                             abstract_batch(config))
    step = jax.jit(make_train_step(elm, optimizer, learning_rate_schedule(stage.optimizer), 0,
                                   config.train.grad_accum_steps),
                   in_shardings=(shardings, batch_shardings),
                   out_shardings=(shardings, NamedSharding(mesh, PartitionSpec())),
                   donate_argnums=0)
    init_state = jax.jit(lambda: strip_boxes(init()), out_shardings=shardings)
    return StageProgram(step, init_state, abstract, boxed, shardings, batch_shardings)


def _per_device_bytes(abstract) -> int:
    """Bytes one device holds of a tree of ShapeDtypeStructs that carry shardings."""
    return sum(int(jnp.dtype(leaf.dtype).itemsize) * math.prod(
        leaf.sharding.shard_shape(leaf.shape)) for leaf in jax.tree_util.tree_leaves(abstract))


def memory_plan(config, stage: Stage) -> dict[str, Any]:
    """Per-device bytes of ``stage``'s train step for the planned model on ``config``'s
    mesh: parameters, optimizer state and batch exactly (from their shardings), and the
    temporaries (activations, gradients, logits) from the compiled step's memory analysis.
    Nothing is allocated."""
    elm = planned_elm(config)
    mesh = make_mesh(config.mesh)
    rules = logical_rules(config.mesh.rules)
    program = stage_program(config, elm, stage, mesh, rules)
    batch = jax.tree_util.tree_map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                                   abstract_batch(config), program.batch_shardings)
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        compiled = program.step.lower(program.abstract_state, batch).compile()
    state = program.abstract_state
    params = _per_device_bytes((state.trainable, state.frozen))
    optimizer = _per_device_bytes(state.opt_state)
    batch_bytes = _per_device_bytes(batch)
    temporaries = int(compiled.memory_analysis().temp_size_in_bytes)
    return {"stage": stage.name, "params": params, "optimizer": optimizer, "batch": batch_bytes,
            "temporaries": temporaries, "total": params + optimizer + batch_bytes + temporaries}
