"""The explorer's view of a describe run: the table of your own embeddings and its one
task, with each entity's description as the text its answers are compared with."""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from elc.data.vector_table import VectorTable
from elc.explorer.catalog import Catalog, Space, Task
from elc.projects.describe import SPACE, TASK
from elc.projects.describe.phrasings import PHRASINGS
from elc.projects.describe.prepare import read_prepared

_LABEL_CHARACTERS = 40  # of the description, shown after the id


def describe_catalog(config, text_encoder, progress: Callable[[str], None]) -> Catalog:
    """The entity space and the describe task of the run ``config`` describes, read from
    its prepared data (``prepare.out_dir``); ``text_encoder`` (the config's sentence
    encoder) embeds the descriptions."""
    out_dir = config.prepare.out_dir
    progress(f"reading the table and descriptions in {out_dir}")
    texts, split = read_prepared(out_dir)
    table = VectorTable.load(SPACE, os.path.join(out_dir, f"{SPACE}.npz"))
    held_out = set(split.eval)
    progress(f"embedding {len(table.ids)} descriptions")
    encoded = text_encoder.encode([texts[i] for i in table.ids])
    labels = [f"{i}: {texts[i][:_LABEL_CHARACTERS]}" for i in table.ids]
    space = Space(SPACE, "entity", list(table.ids), labels,
                  np.asarray(table.vectors, np.float32),
                  {"split": ["held out" if i in held_out else "train" for i in table.ids]},
                  np.asarray(encoded, np.float32))
    task = Task(TASK, "entity", lambda name: PHRASINGS[0].replace(f"<{SPACE}>", f"<{name}>"))
    return Catalog("describe", {SPACE: space}, {TASK: task}, {})
