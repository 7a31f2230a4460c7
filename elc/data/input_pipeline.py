"""Builds the ELM input pipeline (spaces, encoder, train and eval sources) from a config."""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from elc.data.vector_table import VectorTable
from elc.data.example_encoder import ExampleEncoder
from elc.data.space_spec import SpaceSpec
from elc.data.examples import TfdsExampleSource, read_jsonl
from elc.data.synthetic import naming_task
from elc.tokenizers.tokenizer import Tokenizer

SOURCES = ("synthetic", "jsonl", "tfds")


@dataclasses.dataclass
class InputPipeline:
    """What the trainer needs to make batches."""

    spaces: dict[str, SpaceSpec]
    encoder: ExampleEncoder
    train: Sequence[Any]
    eval: Sequence[Any]


def _spaces_from_config(spaces_config) -> dict[str, SpaceSpec]:
    spaces = {}
    for name, spec in spaces_config.items():
        table = None
        if spec.get("table"):
            table = VectorTable.load(name, spec["table"], spec.get("ids") or None)
        dim = int(spec.get("dim") or 0)
        if table is not None and dim and dim != table.dim:
            raise ValueError(f"data.spaces.{name}.dim is {dim} but its table {spec['table']} "
                             f"holds {table.dim}-d vectors")
        if table is None and not dim:
            raise ValueError(f"data.spaces.{name} needs a table or a dim")
        spaces[name] = SpaceSpec(dim=dim or table.dim, max_slots=int(spec.get("max_slots", 1)),
                                 table=table)
    if not spaces:
        raise ValueError("data.spaces is empty: an ELM needs at least one embedding space")
    return spaces


def build_input_pipeline(data_config, tokenizer: Tokenizer, num_soft_tokens: int) -> InputPipeline:
    """``data_config`` is a config's ``data`` section (see configs/tiny_elm.py)."""
    source = data_config.source
    if source not in SOURCES:
        raise ValueError(f"data.source is {source!r}; expected one of {SOURCES}")
    if source == "synthetic":
        synthetic = data_config.synthetic
        train, evaluation = naming_task(
            num_entities=synthetic.num_entities, dim=synthetic.dim, noise=synthetic.noise,
            train_size=synthetic.train_size, eval_size=synthetic.eval_size, seed=synthetic.seed,
            space=synthetic.space)
        spaces = {synthetic.space: SpaceSpec(dim=synthetic.dim, max_slots=1, table=None)}
    else:
        spaces = _spaces_from_config(data_config.spaces)
        if source == "jsonl":
            train, evaluation = read_jsonl(data_config.train), read_jsonl(data_config.eval)
        else:
            train = TfdsExampleSource(data_config.tfds_name, data_config.train,
                                      data_config.tfds_data_dir or None)
            evaluation = TfdsExampleSource(data_config.tfds_name, data_config.eval,
                                           data_config.tfds_data_dir or None)
    encoder = ExampleEncoder(tokenizer, spaces, num_soft_tokens=num_soft_tokens,
                             max_length=data_config.max_length,
                             prompt_template=data_config.prompt_template)
    return InputPipeline(spaces=spaces, encoder=encoder, train=train, eval=evaluation)
