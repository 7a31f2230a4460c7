"""VectorTable: validation, lookup, and the .npz / .npy + ids file formats."""

import json

import numpy as np
import pytest

from elc.data.vector_table import VectorTable

VECTORS = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])


def test_lookup_compares_ids_as_strings():
    table = VectorTable("movie", [50, "7", "x"], VECTORS)
    assert table.dim == 2 and len(table) == 3
    assert table.ids == ["50", "7", "x"]
    assert table.vectors.dtype == np.float32
    np.testing.assert_array_equal(table.lookup(50), [1.0, 2.0])
    np.testing.assert_array_equal(table.lookup("50"), [1.0, 2.0])
    np.testing.assert_array_equal(table.lookup(7), [3.0, 4.0])
    assert table.index_of("x") == 2 and table.index_of(7) == 1


def test_lookup_of_a_missing_id_names_it_and_the_space():
    table = VectorTable("movie", ["1", "2", "3"], VECTORS)
    with pytest.raises(ValueError, match=r"entity id '99' is not in embedding space 'movie'"):
        table.lookup(99)
    with pytest.raises(ValueError, match=r"entity id '0' is not in embedding space 'movie'"):
        table.index_of(0)


@pytest.mark.parametrize("ids, vectors, message", [
    (["a", "b", "c"], np.ones(3), r"'movie'.*2-D numeric array.*shape \(3,\)"),
    (["a", "b", "c"], np.array([["x"], ["y"], ["z"]]), r"2-D numeric array.*dtype <U1"),
    (["a", "b"], VECTORS, r"'movie': 2 ids for 3 vector rows"),
    (["a", "b", "a"], VECTORS, r"'movie': entity id 'a' appears twice \(rows 0 and 2\)"),
    ([1, "1", 2], VECTORS, r"entity id '1' appears twice"),
    (["a", "b", "c"], [[1, 2], [3, np.nan], [np.inf, 0]],
     r"'movie': the vector of entity 'b' \(row 1\) has non-finite values; 2 row"),
    (["a", "b", "c"], [[1, 2], [3, 1e300], [0, 0]], r"entity 'b' \(row 1\) has non-finite"),
])
def test_construction_errors(ids, vectors, message):
    with pytest.raises(ValueError, match=message):
        VectorTable("movie", ids, vectors)


def test_npz_round_trip(tmp_path):
    path = str(tmp_path / "movies.npz")
    VectorTable("movie", ["10", "20", "30"], VECTORS).save(path)
    loaded = VectorTable.load("movie", path)
    assert loaded.name == "movie" and loaded.ids == ["10", "20", "30"]
    np.testing.assert_array_equal(loaded.vectors, VECTORS.astype(np.float32))


def test_npz_with_integer_ids(tmp_path):
    path = tmp_path / "movies.npz"
    np.savez(path, ids=np.array([10, 20, 30]), vectors=VECTORS)
    np.testing.assert_array_equal(VectorTable.load("movie", path).lookup("20"), [3.0, 4.0])


@pytest.mark.parametrize("ids_name, ids_text", [
    ("ids.txt", "10\n20\n30\n"),
    ("ids.json", json.dumps([10, "20", "30"])),
])
def test_npy_with_an_ids_file(tmp_path, ids_name, ids_text):
    np.save(tmp_path / "vectors.npy", VECTORS)
    (tmp_path / ids_name).write_text(ids_text)
    table = VectorTable.load("movie", tmp_path / "vectors.npy", tmp_path / ids_name)
    assert table.ids == ["10", "20", "30"]
    np.testing.assert_array_equal(table.lookup(30), [5.0, 6.0])


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"space 'movie' not found: .*nope.npz"):
        VectorTable.load("movie", tmp_path / "nope.npz")
    np.save(tmp_path / "vectors.npy", VECTORS)
    with pytest.raises(ValueError, match=r"vectors.npy is .npy: give ids_path"):
        VectorTable.load("movie", tmp_path / "vectors.npy")
    with pytest.raises(FileNotFoundError, match=r"ids file not found: .*ids.txt"):
        VectorTable.load("movie", tmp_path / "vectors.npy", tmp_path / "ids.txt")
    (tmp_path / "ids.txt").write_text("1\n2\n")
    with pytest.raises(ValueError, match=r"vectors.npy: embedding table 'movie': 2 ids for 3"):
        VectorTable.load("movie", tmp_path / "vectors.npy", tmp_path / "ids.txt")
    (tmp_path / "ids.txt").write_bytes(b"1\n2\n\xe9\n")  # Latin-1
    with pytest.raises(ValueError, match=r"ids.txt: not UTF-8 at byte 4 \(line 3: "):
        VectorTable.load("movie", tmp_path / "vectors.npy", tmp_path / "ids.txt")
    (tmp_path / "ids.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match=r"ids.json: expected a JSON list"):
        VectorTable.load("movie", tmp_path / "vectors.npy", tmp_path / "ids.json")
    np.savez(tmp_path / "bad.npz", vectors=VECTORS)
    with pytest.raises(ValueError, match=r"bad.npz lacks array\(s\) \['ids'\]"):
        VectorTable.load("movie", tmp_path / "bad.npz")
    (tmp_path / "table.csv").write_text("1,2\n")
    with pytest.raises(ValueError, match=r"table.csv: expected a .npz file"):
        VectorTable.load("movie", tmp_path / "table.csv")
    with pytest.raises(ValueError, match=r"saved as .npz; got path .*table.npy"):
        VectorTable("movie", ["1", "2", "3"], VECTORS).save(tmp_path / "table.npy")
