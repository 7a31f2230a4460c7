"""Writes ELM examples as a TFDS dataset in ArrayRecord, readable without TensorFlow
(see :class:`elc.data.examples.TfdsExampleSource`)."""

from __future__ import annotations

import json
from typing import Sequence

import tensorflow_datasets as tfds

from elc.data.examples import Example

DATASET_NAME = "elc_examples"


class ElcExamples(tfds.core.GeneratorBasedBuilder):
    """Splits of examples with text features ``prompt``, ``target`` and ``slots`` (JSON)."""

    VERSION = tfds.core.Version("1.0.0")

    def __init__(self, *, splits: dict[str, Sequence[Example]] | None = None, **kwargs):
        self._splits = splits or {}
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        text = tfds.features.Text()
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
            {"prompt": text, "target": text, "slots": text}))

    def _split_generators(self, dl_manager):
        del dl_manager
        return {name: self._generate_examples(examples) for name, examples in self._splits.items()}

    def _generate_examples(self, examples):
        for index, example in enumerate(examples):
            yield index, {"prompt": example.prompt, "target": example.target,
                          "slots": json.dumps(example.slots)}


def write_tfds_examples(data_dir: str, splits: dict[str, Sequence[Example]]) -> None:
    """Builds ``elc_examples`` (ArrayRecord) with one split per entry of ``splits``."""
    ElcExamples(splits=splits, data_dir=data_dir, file_format="array_record").download_and_prepare()
