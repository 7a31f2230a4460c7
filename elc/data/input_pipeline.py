"""Builds the ELM input pipeline (spaces, encoder, train and eval sources) from a config."""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from elc.data.vector_table import VectorTable
from elc.data.example_encoder import ExampleEncoder
from elc.data.space_spec import SpaceSpec, model_spaces
from elc.data.examples import TfdsExampleSource, read_jsonl
from elc.data.synthetic import naming_task
from elc.data.validation import validate_examples
from elc.tokenizers.tokenizer import Tokenizer

SOURCES = ("synthetic", "jsonl", "tfds")


@dataclasses.dataclass
class InputPipeline:
    """What the trainer needs to make batches."""

    spaces: dict[str, SpaceSpec]
    encoder: ExampleEncoder
    train: Sequence[Any]
    eval: Sequence[Any]


def _spaces_from_config(data_config) -> dict[str, SpaceSpec]:
    """The ``data.spaces`` entries with their tables loaded; dims, slots and their checks
    come from ``model_spaces``, as for the model. ``standardize`` (default False) is
    :class:`SpaceSpec`'s."""
    tables = {name: VectorTable.load(name, spec["table"], spec.get("ids") or None)
              for name, spec in data_config.spaces.items() if spec.get("table")}
    shapes = {shape.name: shape for shape in model_spaces(data_config)}
    specs = {}
    for name, spec in data_config.spaces.items():
        standardize = bool(spec.get("standardize", False))
        if standardize and name not in tables:
            raise ValueError(f"data.spaces.{name}.standardize is True, but the space has no "
                             "table to take the mean and standard deviation from; set "
                             f"data.spaces.{name}.table or standardize=False")
        specs[name] = SpaceSpec(dim=shapes[name].dim, max_slots=shapes[name].max_slots,
                                table=tables.get(name), standardize=standardize)
    return specs


def build_input_pipeline(data_config, tokenizer: Tokenizer, num_soft_tokens: int) -> InputPipeline:
    """``data_config`` is a config's ``data`` section (see configs/tiny_elm.py)."""
    source = data_config.source
    if source not in SOURCES:
        raise ValueError(f"data.source is {source!r}; expected one of {SOURCES}")
    if data_config.examples_per_row < 1:
        raise ValueError(f"data.examples_per_row={data_config.examples_per_row} must be >= 1 "
                         "(1: no packing)")
    if not 0 <= data_config.max_target_tokens <= data_config.max_length:
        raise ValueError(f"data.max_target_tokens={data_config.max_target_tokens} must be in "
                         f"[0, data.max_length={data_config.max_length}] (0: measured from "
                         "the data)")
    if source == "synthetic":
        synthetic = data_config.synthetic
        train, evaluation = naming_task(
            num_entities=synthetic.num_entities, dim=synthetic.dim, noise=synthetic.noise,
            train_size=synthetic.train_size, eval_size=synthetic.eval_size, seed=synthetic.seed,
            space=synthetic.space)
        spaces = {s.name: SpaceSpec(dim=s.dim, max_slots=s.max_slots)
                  for s in model_spaces(data_config)}
    else:
        spaces = _spaces_from_config(data_config)
        if source == "jsonl":
            train, evaluation = read_jsonl(data_config.train), read_jsonl(data_config.eval)
        else:
            train = TfdsExampleSource(data_config.tfds_name, data_config.train,
                                      data_config.tfds_data_dir or None)
            evaluation = TfdsExampleSource(data_config.tfds_name, data_config.eval,
                                           data_config.tfds_data_dir or None)
    encoder = ExampleEncoder(tokenizer, spaces, num_soft_tokens=num_soft_tokens,
                             max_length=data_config.max_length,
                             prompt_template=data_config.prompt_template,
                             examples_per_row=data_config.examples_per_row)
    if source != "synthetic":  # every example checked now, not when a batch reaches it
        validate_examples(train, encoder, f"train examples ({data_config.train})")
        validate_examples(evaluation, encoder, f"eval examples ({data_config.eval})")
    return InputPipeline(spaces=spaces, encoder=encoder, train=train, eval=evaluation)
