"""The Embedding Language Model: a Gemma 3 decoder whose prompts hold soft tokens.

Each embedding space has its own adapter. The input pipeline puts placeholder ids where
soft tokens go and records their positions (see elc/data/example_encoder.py); here the embedded
placeholders are overwritten by the adapters' outputs, after the sqrt(d) scaling of
text embeddings, and the decoder runs as usual.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from elc.model.adapter import EmbeddingAdapter
from elc.model.config import GemmaConfig
from elc.model.gemma import Cache, Gemma3


@dataclasses.dataclass(frozen=True)
class AdapterConfig:
    """Shared settings of the per-space adapters (see EmbeddingAdapter)."""

    num_soft_tokens: int = 1
    hidden_dims: tuple[int, ...] = (1024,)
    activation: str = "gelu"
    input_norm: str = "none"
    output_scale: float = 1.0


class AdapterBank(nn.Module):
    """One EmbeddingAdapter per space, named after the space."""

    embed_dim: int
    config: AdapterConfig
    dtype: str = "float32"
    param_dtype: str = "float32"

    @nn.compact
    def __call__(self, space: str, vectors: jax.Array) -> jax.Array:
        cfg = self.config
        return EmbeddingAdapter(
            self.embed_dim, num_soft_tokens=cfg.num_soft_tokens, hidden_dims=cfg.hidden_dims,
            activation=cfg.activation, input_norm=cfg.input_norm,
            output_scale=cfg.output_scale, dtype=jnp.dtype(self.dtype),
            param_dtype=jnp.dtype(self.param_dtype), name=space)(vectors)


class ELM(nn.Module):
    """Backbone + adapters. Params: ``{'backbone': Gemma3 params, 'adapters': {space: ...}}``.

    Attributes:
      backbone_config: the decoder.
      spaces: (name, dim) of every embedding space, in any fixed order.
      adapter: adapter settings shared by all spaces.
    """

    backbone_config: GemmaConfig
    spaces: tuple[tuple[str, int], ...]
    adapter: AdapterConfig = AdapterConfig()

    def setup(self):
        cfg = self.backbone_config
        self.backbone = Gemma3(cfg)
        self.adapters = AdapterBank(cfg.embed_dim, self.adapter, cfg.dtype, cfg.param_dtype)

    def embed(self, tokens: jax.Array, slots: Mapping[str, Mapping[str, jax.Array]]) -> jax.Array:
        """Token embeddings with every slot's soft tokens written over its placeholders.

        Args:
          tokens: [batch, length] ids.
          slots: space -> {'vectors' [batch, S, d], 'mask' [batch, S] bool,
            'positions' [batch, S, k] int}; unused slots have mask False.
        """
        embeddings = self.backbone.embed(tokens)
        batch, length = tokens.shape
        for space, dim in self.spaces:
            if space not in slots:
                continue
            slot = slots[space]
            if slot["vectors"].shape[-1] != dim:
                raise ValueError(f"space {space!r} has dim {dim}, but the batch carries vectors "
                                 f"of dim {slot['vectors'].shape[-1]}")
            soft = nn.with_logical_constraint(  # [batch, S, k, embed]
                self.adapters(space, slot["vectors"]),
                ("activation_batch", None, None, "activation_embed"))
            # Masked slots point past the end, and mode='drop' discards those writes.
            positions = jnp.where(slot["mask"][..., None], slot["positions"], length)
            rows = jnp.broadcast_to(jnp.arange(batch)[:, None, None], positions.shape)
            embeddings = embeddings.at[rows, positions].set(soft.astype(embeddings.dtype),
                                                            mode="drop")
        return embeddings

    def hidden_states(self, batch: Mapping) -> jax.Array:
        """Final hidden states [batch, length, embed] of an encoded batch."""
        embeddings = self.embed(batch["tokens"], batch.get("slots", {}))
        return self.backbone.hidden_states(embeddings, batch["positions"], batch["input_mask"],
                                           batch.get("segment_ids"))

    def cached_hidden_states(self, embeddings: jax.Array, start: jax.Array,
                             cache: Cache) -> tuple[jax.Array, Cache]:
        """The backbone's KV-cached forward (see ``Gemma3.cached_hidden_states``); for
        generation, whose prefill embeddings come from ``embed`` with the slots."""
        return self.backbone.cached_hidden_states(embeddings, start, cache)

    def logits(self, hidden: jax.Array) -> jax.Array:
        return self.backbone.logits(hidden)

    def __call__(self, batch: Mapping) -> jax.Array:
        """float32 logits [batch, length, vocab] of an encoded batch."""
        return self.logits(self.hidden_states(batch))


def soft_token_scale(embedding: np.ndarray) -> float:
    """Median RMS of the rows of a Gemma embedding table after the sqrt(d) input scaling:
    the magnitude real token embeddings enter the decoder with."""
    embedding = np.asarray(embedding, np.float32)
    rms = np.sqrt(np.mean(np.square(embedding), axis=-1)) * np.sqrt(embedding.shape[-1])
    return float(np.median(rms))


def adapter_bank(elm: ELM) -> AdapterBank:
    """The adapters of ``elm`` as a module of their own (params: space -> adapter)."""
    return AdapterBank(elm.backbone_config.embed_dim, elm.adapter,
                       elm.backbone_config.dtype, elm.backbone_config.param_dtype)


def init_adapters(elm: ELM, rng: jax.Array) -> dict:
    """Fresh adapter params for every space of ``elm`` (boxed with logical axis names)."""
    bank = adapter_bank(elm)

    def init_all(module: AdapterBank):
        for space, dim in elm.spaces:
            module(space, jnp.zeros((1, dim), jnp.float32))

    return nn.init(init_all, bank)(rng)["params"]


def space_dims(spaces: Mapping[str, int] | Sequence[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Canonical, hashable (sorted by name) form of a space -> dim mapping."""
    items = spaces.items() if isinstance(spaces, Mapping) else spaces
    return tuple(sorted((str(name), int(dim)) for name, dim in items))
