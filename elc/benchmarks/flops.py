"""The arithmetic and memory traffic that throughput figures are measured against.

Training FLOPs per token follow the common convention (6 per matmul parameter per token,
forward and backward, plus causal attention), so that MFU figures compare across
frameworks:

  F = 6 * (L * (d*H*h + 2*d*K*h + H*h*d + 3*d*f) + V*d) + 3 * sum_layers 2*H*h*span

where span is the sequence length on global layers and min(sequence, window) on local
ones (L layers, width d, H query heads and K key/value heads of width h, MLP width f,
vocabulary V). Norms, RoPE and the adapter are left out; they are small.
"""

from __future__ import annotations

from elc.model.config import GemmaConfig


def matmul_params(config: GemmaConfig) -> int:
    """Parameters that take part in a matrix product per token: projections, MLP, and the
    (tied) vocabulary projection once."""
    d, heads, kv, h, f = (config.embed_dim, config.num_heads, config.num_kv_heads,
                          config.head_dim, config.mlp_dim)
    per_layer = d * heads * h + 2 * d * kv * h + heads * h * d + 3 * d * f
    return config.num_layers * per_layer + config.vocab_size * d


def train_flops_per_token(config: GemmaConfig, sequence: int) -> float:
    """Forward + backward FLOPs per token of a training step over rows of ``sequence``."""
    attention = 0
    for kind in config.layer_types:
        span = sequence if kind == "global" else min(sequence, config.sliding_window)
        attention += 2 * config.num_heads * config.head_dim * span
    return 6.0 * matmul_params(config) + 3.0 * attention


def mfu(tokens_per_second: float, config: GemmaConfig, sequence: int,
        peak_flops: float) -> float:
    """Model FLOPs utilisation: achieved training FLOP/s over ``peak_flops``."""
    return tokens_per_second * train_flops_per_token(config, sequence) / peak_flops


def decode_bytes_per_step(config: GemmaConfig, batch: int, context: int,
                          weight_bytes: int = 2) -> float:
    """The fewest bytes one decode step must read from device memory: every weight once
    (``weight_bytes`` each; 2 for bfloat16) and each row's keys and values of ``context``
    tokens (windowed on local layers), in bfloat16."""
    kv = 0
    for kind in config.layer_types:
        span = context if kind == "global" else min(context, config.sliding_window)
        kv += 2 * span * config.num_kv_heads * config.head_dim * 2
    return float(config.num_params() * weight_bytes + batch * kv)
