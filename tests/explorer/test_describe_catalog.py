"""The explorer's view of a describe run: its one space, task and description texts."""

import numpy as np

from elc.projects.describe.explorer import describe_catalog
from elc.projects.describe.prepare import prepare_describe, read_prepared
from elc.vectors.minilm import SentenceEncoder
from helpers import describe_config, write_describe_inputs


def test_the_catalog_holds_the_table_texts_and_split(tmp_path):
    table, texts = write_describe_inputs(tmp_path, count=8)
    config = describe_config(tmp_path, table, texts, holdout=0.25)
    prepare_describe(config.prepare, config.prepare.out_dir)
    encoder = SentenceEncoder.from_package()
    catalog = describe_catalog(config, encoder, lambda message: None)
    space = catalog.space("entity")
    assert space.ids == [f"e{i}" for i in range(8)]
    assert space.labels[3] == "e3: Entity number e3."
    _, split = read_prepared(config.prepare.out_dir)
    assert [i for i, s in zip(space.ids, space.facts["split"]) if s == "held out"] == sorted(
        split.eval, key=space.ids.index)
    # Each entity's text vector is MiniLM's of its own description.
    np.testing.assert_allclose(space.texts[5], encoder.encode(["Entity number e5."])[0],
                               atol=1e-5)
    assert catalog.tasks_for("entity") == ["describe"]
    assert catalog.task("describe", "entity").prompt("entity") == "Describe <entity>."
    assert catalog.directions == {}
