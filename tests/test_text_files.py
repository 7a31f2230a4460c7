"""User text files: the first byte that does not decode is named by file, offset and line."""

import pytest

from elc import text_files
from elc.text_files import TextDecodeError, open_text, read_json, read_text


def test_the_error_names_the_file_byte_and_line_in_any_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(text_files, "_CHUNK", 4)  # the search crosses chunk boundaries
    path = tmp_path / "notes.txt"
    # "é" (2 bytes) and "€" (3 bytes) straddle chunk boundaries and decode; 0xff does not.
    path.write_bytes("ab\né\n€€\n".encode() + b"x\xffy\n")
    with pytest.raises(TextDecodeError, match=r"notes.txt: not UTF-8 at byte 14 \(line 4: "
                                              r"invalid start byte\)"):
        read_text(path)
    with pytest.raises(ValueError, match=r"not UTF-8 at byte 14"):
        with open_text(path) as f:
            list(f)


def test_a_cut_multibyte_character_at_the_end_is_named(tmp_path):
    path = tmp_path / "cut.txt"
    path.write_bytes("ok\n€".encode()[:-1])
    with pytest.raises(TextDecodeError, match=r"cut.txt: not UTF-8 at byte 3 \(line 2: "):
        read_text(path)


def test_other_encodings_and_good_files_read_as_open_does(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes(b"caf\xe9\r\n")
    assert read_text(path, "latin-1") == "café\n"
    with open_text(path, "latin-1", newline="") as f:
        assert f.read() == "café\r\n"


def test_read_json_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(ValueError, match=r"config.json: not UTF-8 at byte 7"):
        read_json(path)
    path.write_text('{"a": ')
    with pytest.raises(ValueError, match=r"config.json is not valid JSON"):
        read_json(path)
    with pytest.raises(FileNotFoundError, match=r"missing.json not found"):
        read_json(tmp_path / "missing.json")
    path.write_text('{"a": [1]}')
    assert read_json(path) == {"a": [1]}
