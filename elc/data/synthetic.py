"""A synthetic ELM task for tests and demos: name which of N random vectors was given.

N unit-norm prototype vectors each have a short name. An example holds a noisy copy of
one prototype as an inline vector, and its target is that prototype's name. Train and
eval draw noise from different random streams, so eval vectors are held out.
"""

from __future__ import annotations

import numpy as np

from elc.data.examples import Example
from elc.data.prompt_slots import slot_space

NAMES = (
    "amber", "basil", "cedar", "dune", "ember", "fern", "garnet", "hazel",
    "iris", "jade", "kelp", "lilac", "maple", "nutmeg", "olive", "pearl",
    "quartz", "raven", "sage", "thyme", "umber", "violet", "willow", "xenon",
    "yarrow", "zinc", "birch", "coral", "flint", "indigo", "lotus", "onyx",
)
_PHRASINGS = (
    "What is the name of <{space}>?",
    "Name this vector: <{space}>",
    "<{space}> is called",
    "Which entity is <{space}>?",
)


def naming_task(num_entities: int = 8, dim: int = 16, noise: float = 0.1,
                train_size: int = 512, eval_size: int = 128, seed: int = 0,
                space: str = "vec") -> tuple[list[Example], list[Example]]:
    """Train and eval examples of the naming task, deterministic given ``seed``.

    Args:
      num_entities: N, at most ``len(NAMES)``; entity i is named ``NAMES[i]``.
      dim: dimension of the vectors.
      noise: each example's vector is prototype + noise * N(0, I) / sqrt(dim).
      train_size: number of train examples.
      eval_size: number of eval examples.
      seed: seeds prototypes, entity choice, noise and phrasing.
      space: the space of the slot, named ``<space>`` in the prompts.

    Returns:
      ``(train, eval)`` lists of examples with one inline-vector slot each.
    """
    if not 1 <= num_entities <= len(NAMES):
        raise ValueError(f"num_entities must be in [1, {len(NAMES)}] (one name each), got "
                         f"{num_entities}")
    if dim < 1 or noise < 0 or train_size < 0 or eval_size < 0:
        raise ValueError(f"naming_task needs dim >= 1, noise >= 0 and sizes >= 0; got dim "
                         f"{dim}, noise {noise}, train_size {train_size}, eval_size {eval_size}")
    if slot_space(space) != space:
        raise ValueError(f"space {space!r} must be a bare space name, without ':label'")
    prototypes = np.random.default_rng([seed, 0]).standard_normal((num_entities, dim))
    prototypes /= np.linalg.norm(prototypes, axis=1, keepdims=True)

    def examples(stream: int, count: int) -> list[Example]:
        rng = np.random.default_rng([seed, stream])
        entities = rng.integers(num_entities, size=count)
        phrasings = rng.integers(len(_PHRASINGS), size=count)
        vectors = prototypes[entities] + noise * rng.standard_normal((count, dim)) / np.sqrt(dim)
        return [Example(prompt=_PHRASINGS[p].format(space=space), target=NAMES[e],
                        slots={space: v.tolist()})
                for e, p, v in zip(entities, phrasings, vectors)]

    return examples(1, train_size), examples(2, eval_size)
