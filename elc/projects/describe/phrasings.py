"""The prompts that ask for an entity's description; ``<entity>`` is its vector's slot."""

from __future__ import annotations

import numpy as np

from elc.data.examples import Example
from elc.projects.describe import SPACE, TASK

PHRASINGS = (
    f"Describe <{SPACE}>.",
    f"What is <{SPACE}>? Give a short description.",
    f"Write a description of <{SPACE}>.",
    f"Tell me about <{SPACE}>.",
    f"Here is an entity: <{SPACE}>. Describe it.",
    f"In a few words, what is <{SPACE}>?",
)


def describe_examples(ids, texts: dict[str, str], per_entity: int, seed: int) -> list[Example]:
    """``per_entity`` examples for every id (distinct phrasings, chosen at random with
    ``seed``): prompt a phrasing, target the entity's text, the slot its id."""
    if not 1 <= per_entity <= len(PHRASINGS):
        raise ValueError(f"prepare.phrasings_per_entity is {per_entity}; expected 1.."
                         f"{len(PHRASINGS)} (there are {len(PHRASINGS)} phrasings)")
    rng = np.random.default_rng(seed)
    examples = []
    for entity in ids:
        for index in rng.choice(len(PHRASINGS), size=per_entity, replace=False):
            examples.append(Example(PHRASINGS[int(index)], texts[entity], {SPACE: entity},
                                    task=TASK))
    return examples
