"""How an encoder treats one embedding space."""

from __future__ import annotations

import dataclasses

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
    """

    dim: int
    max_slots: int = 1
    table: VectorTable | None = None

    def __post_init__(self):
        if self.dim < 1 or self.max_slots < 1:
            raise ValueError(f"SpaceSpec needs dim >= 1 and max_slots >= 1, got dim {self.dim} "
                             f"and max_slots {self.max_slots}")
        if self.table is not None and self.table.dim != self.dim:
            raise ValueError(f"SpaceSpec has dim {self.dim} but its table {self.table.name!r} "
                             f"holds {self.table.dim}-d vectors")
