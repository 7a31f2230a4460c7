"""Bad input is an error naming the value."""

import json

import numpy as np
import pytest

from elc.data.vector_table import VectorTable
from elc.projects.describe.inputs import load_inputs
from elc.projects.describe.split import hold_out


def _texts(tmp_path, records, name="texts.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n"
                            for r in records))
    return str(path)


def _table(tmp_path, ids, dim=3):
    path = tmp_path / "table.npz"
    VectorTable("t", ids, np.zeros((len(ids), dim))).save(path)
    return str(path)


def _ok(ids):
    return [{"id": i, "text": f"about {i}"} for i in ids]


def test_id_missing_from_texts(tmp_path):
    with pytest.raises(ValueError, match=r"1 id\(s\) of embedding table .* have no description "
                                         r".*'c'"):
        load_inputs(_table(tmp_path, ["a", "b", "c"]), _texts(tmp_path, _ok("ab")))


def test_id_missing_from_table(tmp_path):
    with pytest.raises(ValueError, match=r"id\(s\) of .*texts.jsonl are missing from embedding "
                                         r"table .*'z'"):
        load_inputs(_table(tmp_path, ["a", "b"]), _texts(tmp_path, _ok("abz")))


def test_empty_text(tmp_path):
    records = _ok("a") + [{"id": "b", "text": "   "}]
    with pytest.raises(ValueError, match=r"texts.jsonl:2: the text of id 'b' is empty"):
        load_inputs(_table(tmp_path, ["a", "b"]), _texts(tmp_path, records))


def test_duplicate_ids(tmp_path):
    with pytest.raises(ValueError, match=r"texts.jsonl:3: id 'a' appears twice \(lines 1 and 3\)"):
        load_inputs(_table(tmp_path, ["a", "b"]), _texts(tmp_path, _ok("aba")))
    path = tmp_path / "dup.npz"
    with open(path, "wb") as f:
        np.savez(f, ids=np.array(["a", "b", "a"]), vectors=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"entity id 'a' appears twice"):
        load_inputs(str(path), _texts(tmp_path, _ok("ab")))


def test_dimension_mismatch(tmp_path):
    with pytest.raises(ValueError, match=r"holds 3-d vectors but prepare.dim is 8"):
        load_inputs(_table(tmp_path, ["a", "b"]), _texts(tmp_path, _ok("ab")), dim=8)
    np.save(tmp_path / "v.npy", np.zeros((3, 2)))
    (tmp_path / "ids.txt").write_text("a\nb\n")
    with pytest.raises(ValueError, match=r"2 ids for 3 vector rows"):
        load_inputs(str(tmp_path / "v.npy"), _texts(tmp_path, _ok("ab")),
                    ids=str(tmp_path / "ids.txt"))


def test_unreadable_files(tmp_path):
    texts = _texts(tmp_path, _ok("ab"))
    with pytest.raises(FileNotFoundError, match=r"nope.npz"):
        load_inputs(str(tmp_path / "nope.npz"), texts)
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"embedding table .*broken.npz cannot be read"):
        load_inputs(str(tmp_path / "broken.npz"), texts)
    table = _table(tmp_path, ["a", "b"])
    with pytest.raises(FileNotFoundError, match=r"descriptions file not found: .*missing.jsonl"):
        load_inputs(table, str(tmp_path / "missing.jsonl"))
    bad = _texts(tmp_path, _ok("a") + ["{not json"], "bad.jsonl")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: invalid JSON"):
        load_inputs(table, bad)
    no_text = _texts(tmp_path, [{"id": "a", "label": "x"}], "keys.jsonl")
    with pytest.raises(ValueError, match=r"keys.jsonl:1: expected an object with keys 'id' and "
                                         r"'text'"):
        load_inputs(table, no_text)
    (tmp_path / "latin.jsonl").write_bytes(b'{"id": "a", "text": "caf\xe9"}\n')
    with pytest.raises(ValueError, match=r"latin.jsonl: not UTF-8 at byte 24 \(line 1: "):
        load_inputs(table, str(tmp_path / "latin.jsonl"))


def test_unset_paths_and_holdout():
    with pytest.raises(ValueError, match=r"--config.prepare.table"):
        load_inputs("", "texts.jsonl")
    with pytest.raises(ValueError, match=r"prepare.holdout is 1.0"):
        hold_out(["a", "b"], 1.0, 0)
