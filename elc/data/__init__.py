"""Examples, embedding tables and the encoding of both into training batches."""

from elc.data.embedding_table import EmbeddingTable
from elc.data.encoder import ExampleEncoder
from elc.data.examples import Example, TfdsExampleSource, read_jsonl
from elc.data.iterator import BatchIterator
from elc.data.space_spec import SpaceSpec
from elc.data.synthetic import naming_task

__all__ = ["BatchIterator", "EmbeddingTable", "Example", "ExampleEncoder", "SpaceSpec",
           "TfdsExampleSource", "naming_task", "read_jsonl"]
