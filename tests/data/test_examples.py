"""Example validation and JSONL reading, with file:line in every error."""

import json

import pytest

from elc.data.examples import Example, read_jsonl


def test_example_stores_ids_as_strings_and_vectors_as_floats():
    example = Example("<movie> and <vec>", "t", {"movie": 50, "vec": [1, 2.5]})
    assert example.slots == {"movie": "50", "vec": [1.0, 2.5]}
    assert isinstance(example.slots["vec"][0], float)


@pytest.mark.parametrize("kwargs, message", [
    (dict(prompt=3, target="t"), r"prompt must be a string, got int"),
    (dict(prompt="p", target=None), r"target must be a string, got NoneType"),
    (dict(prompt="p", target="t", slots=[1, 2]), r"slots must be an object.*got list"),
    (dict(prompt="p", target="t", slots={"movie": True}), r"slot 'movie' must be an entity id"),
    (dict(prompt="p", target="t", slots={"vec": []}), r"slot 'vec' must be .*non-empty list"),
    (dict(prompt="p", target="t", slots={"vec": [1, "2"]}), r"slot 'vec' must be"),
    (dict(prompt="p", target="t", slots={"vec": {"x": 1}}), r"slot 'vec' must be"),
])
def test_example_type_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Example(**kwargs)


def test_read_jsonl_skips_blank_lines_and_records_origins(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"prompt": "Hi <movie>", "target": "ok", "slots": {"movie": 7}})
                    + "\n\n   \n"
                    + json.dumps({"prompt": "<v>", "target": "é", "slots": {"v": [0.5]},
                                  "task": "naming"}) + "\n")
    first, second = read_jsonl(path)
    assert first == Example("Hi <movie>", "ok", {"movie": "7"})
    assert second == Example("<v>", "é", {"v": [0.5]}, task="naming")
    assert first.origin == f"{path}:1" and second.origin == f"{path}:4"


@pytest.mark.parametrize("line, message", [
    ('{"prompt": "p", "target": ', r"train.jsonl:2: invalid JSON: Expecting value at column 27"),
    ('[1, 2]', r"train.jsonl:2: expected an object .* got list"),
    ('{"prompt": "p", "target": "t"}', r"train.jsonl:2: missing keys \['slots'\], unexpected "
                                       r"keys \[\]"),
    ('{"prompt": "p", "target": "t", "slots": {}, "id": 4}',
     r"train.jsonl:2: missing keys \[\], unexpected keys \['id'\]"),
    ('{"prompt": "p", "target": 5, "slots": {}}', r"train.jsonl:2: target must be a string"),
    ('{"prompt": "p", "target": "t", "slots": {}, "task": 3}',
     r"train.jsonl:2: task must be a string, got int"),
    ('{"prompt": "p", "target": "t", "slots": {"m": null}}', r"train.jsonl:2: slot 'm' must be"),
])
def test_read_jsonl_errors_name_the_line(tmp_path, line, message):
    path = tmp_path / "train.jsonl"
    path.write_text('{"prompt": "ok", "target": "ok", "slots": {}}\n' + line + "\n")
    with pytest.raises(ValueError, match=message):
        read_jsonl(path)


def test_read_jsonl_rejects_non_utf8_and_missing_files(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b'\n{"prompt": "\xff", "target": "t", "slots": {}}\n')
    with pytest.raises(ValueError, match=r"train.jsonl: not UTF-8 at byte 13 \(line 2: "):
        read_jsonl(path)
    with pytest.raises(FileNotFoundError, match=r"examples file not found: .*missing.jsonl"):
        read_jsonl(tmp_path / "missing.jsonl")
