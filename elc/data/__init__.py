"""Examples, embedding tables and the encoding of both into training batches."""

from elc.data.vector_table import VectorTable
from elc.data.example_encoder import ExampleEncoder
from elc.data.examples import Example, TfdsExampleSource, read_jsonl
from elc.data.iterator import BatchIterator
from elc.data.space_spec import SpaceSpec
from elc.data.synthetic import naming_task

__all__ = ["BatchIterator", "VectorTable", "Example", "ExampleEncoder", "SpaceSpec",
           "TfdsExampleSource", "naming_task", "read_jsonl"]
