"""Device meshes, logical-axis rules and the shardings of parameters, state and batches.

Model code names logical axes only (``embed``, ``mlp``, ``activation_batch``, ...). This
module maps them onto a mesh with axes ``data``, ``fsdp`` and ``tensor``:

- ``data``: batch parallelism; parameters are replicated along it. On multi-slice TPU
  pods its outer part spans slices over the data-centre network (``dcn_data``).
- ``fsdp``: the batch is split along it too, and parameters and optimizer state are
  sharded on their ``embed`` axis (fully sharded data parallelism).
- ``tensor``: tensor parallelism of heads, MLP width and vocabulary (the ``fsdp_tp`` rules).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import flax.linen as nn
import jax
import numpy as np
from absl import logging
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")

_ACTIVATIONS = [
    ("activation_batch", BATCH_AXES),
    ("activation_length", None),
    ("activation_embed", None),
]
# Pure FSDP: every parameter sharded on its model-width axis over fsdp, nothing else.
FSDP_RULES = _ACTIVATIONS + [
    ("activation_heads", None), ("activation_kv_heads", None), ("activation_mlp", None),
    ("embed", "fsdp"), ("vocab", None), ("mlp", None), ("heads", None), ("kv_heads", None),
    ("head_dim", None), ("layers", None), ("adapter_input", None), ("adapter_hidden", None),
    ("adapter_hidden_in", None),
    ("soft_tokens", None), ("lora_rank", None),
]
# MaxText-style FSDP + tensor parallelism: heads, kv heads, MLP width and vocabulary
# split over tensor, in parameters and activations alike.
FSDP_TP_RULES = _ACTIVATIONS + [
    ("activation_heads", "tensor"), ("activation_kv_heads", "tensor"),
    ("activation_mlp", "tensor"),
    ("embed", "fsdp"), ("vocab", "tensor"), ("mlp", "tensor"), ("heads", "tensor"),
    ("kv_heads", "tensor"), ("head_dim", None), ("layers", None), ("adapter_input", None),
    ("adapter_hidden", "tensor"), ("adapter_hidden_in", None), ("soft_tokens", None),
    ("lora_rank", None),
]
RULE_SETS = {"fsdp": FSDP_RULES, "fsdp_tp": FSDP_TP_RULES}

Rules = list[tuple[str, Any]]


def logical_rules(name: str) -> Rules:
    if name not in RULE_SETS:
        raise ValueError(f"mesh.rules is {name!r}; expected one of {sorted(RULE_SETS)}")
    return RULE_SETS[name]


def _resolve_sizes(sizes: Mapping[str, int], devices: int, where: str) -> list[int]:
    """Axis sizes with at most one -1 ("the rest") filled in."""
    values = [int(sizes[a]) for a in MESH_AXES]
    rest = [a for a, v in zip(MESH_AXES, values) if v == -1]
    if len(rest) > 1:
        raise ValueError(f"{where}: only one mesh axis may be -1, got {rest}")
    if any(v == 0 or v < -1 for v in values):
        raise ValueError(f"{where}: mesh axis sizes must be positive or -1, got "
                         f"{dict(zip(MESH_AXES, values))}")
    known = math.prod(v for v in values if v != -1)
    if rest:
        if devices % known:
            raise ValueError(f"{where}: {devices} devices do not divide by the fixed axes "
                             f"{dict(zip(MESH_AXES, values))}")
        values[MESH_AXES.index(rest[0])] = devices // known
    if math.prod(values) != devices:
        raise ValueError(f"{where}: mesh {dict(zip(MESH_AXES, values))} has {math.prod(values)} "
                         f"devices, but {devices} are available")
    return values


def make_mesh(mesh_config: Mapping[str, Any], devices: list | None = None) -> Mesh:
    """The mesh of ``mesh_config`` (keys data, fsdp, tensor, dcn_data) over all devices.

    ``dcn_data`` > 1 builds a hybrid mesh for multi-slice TPU pods: ``data`` then spans
    ``dcn_data`` slices times the in-slice data parallelism.
    """
    devices = list(devices if devices is not None else jax.devices())
    slices = int(mesh_config.get("dcn_data", 1))
    if slices < 1 or len(devices) % slices:
        raise ValueError(f"mesh.dcn_data={slices} must be >= 1 and divide the "
                         f"{len(devices)} devices")
    per_slice = _resolve_sizes(mesh_config, len(devices) // slices, "mesh (per slice)")
    if slices > 1:
        grid = mesh_utils.create_hybrid_device_mesh(per_slice, [slices, 1, 1], devices)
    else:
        grid = mesh_utils.create_device_mesh(per_slice, devices)
    return Mesh(grid, MESH_AXES)


def _spec_for(shape: tuple[int, ...], names: tuple, mesh: Mesh, rules: Rules,
              where: str) -> PartitionSpec:
    """The mesh spec of a leaf with logical axis ``names``; a dimension that the mesh
    axes do not divide evenly stays replicated (with a warning)."""
    spec = list(nn.logical_to_mesh_axes(names, rules))
    for dim, axes in enumerate(spec):
        if axes is None:
            continue
        size = math.prod(mesh.shape[a] for a in ((axes,) if isinstance(axes, str) else axes))
        if shape[dim] % size:
            logging.warning("%s: dimension %d (%s, size %d) does not divide over mesh axes %s "
                            "(%d devices); it stays replicated", where, dim, names[dim],
                            shape[dim], axes, size)
            spec[dim] = None
    return PartitionSpec(*spec)


def tree_shardings(abstract_tree: Any, mesh: Mesh, rules: Rules) -> Any:
    """NamedShardings for every leaf of a tree whose leaves may be boxed with logical
    axis names (``nn.LogicallyPartitioned``); unboxed leaves are replicated. The result
    has the structure of the unboxed tree."""
    def sharding(path, leaf):
        if isinstance(leaf, nn.LogicallyPartitioned):
            where = jax.tree_util.keystr(path)
            return NamedSharding(mesh, _spec_for(leaf.value.shape, leaf.names, mesh, rules, where))
        return NamedSharding(mesh, PartitionSpec())

    return jax.tree_util.tree_map_with_path(
        sharding, abstract_tree, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))


def batch_sharding(mesh: Mesh, ndim: int) -> NamedSharding:
    """Leading (batch) axis split over data and fsdp, the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES, *([None] * (ndim - 1))))


def rows_per_batch_shard(mesh: Mesh, batch_size: int) -> int:
    """Rows of a ``batch_size``-row batch that each shard of the batch axes holds (1 when
    the batch does not split evenly)."""
    shards = math.prod(mesh.shape[axis] for axis in BATCH_AXES)
    return batch_size // shards if batch_size % shards == 0 else 1


def global_batch(local_batch: Any, mesh: Mesh) -> Any:
    """Assembles each process's rows of a batch into global arrays sharded on the batch axes."""
    return jax.tree_util.tree_map(
        lambda x: jax.make_array_from_process_local_data(batch_sharding(mesh, np.ndim(x)), x),
        local_batch)


def put_sharded(tree: Any, shardings: Any) -> Any:
    """Places host numpy arrays (the same full copy on every process) as global arrays."""
    def put(array, sharding):
        array = np.asarray(array)
        return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])

    return jax.tree_util.tree_map(put, tree, shardings)


def strip_boxes(tree: Any) -> Any:
    """The tree with logical-axis boxes removed. Unlike ``flax.core.meta.unbox`` it never
    applies sharding constraints, so it is safe on abstract trees inside a mesh context."""
    return jax.tree_util.tree_map(
        lambda x: x.value if isinstance(x, nn.LogicallyPartitioned) else x, tree,
        is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
