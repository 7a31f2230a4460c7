"""How a config becomes a model and a stage's train state: the one place both are built.

``build_elm`` makes the ELM a config describes: its backbone, one adapter per embedding
space of the config's data (``elc.data.space_spec.model_spaces``, the same spaces the input
pipeline reads), and every adapter setting of ``model.adapter``. ``abstract_train_state``
gives the shapes of a stage's train state, boxed with logical axis names and sharded over
a mesh, without allocating anything. The trainer, ``launch.plan``, the accelerator
benchmark and the test probes all build through these two, so the model that is planned
is the model that is trained.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from elc.data.space_spec import model_spaces
from elc.model.config import GemmaConfig, get_preset
from elc.model.elm import ELM, AdapterConfig, init_adapters, soft_token_scale, space_dims
from elc.model.gemma import Gemma3
from elc.sharding import Rules, strip_boxes, tree_shardings
from elc.train.lora import LORA_KEY, LoraConfig, init_lora, merge_lora
from elc.train.optimizer import OptimizerConfig, make_optimizer
from elc.train.state import TrainState, create_state


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training stage: how long, what is trained, with which optimizer.

    With ``lora`` the stage also trains LoRA pairs on the kernels it names (see
    elc/train/lora.py); ``trainable`` then lists what trains besides them (often just
    the adapters), and the kernels themselves stay frozen.
    """

    name: str
    steps: int
    trainable: tuple[str, ...]
    optimizer: OptimizerConfig
    lora: LoraConfig | None = None

    @property
    def trainable_patterns(self) -> tuple[str, ...]:
        """The regexes of the state's trainable part: ``trainable``, and the LoRA pairs."""
        return self.trainable + ((f"{LORA_KEY}/.*",) if self.lora else ())

    def final_params(self, params: dict) -> dict:
        """The model's parameters from the stage's ``state.params``: LoRA pairs merged
        into their kernels, for evaluation, sampling, export and the next stage."""
        return merge_lora(params, self.lora) if self.lora else params


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
        lora_spec = spec.get("lora")
        try:
            optimizer = OptimizerConfig(
                learning_rate=spec.learning_rate, warmup_steps=spec.warmup_steps,
                decay_steps=spec.steps, final_lr_ratio=spec.final_lr_ratio,
                weight_decay=spec.weight_decay, clip_norm=spec.clip_norm,
                lr_multipliers=tuple(tuple(pair) for pair in spec.get("lr_multipliers", ())))
            lora = (LoraConfig(rank=lora_spec.rank, alpha=lora_spec.alpha,
                               dropout=lora_spec.dropout, targets=tuple(lora_spec.targets))
                    if lora_spec is not None and lora_spec.rank else None)
        except ValueError as error:
            raise ValueError(f"config.stage.{name}: {error}") from None
        stages.append(Stage(name, spec.steps, tuple(spec.trainable), optimizer, lora))
    if not stages:
        raise ValueError("config.train.stages is empty")
    return stages


# ------------------------------------------------------------------------------ the model


def preset_backbone(backbone_config) -> GemmaConfig:
    """The architecture ``backbone.preset`` names, with the config's runtime fields (dtype,
    param_dtype, remat_policy, attention_impl): the backbone to plan without reading a
    checkpoint."""
    return get_preset(backbone_config.preset, dtype=backbone_config.dtype,
                      param_dtype=backbone_config.param_dtype,
                      remat_policy=backbone_config.remat_policy,
                      attention_impl=backbone_config.attention_impl)


def build_elm(config, backbone: GemmaConfig | None = None,
              embedding: np.ndarray | None = None) -> ELM:
    """The ELM of ``config``: ``backbone`` (default: ``preset_backbone(config.backbone)``)
    with one adapter per space of ``model_spaces(config.data)``, set up as
    ``config.model.adapter`` says.

    ``model.adapter.output_scale=0`` means "the median RMS of the backbone's token
    embeddings": pass the embedding table as ``embedding`` to get it; without one (for
    shapes only) the scale is 1.
    """
    adapter = config.model.adapter
    scale = adapter.output_scale
    if not scale:
        scale = soft_token_scale(embedding) if embedding is not None else 1.0
    spaces = space_dims([(s.name, s.dim) for s in model_spaces(config.data)])
    return ELM(backbone or preset_backbone(config.backbone), spaces,
               AdapterConfig(num_soft_tokens=adapter.num_soft_tokens,
                             hidden_dims=tuple(adapter.hidden_dims), activation=adapter.activation,
                             input_norm=adapter.input_norm, output_scale=float(scale)))


def init_params(elm: ELM, rng: jax.Array) -> dict:
    """Random parameters of ``elm``, boxed with logical axis names: the backbone from
    ``rng``, the adapters from ``fold_in(rng, 1)``. Trace it outside any mesh context
    (Flax would otherwise apply sharding constraints while tracing the init, which it gets
    wrong for rematerialised layers inside a scan)."""
    backbone = Gemma3(elm.backbone_config).init(rng, jnp.zeros((1, 1), jnp.int32))["params"]
    return {"backbone": backbone, "adapters": init_adapters(elm, jax.random.fold_in(rng, 1))}


def abstract_params(elm: ELM) -> dict:
    """Shapes of all parameters of ``elm``, boxed with their logical axis names."""
    return jax.eval_shape(lambda: init_params(elm, jax.random.key(0)))


# ------------------------------------------------------------------------ the train state


_LORA_INIT_STREAM = 3  # fold_in of the state's RNG that draws a stage's fresh LoRA pairs


def state_factory(stage: Stage, start_step: int
                  ) -> tuple[Callable[[Any, jax.Array], TrainState], optax.GradientTransformation]:
    """``new_state(params, rng_data)`` for ``stage`` (starting at global step
    ``start_step``) and the stage's optimizer. A LoRA stage's state holds fresh pairs
    under ``params['lora']``."""
    optimizer = make_optimizer(stage.optimizer)

    def new_state(params, rng_data):
        if stage.lora:
            rng = jax.random.fold_in(jax.random.wrap_key_data(rng_data), _LORA_INIT_STREAM)
            params = {**params, LORA_KEY: init_lora(params, stage.lora, rng)}
        return create_state(params, list(stage.trainable_patterns), optimizer, start_step,
                            rng_data)
    return new_state, optimizer


@dataclasses.dataclass
class AbstractState:
    """A stage's train state, nothing allocated.

    Attributes:
      boxed: shapes boxed with logical axis names.
      shardings: NamedShardings over the mesh.
      abstract: ShapeDtypeStructs carrying those shardings (what a checkpoint restores to
        and what a step is lowered with).
    """

    boxed: Any
    shardings: Any
    abstract: Any

    @property
    def trainable_parameters(self) -> int:
        return count_parameters(self.abstract.trainable)

    @property
    def total_parameters(self) -> int:
        return count_parameters((self.abstract.trainable, self.abstract.frozen))


def count_parameters(tree) -> int:
    """The number of scalars in a tree of arrays or shapes."""
    return int(sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree)))


def abstract_train_state(elm: ELM, stage: Stage, mesh: Mesh, rules: Rules, start_step: int = 0,
                         params: Any = None) -> AbstractState:
    """The train state of ``stage`` for ``elm`` on ``mesh``. ``params``: the boxed
    ``abstract_params(elm)`` if already at hand."""
    new_state, _ = state_factory(stage, start_step)
    if params is None:
        params = abstract_params(elm)
    rng_data = jax.ShapeDtypeStruct(jax.random.key_data(jax.random.key(0)).shape, jnp.uint32)
    boxed = jax.eval_shape(new_state, params, rng_data)
    shardings = tree_shardings(boxed, mesh, rules)
    abstract = jax.tree_util.tree_map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), strip_boxes(boxed),
        shardings)
    return AbstractState(boxed, shardings, abstract)
