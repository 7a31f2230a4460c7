"""Builds the describe project's data directory from a user's table and descriptions.

Writes into ``prepare.out_dir``: ``entity.npz`` (the table, whatever format it came in),
``texts.jsonl`` (every entity's description, the catalogue evaluation ranks against),
``split.json`` (training and held-out ids), ``train.jsonl`` / ``eval.jsonl`` (the examples,
in the format ``data.*`` reads) and ``report.json``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from elc.data.examples import Example
from elc.projects.describe import SPACE
from elc.projects.describe.inputs import DescribeInputs, load_inputs
from elc.projects.describe.phrasings import describe_examples
from elc.projects.describe.split import Split, hold_out

TABLE_FILE = f"{SPACE}.npz"
TEXTS_FILE = "texts.jsonl"
SPLIT_FILE = "split.json"


def write_examples(path: str, examples: list[Example]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for e in examples:
            f.write(json.dumps({"prompt": e.prompt, "target": e.target, "slots": e.slots,
                                "task": e.task}) + "\n")


def read_prepared(out_dir: str) -> tuple[dict[str, str], Split]:
    """The descriptions (id -> text, in table order) and the split that ``prepare`` wrote."""
    texts_path, split_path = os.path.join(out_dir, TEXTS_FILE), os.path.join(out_dir, SPLIT_FILE)
    for path in (texts_path, split_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} not found: prepare the data first (python -m "
                                    "launch.prepare_data --config=configs/describe.py ...)")
    with open(texts_path, encoding="utf-8") as f:
        texts = {r["id"]: r["text"] for r in map(json.loads, filter(str.strip, f))}
    with open(split_path) as f:
        split = json.load(f)
    return texts, Split(train=split["train"], eval=split["eval"])


def prepare_describe(prepare: Any, out_dir: str) -> dict[str, Any]:
    """Reads ``prepare.table`` (+ ``prepare.ids``) and ``prepare.texts``, holds out
    ``prepare.holdout`` of the entities (seed ``prepare.seed``), writes the files above and
    returns the report (also ``report.json``)."""
    start = time.time()
    inputs: DescribeInputs = load_inputs(prepare.table, prepare.texts, prepare.ids, prepare.dim,
                                         SPACE)
    split = hold_out(inputs.table.ids, prepare.holdout, prepare.seed)
    os.makedirs(out_dir, exist_ok=True)
    report_path = os.path.join(out_dir, "report.json")
    if os.path.exists(report_path):  # marks a finished preparation; gone until this one is
        os.remove(report_path)
    inputs.table.save(os.path.join(out_dir, TABLE_FILE))
    with open(os.path.join(out_dir, TEXTS_FILE), "w", encoding="utf-8") as f:
        for entity, text in inputs.texts.items():
            f.write(json.dumps({"id": entity, "text": text}) + "\n")
    with open(os.path.join(out_dir, SPLIT_FILE), "w") as f:
        json.dump({"train": split.train, "eval": split.eval}, f)
    examples = {
        "train": describe_examples(split.train, inputs.texts, prepare.phrasings_per_entity,
                                   prepare.seed),
        "eval": describe_examples(split.eval, inputs.texts, prepare.phrasings_per_entity,
                                  prepare.seed + 1),
    }
    for part, part_examples in examples.items():
        write_examples(os.path.join(out_dir, f"{part}.jsonl"), part_examples)
    lengths = [len(t) for t in inputs.texts.values()]
    report = {
        "prepare": json.loads(json.dumps(prepare.to_dict())),
        "entities": len(inputs.table), "dim": inputs.table.dim,
        "held_out": len(split.eval),
        "examples": {part: len(e) for part, e in examples.items()},
        "text_chars": {"min": min(lengths), "mean": round(sum(lengths) / len(lengths), 1),
                       "max": max(lengths)},
        "seconds": round(time.time() - start, 2),
        "files": sorted([*os.listdir(out_dir), "report.json"]),
    }
    with open(report_path, "w") as f:
        json.dump(report, f, indent=2)
    return report
