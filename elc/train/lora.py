"""Low-rank adaptation (LoRA) of the backbone's projection matrices.

A kernel W of shape ``[*layers, *in, *out]`` is adapted to ``W + (alpha / rank) * a @ b``
with ``a: [*layers, *in, rank]`` and ``b: [*layers, rank, *out]``, the product contracting
the rank axis and batched over the leading ``layers`` axes of scanned groups.

The pairs live in the parameter tree under the top-level key ``"lora"``, at the path of
the kernel they adapt::

    params["lora"]["backbone"]["groups"]["layer_0"]["attention"]["q_proj"] = {"a": ..., "b": ...}

so the trainable regex ``lora/.*`` trains them while the kernels stay frozen (no gradient,
no optimizer state for W). ``merge_lora`` folds the pairs into the kernels before the
forward pass, so the model code knows nothing about LoRA.
"""

from __future__ import annotations

import dataclasses
import math
import re
import string
import zlib
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util

LORA_KEY = "lora"
RANK_AXIS = "lora_rank"

# Adaptable kernel name -> (number of input axes, number of output axes), not counting the
# leading "layers" axes of scanned groups. o_proj reads [heads, head_dim] and writes embed.
_KERNEL_AXES = {"q_proj": (1, 2), "k_proj": (1, 2), "v_proj": (1, 2), "o_proj": (2, 1),
                "gate_proj": (1, 1), "up_proj": (1, 1), "down_proj": (1, 1)}


@dataclasses.dataclass(frozen=True)
class LoraConfig:
    """Which kernels get a LoRA pair, and its shape and strength.

    Attributes:
      rank: the inner dimension of each pair.
      alpha: the update is scaled by ``alpha / rank``, so changing the rank does not
        change the size of the initial updates.
      dropout: probability of dropping an input feature of the LoRA path (see
        ``merge_lora``); 0 disables it.
      targets: regexes fully matched against '/'-joined parameter paths, e.g.
        ``backbone/(groups|tail)/layer_\\d+/attention/(q|v)_proj``.
    """

    rank: int
    alpha: float
    dropout: float
    targets: tuple[str, ...]

    def __post_init__(self):
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"LoraConfig.rank must be an integer >= 1, got {self.rank!r}")
        if not self.alpha > 0:
            raise ValueError(f"LoraConfig.alpha must be > 0, got {self.alpha!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"LoraConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if isinstance(self.targets, str):
            raise ValueError(f"LoraConfig.targets must be a sequence of regexes, got the "
                             f"string {self.targets!r}")
        # Config systems hand over lists; a tuple keeps the config hashable (jit-static).
        object.__setattr__(self, "targets", tuple(self.targets))
        if not self.targets:
            raise ValueError("LoraConfig.targets is empty; expected at least one regex of the "
                             "kernels to adapt")
        for pattern in self.targets:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"LoraConfig.targets regex {pattern!r} is invalid: "
                                 f"{error}") from None

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


def _kernel_split(path: str, kernel: Any) -> tuple[int, int]:
    """(leading "layers" axes, input axes) of an adaptable kernel, by its name and rank."""
    name = path.rsplit("/", 1)[-1]
    adaptable = f"LoRA adapts the attention and MLP kernels {sorted(_KERNEL_AXES)}"
    if name not in _KERNEL_AXES:
        raise ValueError(f"parameter {path!r} matches a LoRA target but is not an adaptable "
                         f"matrix; {adaptable}")
    n_in, n_out = _KERNEL_AXES[name]
    names = kernel.names if isinstance(kernel, nn.LogicallyPartitioned) else None
    shape = (kernel.value if names is not None else kernel).shape
    lead = len(shape) - n_in - n_out
    if lead < 0 or (names is not None and any(n != "layers" for n in names[:lead])):
        raise ValueError(f"parameter {path!r} has shape {shape} (axes {names}); expected "
                         f"leading 'layers' axes, then {n_in} input and {n_out} output axes")
    return lead, n_in


def _adapted_kernels(params: dict, config: LoraConfig) -> dict[tuple[str, ...], Any]:
    """The leaves of ``params`` whose paths match a target; each target must match one."""
    flat = traverse_util.flatten_dict(params)
    paths = {key: "/".join(key) for key in flat}
    chosen = {}
    for pattern in config.targets:
        regex = re.compile(pattern)
        hits = [key for key, path in paths.items() if regex.fullmatch(path)]
        if not hits:
            examples = [p for p in paths.values() if p.rsplit("/", 1)[-1] in _KERNEL_AXES]
            raise ValueError(f"LoRA target {pattern!r} matches no parameter; adaptable paths "
                             f"look like {(examples or list(paths.values()))[:4]}")
        chosen.update((key, flat[key]) for key in hits)
    return chosen


def _path_key(rng: jax.Array, key: tuple[str, ...]) -> jax.Array:
    """A key for one kernel that depends on its path only, so that a kernel's draws do not
    change when other kernels are added to or removed from the targets."""
    return jax.random.fold_in(rng, zlib.crc32("/".join(key).encode()) & 0x7FFFFFFF)


def init_lora(params: dict, config: LoraConfig, rng: jax.Array) -> dict:
    """Fresh LoRA pairs for the kernels of ``params`` matched by ``config.targets``: the
    subtree to store under ``params["lora"]``.

    ``a`` is normal with std ``1 / sqrt(fan_in)`` and ``b`` is zero, as in the LoRA paper,
    so that the adapted model starts out equal to the base model. Both take W's dtype.
    Only shapes are read from ``params``, so it may hold ShapeDtypeStructs, and it works
    under ``jax.eval_shape`` and ``jax.jit``. Where W is boxed with logical axis names,
    ``a`` is boxed with W's names of the layers and input axes plus ``lora_rank``, and
    ``b`` with the layers names, ``lora_rank`` and W's output names, so each shards like
    the side of W it stands for.

    Raises:
      ValueError: a target matches no parameter, or a parameter that is not an attention
        or MLP kernel.
    """
    lora = {}
    for key, kernel in _adapted_kernels(params, config).items():
        lead, n_in = _kernel_split("/".join(key), kernel)
        boxed = isinstance(kernel, nn.LogicallyPartitioned)
        value = kernel.value if boxed else kernel
        in_end = lead + n_in
        fan_in = math.prod(value.shape[lead:in_end])
        a = jax.random.normal(_path_key(rng, key), (*value.shape[:in_end], config.rank),
                              jnp.float32) / math.sqrt(fan_in)
        a = a.astype(value.dtype)
        b = jnp.zeros((*value.shape[:lead], config.rank, *value.shape[in_end:]), value.dtype)
        if boxed:
            names = kernel.names
            a = kernel.replace(value=a, names=(*names[:in_end], RANK_AXIS))
            b = kernel.replace(value=b, names=(*names[:lead], RANK_AXIS, *names[in_end:]))
        lora[(*key, "a")], lora[(*key, "b")] = a, b
    return traverse_util.unflatten_dict(lora)


def _merged_kernel(path: str, kernel: jax.Array, a: jax.Array, b: jax.Array,
                   scale: float) -> jax.Array:
    """``kernel + scale * a @ b`` in float32, cast back to the kernel's dtype."""
    lead = a.ndim + b.ndim - 2 - kernel.ndim
    if lead < 0 or kernel.shape != (*a.shape[:-1], *b.shape[lead + 1:]):
        raise ValueError(f"lora/{path}: a {a.shape} and b {b.shape} do not fit the kernel "
                         f"{kernel.shape}; expected a [*layers, *in, rank] and "
                         f"b [*layers, rank, *out]")
    # One letter per axis: the einsum contracts the rank and keeps every other axis, so
    # the sharding of each kernel axis carries over without reshapes.
    letters = string.ascii_letters
    layers, inputs = letters[:lead], letters[lead:a.ndim - 1]
    outputs, rank = letters[a.ndim - 1:kernel.ndim], letters[kernel.ndim]
    # HIGHEST: a TPU would otherwise multiply float32 in one bfloat16 pass; the product
    # costs a rank-sized fraction of a forward pass, so exactness is cheap.
    delta = jnp.einsum(f"{layers}{inputs}{rank},{layers}{rank}{outputs}->"
                       f"{layers}{inputs}{outputs}", a.astype(jnp.float32),
                       b.astype(jnp.float32), precision=jax.lax.Precision.HIGHEST)
    return (kernel.astype(jnp.float32) + scale * delta).astype(kernel.dtype)


def merge_lora(params: dict, config: LoraConfig, dropout_rng: jax.Array | None = None) -> dict:
    """``params`` without the ``"lora"`` key, each adapted kernel replaced by
    ``W + config.scale * a @ b``; ``params`` unchanged when it has no ``"lora"`` key.

    Plain array arithmetic: it runs under ``jax.jit`` and gradients flow to ``a`` and ``b``
    (and to W, unless W is passed as a non-differentiated argument).

    Dropout (only with ``dropout_rng`` and ``config.dropout > 0``): standard LoRA dropout
    drops input features of the LoRA path per token, but an update merged into the
    weight sees no tokens. Instead every row of ``a`` (one per input feature, separately
    for each layer of a scanned group) is zeroed with probability ``config.dropout`` and
    the kept rows are scaled by ``1 / (1 - dropout)``, drawn anew for each
    ``dropout_rng``. That equals dropping input features of the LoRA path,
    ``(x * mask) @ a @ b``, with one mask shared by all tokens of the step. The base
    kernel is never dropped.
    """
    if LORA_KEY not in params:
        return params
    flat = traverse_util.flatten_dict({k: v for k, v in params.items() if k != LORA_KEY})
    pairs = traverse_util.flatten_dict(params[LORA_KEY])
    dropout = config.dropout if dropout_rng is not None else 0.0
    for key in sorted({k[:-1] for k in pairs}):
        path = "/".join(key)
        if key not in flat:
            raise ValueError(f"lora/{path} adapts {path!r}, which is not a parameter")
        a, b = pairs[(*key, "a")].astype(jnp.float32), pairs[(*key, "b")]
        if dropout > 0:
            keep = jax.random.bernoulli(_path_key(dropout_rng, key), 1.0 - dropout,
                                        (*a.shape[:-1], 1))
            a = jnp.where(keep, a / (1.0 - dropout), 0.0)
        flat[key] = _merged_kernel(path, flat[key], a, b, config.scale)
    return traverse_util.unflatten_dict(flat)
