"""How fast an example file is checked before training, against the floor of any JSONL
reader: ``json.loads`` of every line, timed on the same file in the same run."""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any

from elc.data.example_encoder import ExampleEncoder
from elc.data.examples import read_jsonl
from elc.data.input_pipeline import _spaces_from_config
from elc.data.validation import validate_examples
from elc.tokenizers.tokenizer import Tokenizer


def _repeated_file(source: str, lines: int, directory: str) -> str:
    """A JSONL file of ``lines`` lines cycling through those of ``source``."""
    with open(source, encoding="utf-8") as f:
        sample = [line for line in f if line.strip()]
    path = os.path.join(directory, "examples.jsonl")
    with open(path, "w", encoding="utf-8") as out:
        for index in range(lines):
            out.write(sample[index % len(sample)])
    return path


def run_validation_suite(config, tokenizer: Tokenizer, lines: int) -> list[dict[str, Any]]:
    """Rows (what, seconds, lines/s) for a ``lines``-line copy of the config's train file:
    reading it (JSON, keys, types), checking every example's slots against the config's
    spaces (ids in their tables, vector dimensions and finiteness, slot counts), both
    together, and json.loads alone."""
    data = config.data
    encoder = ExampleEncoder(tokenizer, _spaces_from_config(data),
                             num_soft_tokens=config.model.adapter.num_soft_tokens,
                             max_length=data.max_length, prompt_template=data.prompt_template,
                             examples_per_row=data.examples_per_row)
    with tempfile.TemporaryDirectory() as directory:
        path = _repeated_file(data.train, lines, directory)
        start = time.perf_counter()
        with open(path, encoding="utf-8") as f:
            for line in f:
                json.loads(line)
        floor = time.perf_counter() - start
        start = time.perf_counter()
        examples = read_jsonl(path)
        reading = time.perf_counter() - start
        start = time.perf_counter()
        validate_examples(examples, encoder, "examples")
        checking = time.perf_counter() - start
    return [{"what": what, "seconds": seconds, "lines_per_second": lines / seconds}
            for what, seconds in (("json.loads only (floor)", floor), ("read_jsonl", reading),
                                  ("validate_examples", checking),
                                  ("read + validate", reading + checking))]
