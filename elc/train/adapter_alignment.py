"""Adapters aligned with the token embeddings before training (``model.adapter.init``).

A randomly initialised adapter gives every vector about the same soft token, and a short
stage 1 teaches it the format of the answers long before it teaches it to tell entities
apart. The aligned init starts it where the answers are: the adapter's output layer is
fitted, by ridge regression on its (random) hidden features, so that the soft token of an
example's vector points where the token embeddings of the example's answer point on
average. Each answer token is weighted by its inverse document frequency among the
answers, so that what is particular to an entity (its title, its genres) counts and what
every answer says ("The", "(", a year's first digits) hardly does. Only examples whose
prompt holds a single vector are used: their answer is about that vector alone.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from elc.data.example_encoder import ExampleEncoder
from elc.data.examples import ExampleSource
from elc.evaluation.consistency import RidgeMap
from elc.model.elm import ELM, adapter_bank
from elc.tokenizers.tokenizer import Tokenizer

ADAPTER_INITS = ("random", "aligned")


def answer_targets(answers: Sequence[Sequence[int]], embedding: np.ndarray) -> np.ndarray:
    """float32 [N, d]: per answer (token ids), the mean of its tokens' rows of
    ``embedding`` weighted by count x inverse document frequency, log((1 + N) / (1 + df))
    with df the number of answers holding the token."""
    count = len(answers)
    document_frequency: dict[int, int] = {}
    for ids in answers:
        for token in set(ids):
            document_frequency[token] = document_frequency.get(token, 0) + 1
    targets = np.zeros((count, embedding.shape[1]), np.float32)
    for row, ids in enumerate(answers):
        if not ids:
            continue
        tokens, counts = np.unique(np.asarray(ids, np.int64), return_counts=True)
        weights = counts * np.array([math.log((1 + count) / (1 + document_frequency[t]))
                                     for t in tokens.tolist()])
        if weights.sum() <= 0:  # every token in every answer: plain mean
            weights = counts.astype(np.float64)
        rows = np.asarray(embedding[tokens], np.float64)
        targets[row] = weights @ rows / weights.sum()
    return targets


def ridge_readout(features: np.ndarray, targets: np.ndarray, ridge: float
                  ) -> tuple[np.ndarray, np.ndarray, float]:
    """Least squares ``features @ kernel + bias ~ targets`` with an L2 penalty of ``ridge``
    times the mean variance of a feature on the kernel (not the bias); the kernel is then
    scaled so that the predictions vary as much as the targets do (by about 1 / sqrt(R^2)).
    A fit that explains little of the targets would otherwise give every row nearly the
    mean target: the one soft token for all vectors that the aligned init exists to avoid.
    Returns kernel [h, d], bias [d] and the fit's R^2 on these rows (before the scaling)."""
    features, targets = np.asarray(features, np.float64), np.asarray(targets, np.float64)
    feature_mean, target_mean = features.mean(0), targets.mean(0)
    centered, centered_targets = features - feature_mean, targets - target_mean
    l2 = ridge * max(float(np.square(centered).sum()) / features.shape[1], 1e-12)
    kernel = RidgeMap.fit(features, targets, l2=l2).weights
    predicted = centered @ kernel
    total = float(np.square(centered_targets).sum())
    r2 = 1.0 - float(np.square(centered_targets - predicted).sum()) / total if total > 0 else 0.0
    spread = float(np.square(predicted).sum())
    if spread > 0:
        kernel = kernel * math.sqrt(total / spread)
    return kernel, target_mean - feature_mean @ kernel, r2


def _single_vector_examples(source: ExampleSource, encoder: ExampleEncoder, tokenizer: Tokenizer,
                            max_examples: int) -> dict[str, tuple[list[np.ndarray], list[list[int]]]]:
    """space -> (model input vectors, answer ids) of the examples (at most
    ``max_examples``, evenly spread over ``source``) whose prompt holds one vector."""
    stride = max(1, math.ceil(len(source) / max_examples))
    pairs: dict[str, tuple[list[np.ndarray], list[list[int]]]] = {}
    for index in range(0, len(source), stride):
        example = source[index]
        slots = encoder.slot_vectors(example)
        if len(slots) != 1:
            continue
        space, vector = slots[0]
        vectors, answers = pairs.setdefault(space, ([], []))
        vectors.append(vector)
        answers.append(tokenizer.encode(example.target, add_bos=False))
    return pairs


def align_adapters(elm: ELM, adapters: dict, source: ExampleSource, encoder: ExampleEncoder,
                   tokenizer: Tokenizer, embedding: np.ndarray, ridge: float = 1.0,
                   max_examples: int = 20_000) -> dict:
    """``adapters`` (unboxed params, space -> EmbeddingAdapter params) with each space's
    output kernel and bias fitted as the module docstring says; every soft token of a
    vector gets the same fit. Spaces without single-vector examples keep their init."""
    bank = adapter_bank(elm)
    aligned = jax.tree_util.tree_map(np.asarray, adapters)
    pairs = _single_vector_examples(source, encoder, tokenizer, max_examples)
    for space, _ in elm.spaces:
        if space not in pairs:
            logging.warning("adapter of space %r: no training example holds one vector of it "
                            "alone, so it keeps its random init", space)
            continue
        vectors, answers = pairs[space]
        _, state = bank.apply({"params": adapters}, space, jnp.asarray(np.stack(vectors)),
                              mutable=["intermediates"])
        features = np.asarray(state["intermediates"][space]["features"][0])
        kernel, bias, r2 = ridge_readout(features, answer_targets(answers, embedding), ridge)
        params = dict(aligned[space])
        k = params["output_bias"].shape[0]
        dtype = params["output_kernel"].dtype
        params["output_kernel"] = np.repeat(kernel[:, None, :], k, axis=1).astype(dtype)
        params["output_bias"] = np.repeat(bias[None, :], k, axis=0).astype(dtype)
        aligned[space] = params
        logging.info("adapter of space %r aligned with its answers' token embeddings: %d "
                     "examples, R^2 %.3f", space, len(vectors), r2)
    return aligned
