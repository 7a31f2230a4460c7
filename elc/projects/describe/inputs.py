"""Reads and checks what a user brings: an embedding table and a JSONL of descriptions.

Every problem is a ValueError (or FileNotFoundError) naming the file, the line or the id.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile

from elc.data.vector_table import VectorTable
from elc.text_files import open_text

_SHOWN = 5  # ids named in an error about many ids


@dataclasses.dataclass
class DescribeInputs:
    """The entities, each with one vector and one description.

    Attributes:
      table: the vectors, one row per entity (rows in the table's order).
      texts: entity id -> description, for exactly the table's ids.
    """

    table: VectorTable
    texts: dict[str, str]


def _some(ids) -> str:
    ids = list(ids)
    shown = ", ".join(repr(i) for i in ids[:_SHOWN])
    return shown + (f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else "")


def read_texts(path: str) -> dict[str, str]:
    """entity id -> description from a JSONL file of ``{"id": ..., "text": ...}`` lines.

    Ids may be strings or integers (compared as strings); blank lines are skipped.
    Errors name ``path:line``: an unreadable file, invalid JSON, a line without ``id`` or
    ``text``, an empty text, an id given twice.
    """
    path = os.fspath(path)
    if not path:
        raise ValueError("no descriptions file: set --config.prepare.texts=FILE.jsonl (one "
                         '{"id": ..., "text": ...} object per line)')
    if not os.path.isfile(path):
        raise FileNotFoundError(f"descriptions file not found: {path}")
    texts: dict[str, str] = {}
    lines: dict[str, int] = {}
    try:
        with open_text(path) as f:
            raw_lines = f.readlines()
    except OSError as error:
        raise ValueError(f"descriptions file {path} cannot be read: {error}") from None
    for number, line in enumerate(raw_lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: invalid JSON ({error})") from None
        if not isinstance(record, dict) or "id" not in record or "text" not in record:
            raise ValueError(f"{where}: expected an object with keys 'id' and 'text', got "
                             f"{line.strip()[:80]!r}")
        entity, text = record["id"], record["text"]
        if isinstance(entity, bool) or not isinstance(entity, (str, int)) or str(entity) == "":
            raise ValueError(f"{where}: id must be a non-empty string or an integer, got "
                             f"{entity!r}")
        entity = str(entity)
        if not isinstance(text, str):
            raise ValueError(f"{where}: the text of id {entity!r} must be a string, got "
                             f"{type(text).__name__}")
        if not text.strip():
            raise ValueError(f"{where}: the text of id {entity!r} is empty")
        if entity in texts:
            raise ValueError(f"{where}: id {entity!r} appears twice (lines {lines[entity]} and "
                             f"{number}); each entity needs exactly one description")
        texts[entity], lines[entity] = text.strip(), number
    if not texts:
        raise ValueError(f"descriptions file {path} holds no descriptions")
    return texts


def read_table(table: str, ids: str = "", name: str = "entity") -> VectorTable:
    """The embedding table at ``table`` (``.npz``, or ``.npy`` with the ids file ``ids``)."""
    if not table:
        raise ValueError("no embedding table: set --config.prepare.table=FILE (.npz with 'ids' "
                         "and 'vectors', or .npy with --config.prepare.ids=FILE)")
    try:
        return VectorTable.load(name, table, ids or None)
    except FileNotFoundError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile) as error:  # a truncated or non-numpy file
        raise ValueError(f"embedding table {table} cannot be read: {error}") from None
    except ValueError as error:
        if str(error).startswith((table, "embedding table", "ids file")):
            raise
        raise ValueError(f"embedding table {table} cannot be read: {error}") from None


def load_inputs(table: str, texts: str, ids: str = "", dim: int = 0,
                name: str = "entity") -> DescribeInputs:
    """Reads the table and the descriptions and checks that they describe the same
    entities; ``dim`` > 0 is the dimension the vectors must have."""
    vectors = read_table(table, ids, name)
    if dim and vectors.dim != dim:
        raise ValueError(f"embedding table {table} holds {vectors.dim}-d vectors but "
                         f"prepare.dim is {dim}")
    if len(vectors) < 2:
        raise ValueError(f"embedding table {table} holds {len(vectors)} entity; at least 2 are "
                         "needed (one to train on, one to hold out)")
    descriptions = read_texts(texts)
    no_text = [i for i in vectors.ids if i not in descriptions]
    if no_text:
        raise ValueError(f"{len(no_text)} id(s) of embedding table {table} have no description "
                         f"in {texts}: {_some(no_text)}")
    known = set(vectors.ids)
    no_vector = [i for i in descriptions if i not in known]
    if no_vector:
        raise ValueError(f"{len(no_vector)} id(s) of {texts} are missing from embedding table "
                         f"{table}: {_some(no_vector)}")
    return DescribeInputs(vectors, {i: descriptions[i] for i in vectors.ids})
