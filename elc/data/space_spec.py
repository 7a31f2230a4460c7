"""Embedding spaces: the ones a config's ``data`` section declares (``model_spaces``, read
from table headers alone, so that planning loads no vectors), and how an encoder treats
one (``SpaceSpec``)."""

from __future__ import annotations

import dataclasses
import functools
import os
import zipfile

import numpy as np

from elc.data.vector_table import VectorTable


@dataclasses.dataclass(frozen=True, eq=False)
class SpaceSpec:
    """One embedding space as the encoder sees it.

    Attributes:
      dim: the dimension of the space's vectors.
      max_slots: the most slots of this space one example may hold; batches carry this
        many rows per space.
      table: entity id -> vector, for slots given as ids; None when examples give
        inline vectors only.
      standardize: whether the model sees every vector of the space (from the table or
        inline) standardised per dimension with the table's mean and standard deviation.
        Vectors whose entities share a large common component (sentence embeddings) or
        whose scale is far from 1 (ALS factors) then differ where they carry information.
    """

    dim: int
    max_slots: int = 1
    table: VectorTable | None = None
    standardize: bool = False

    def __post_init__(self):
        if self.dim < 1 or self.max_slots < 1:
            raise ValueError(f"SpaceSpec needs dim >= 1 and max_slots >= 1, got dim {self.dim} "
                             f"and max_slots {self.max_slots}")
        if self.table is not None and self.table.dim != self.dim:
            raise ValueError(f"SpaceSpec has dim {self.dim} but its table {self.table.name!r} "
                             f"holds {self.table.dim}-d vectors")
        if self.standardize and self.table is None:
            raise ValueError("a space standardised with its table's statistics needs a table; "
                             "set the space's table or standardize=False")

    @functools.cached_property
    def _moments(self) -> tuple[np.ndarray, np.ndarray]:
        vectors = self.table.vectors.astype(np.float64)
        std = vectors.std(axis=0)
        # A dimension that is constant over the table carries nothing: it maps to 0.
        return vectors.mean(axis=0), np.where(std > 1e-12, std, 1.0)

    def model_input(self, vector: np.ndarray) -> np.ndarray:
        """``vector`` as the model receives it: standardised when ``standardize``."""
        if not self.standardize:
            return vector
        mean, std = self._moments
        return ((vector - mean) / std).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class SpaceShape:
    """An embedding space as the model and the batch see it: name, vector dimension, and
    the most slots of it one example holds."""

    name: str
    dim: int
    max_slots: int


def table_dim(name: str, path: str) -> int:
    """The vector dimension of an embedding table (``.npz`` with ``vectors``, or ``.npy``),
    read from the array header without loading the vectors."""
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"data.spaces.{name}.table: no file {path}; build the tables first "
            f"(python -m launch.prepare_data --config=...)")

    def header(handle) -> tuple[int, ...]:
        version = np.lib.format.read_magic(handle)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        return read(handle)[0]

    try:
        if path.endswith(".npz"):
            with zipfile.ZipFile(path) as archive, archive.open("vectors.npy") as handle:
                shape = header(handle)
        else:
            with open(path, "rb") as handle:
                shape = header(handle)
    except (KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"data.spaces.{name}.table: cannot read the vectors' shape from {path}: "
                         f"{error}") from None
    if len(shape) != 2:
        raise ValueError(f"data.spaces.{name}.table: {path} holds vectors of shape {shape}; "
                         f"expected [entities, dim]")
    return int(shape[1])


def model_spaces(data_config) -> tuple[SpaceShape, ...]:
    """The embedding spaces of a config's ``data`` section, sorted by name: the synthetic
    space for ``source=synthetic``, else every ``data.spaces`` entry with the dimension of
    its table (from the file header) or its ``dim``."""
    if data_config.source == "synthetic":
        synthetic = data_config.synthetic
        return (SpaceShape(synthetic.space, int(synthetic.dim), 1),)
    spaces = []
    for name, spec in data_config.spaces.items():
        dim = int(spec.get("dim") or 0)
        if spec.get("table"):
            stored = table_dim(name, spec["table"])
            if dim and dim != stored:
                raise ValueError(f"data.spaces.{name}.dim is {dim} but its table {spec['table']} "
                                 f"holds {stored}-d vectors")
            dim = stored
        if not dim:
            raise ValueError(f"data.spaces.{name} needs a table or a dim")
        spaces.append(SpaceShape(name, dim, int(spec.get("max_slots", 1))))
    if not spaces:
        raise ValueError("data.spaces is empty: an ELM needs at least one embedding space")
    return tuple(sorted(spaces, key=lambda s: s.name))
