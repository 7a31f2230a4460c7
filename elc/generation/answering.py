"""Generates answers of an ELM to templated prompts in batches, with progress and ETA."""

from __future__ import annotations

import dataclasses
import time
from typing import Mapping, Sequence

from absl import logging

from elc.data.example_encoder import ExampleEncoder
from elc.data.examples import SlotValue
from elc.model.elm import ELM
from elc.generation.sampler import check_generation_length, generate


@dataclasses.dataclass(frozen=True)
class Request:
    """One prompt to answer: text with ``<space>`` slots and each slot's entity id or vector."""

    prompt: str
    slots: Mapping[str, SlotValue]


@dataclasses.dataclass(frozen=True)
class GenerationConfig:
    """How answers are sampled (see :func:`elc.generation.sampler.generate`)."""

    max_new_tokens: int = 48
    batch_size: int = 32
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0

    @classmethod
    def from_sample_config(cls, sample, batch_size: int = 32) -> GenerationConfig:
        """The settings of a config's ``sample`` section (see
        elc.train.default_config.sample_config)."""
        return cls(max_new_tokens=sample.max_new_tokens, batch_size=batch_size,
                   temperature=sample.temperature, top_k=sample.top_k, top_p=sample.top_p,
                   seed=sample.seed)


def answer(elm: ELM, params: dict, encoder: ExampleEncoder, requests: Sequence[Request],
           config: GenerationConfig, label: str = "generation") -> list[str]:
    """The decoded answers to ``requests``, in order, without the stop token.

    Prompts are encoded exactly as in training (template, BOS, placeholders), so a model
    trained on ``prompt -> target`` examples answers in the targets' form. ``params`` is the
    ELM's params tree ({'backbone', 'adapters'}); call inside the mesh the params live on.
    """
    tokenizer = encoder.tokenizer
    encoded = [encoder.encode_prompt(r.prompt, r.slots, where=f"{label} request {i}")
               for i, r in enumerate(requests)]
    # Every prompt at once: a long one in the last batch fails now, not after the others.
    check_generation_length(elm, [len(e["tokens"]) for e in encoded], config.max_new_tokens)
    texts: list[str] = []
    start = time.time()
    for first in range(0, len(encoded), config.batch_size):
        chunk = encoded[first:first + config.batch_size]
        outputs = generate(elm, {"params": params}, [e["tokens"] for e in chunk],
                           slots=[e["slots"] for e in chunk],
                           max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                           top_k=config.top_k, top_p=config.top_p,
                           seed=config.seed + first, stop_ids=[tokenizer.eos_id])
        texts += [tokenizer.decode([t for t in ids if t != tokenizer.eos_id]).strip()
                  for ids in outputs]
        done, elapsed = len(texts), time.time() - start
        rate = done / elapsed
        logging.info("%s: %d/%d prompts, %.2f prompts/s, ETA %.0fs", label, done, len(encoded),
                     rate, (len(encoded) - done) / rate)
    return texts
