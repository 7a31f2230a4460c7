"""Describe-the-entity: an ELM over embeddings you bring yourself.

Input: an embedding table (``.npz`` with ``ids`` and ``vectors``, or ``.npy`` plus an ids
file) and a JSONL of ``{"id", "text"}`` descriptions. The ELM learns to write an entity's
description from its vector; evaluation asks it about entities held out whole.

Modules: :mod:`.inputs` (reading and checking the input), :mod:`.phrasings` (the prompts),
:mod:`.split` (held-out entities), :mod:`.prepare` (the data directory),
:mod:`.evaluation` (generate and score, with :mod:`elc.evaluation.chrf`), :mod:`.report`
(report.md), :mod:`.example` (a table and texts built offline, for a first run).
"""

# The embedding space's name in data.spaces and in the prompts' slots (<entity>).
SPACE = "entity"
TASK = "describe"
