"""TfdsExampleSource reads an ArrayRecord TFDS dataset without TensorFlow."""

import json

import pytest
import tensorflow_datasets as tfds

from elc.data.examples import Example, TfdsExampleSource

GOOD = [
    {"prompt": "Describe <movie>.", "target": "A heist film.", "slots": {"movie": 50}},
    {"prompt": "Compare <movie:a> with <movie:b>", "target": "Both are long.",
     "slots": {"movie:a": "1", "movie:b": [0.25, -1.0]}},
]


class ElcTinyExamples(tfds.core.GeneratorBasedBuilder):
    """Records as TfdsExampleSource reads them: valid ones in train, broken slots JSON in bad."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        text = tfds.features.Text()
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
            {"prompt": text, "target": text, "slots": text}))

    def _split_generators(self, dl_manager):
        bad = {"prompt": "Bad <movie>", "target": "x", "slots": "{not json"}
        return {"train": self._generate_examples([dict(r, slots=json.dumps(r["slots"]))
                                                  for r in GOOD]),
                "bad": self._generate_examples([bad])}

    def _generate_examples(self, records):
        for index, record in enumerate(records):
            yield index, record


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds"))
    ElcTinyExamples(data_dir=path, file_format="array_record").download_and_prepare()
    return path


def test_round_trip(data_dir):
    source = TfdsExampleSource("elc_tiny_examples", "train", data_dir)
    assert len(source) == 2
    # TFDS shuffles records when writing, so compare them in prompt order.
    examples = sorted((source[i] for i in range(len(source))), key=lambda e: e.prompt)
    assert examples == [
        Example("Compare <movie:a> with <movie:b>", "Both are long.",
                {"movie:a": "1", "movie:b": [0.25, -1.0]}),
        Example("Describe <movie>.", "A heist film.", {"movie": "50"}),
    ]
    assert examples[1].origin.startswith("tfds elc_tiny_examples[train] example ")


def test_bad_slots_json_names_the_record(data_dir):
    source = TfdsExampleSource("elc_tiny_examples", "bad", data_dir)
    with pytest.raises(ValueError, match=r"^tfds elc_tiny_examples\[bad\] example 0: the slots "
                                         r"feature is not valid JSON"):
        source[0]
