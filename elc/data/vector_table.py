"""A named table of vectors keyed by entity id: one embedding space's entities."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from elc.text_files import open_text


@dataclasses.dataclass(eq=False)
class VectorTable:
    """The vectors of one embedding space, one row per entity.

    Ids are compared as strings, so the entity ``50`` and ``"50"`` are the same.

    Attributes:
      name: the space's name, used in error messages.
      ids: entity ids, one per row of ``vectors``.
      vectors: float32 [N, d].
    """

    name: str
    ids: list[str]
    vectors: np.ndarray
    _rows: dict[str, int] = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        vectors = np.asarray(self.vectors)
        if vectors.ndim != 2 or not (np.issubdtype(vectors.dtype, np.integer)
                                     or np.issubdtype(vectors.dtype, np.floating)):
            raise ValueError(f"embedding table {self.name!r}: vectors must be a 2-D numeric array "
                             f"[entities, dim], got shape {vectors.shape} of dtype {vectors.dtype}")
        with np.errstate(over="ignore"):  # overflow shows up as inf, reported below
            self.vectors = vectors.astype(np.float32)
        self.ids = [str(i) for i in self.ids]
        if len(self.ids) != len(self.vectors):
            raise ValueError(f"embedding table {self.name!r}: {len(self.ids)} ids for "
                             f"{len(self.vectors)} vector rows; expected one id per row")
        self._rows = {}
        for row, entity in enumerate(self.ids):
            if entity in self._rows:
                raise ValueError(f"embedding table {self.name!r}: entity id {entity!r} appears "
                                 f"twice (rows {self._rows[entity]} and {row}); ids must be unique")
            self._rows[entity] = row
        bad_rows = np.flatnonzero(~np.isfinite(self.vectors).all(axis=1))
        if bad_rows.size:
            row = int(bad_rows[0])
            raise ValueError(f"embedding table {self.name!r}: the vector of entity "
                             f"{self.ids[row]!r} (row {row}) has non-finite values; "
                             f"{bad_rows.size} row(s) in all; expected finite float32 values")

    @property
    def dim(self) -> int:
        """The dimension d of the vectors."""
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return len(self.ids)

    def index_of(self, entity_id: str | int) -> int:
        """The row of ``entity_id``; ValueError when the space lacks it."""
        row = self._rows.get(str(entity_id))
        if row is None:
            examples = ", ".join(repr(i) for i in self.ids[:3])
            raise ValueError(f"entity id {str(entity_id)!r} is not in embedding space "
                             f"{self.name!r} ({len(self.ids)} entities, e.g. {examples})")
        return row

    def lookup(self, entity_id: str | int) -> np.ndarray:
        """The float32 [d] vector of ``entity_id``; ValueError when the space lacks it."""
        return self.vectors[self.index_of(entity_id)]

    @classmethod
    def load(cls, name: str, path: str | os.PathLike,
             ids_path: str | os.PathLike | None = None) -> "VectorTable":
        """Reads a table from ``.npz`` (arrays ``ids`` and ``vectors``), or from ``.npy``
        vectors plus ``ids_path``: a ``.txt`` file with one id per line or a ``.json`` list."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"embedding table of space {name!r} not found: {path}")
        if path.endswith(".npz"):
            if ids_path is not None:
                raise ValueError(f"embedding table {path} is .npz and holds its own ids; "
                                 f"ids_path {os.fspath(ids_path)} is only for .npy tables")
            with np.load(path, allow_pickle=False) as archive:
                missing = {"ids", "vectors"} - set(archive.files)
                if missing:
                    raise ValueError(f"embedding table {path} lacks array(s) {sorted(missing)}; "
                                     f"it holds {sorted(archive.files)}, expected 'ids' and "
                                     "'vectors'")
                ids, vectors = archive["ids"].tolist(), archive["vectors"]
        elif path.endswith(".npy"):
            if ids_path is None:
                raise ValueError(f"embedding table {path} is .npy: give ids_path, a .txt file "
                                 "with one id per line or a .json list")
            ids, vectors = _read_ids(os.fspath(ids_path)), np.load(path, allow_pickle=False)
        else:
            raise ValueError(f"embedding table {path}: expected a .npz file, or .npy with an ids "
                             "file")
        try:
            return cls(name, ids, vectors)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None

    def save(self, path: str | os.PathLike) -> None:
        """Writes ``ids`` and ``vectors`` to an ``.npz`` file that :meth:`load` reads."""
        path = os.fspath(path)
        if not path.endswith(".npz"):
            raise ValueError(f"embedding tables are saved as .npz; got path {path}")
        with open(path, "wb") as f:  # np.savez on a file name would append ".npz" itself
            np.savez(f, ids=np.array(self.ids, dtype=str), vectors=self.vectors)


def _read_ids(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ids file not found: {path}")
    with open_text(path) as f:
        if path.endswith(".txt"):
            return [line.strip() for line in f if line.strip()]
        if not path.endswith(".json"):
            raise ValueError(f"ids file {path}: expected .txt (one id per line) or .json (a list)")
        try:
            ids = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"ids file {path}: invalid JSON ({error})") from None
    if not isinstance(ids, list) or not all(
            isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids):
        raise ValueError(f"ids file {path}: expected a JSON list of strings or integers")
    return ids
