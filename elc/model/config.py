"""Gemma 3 decoder hyperparameters and the named presets.

The preset values are those of the published Gemma 3 models (the gemma library's
``Gemma3_*`` configs and the Hugging Face ``config.json`` files agree on them).
"""

from __future__ import annotations

import dataclasses
from typing import Literal, get_args

AttentionType = Literal["local", "global"]
AttentionImpl = Literal["xla", "cudnn"]
RematPolicy = Literal["none", "full", "dots_saveable"]
REMAT_POLICIES = get_args(RematPolicy)

GEMMA3_VOCAB_SIZE = 262_144
# Five sliding-window layers, then one global layer, repeated through the depth.
GEMMA3_ATTENTION_PATTERN: tuple[AttentionType, ...] = ("local",) * 5 + ("global",)

DTYPES = ("float32", "bfloat16", "float16")


@dataclasses.dataclass(frozen=True)
class GemmaConfig:
    """Shape and numerics of a Gemma 3 text decoder.

    Attributes:
      num_layers: number of decoder layers.
      embed_dim: model width (d_model).
      num_heads: query heads.
      num_kv_heads: key/value heads (grouped-query attention when < num_heads).
      head_dim: width of one attention head.
      mlp_dim: hidden width of the GeGLU feed-forward block.
      vocab_size: rows of the (tied) embedding table.
      sliding_window: tokens a local layer sees, the current one included.
      context_length: the most positions (prompt plus generated tokens) the model was
        trained on; generation is refused beyond it (RoPE would run on, out of training).
      query_pre_attn_scalar: queries are scaled by ``query_pre_attn_scalar ** -0.5``.
      local_rope_base / global_rope_base: RoPE max wavelengths of the two layer kinds.
      global_rope_scale: linear position scaling of the global layers' RoPE.
      attention_pattern: layer kinds, repeated cyclically over the depth.
      rms_norm_eps: epsilon inside every RMSNorm.
      dtype: compute dtype of activations and matmuls.
      param_dtype: storage dtype of the parameters (float32 master weights by default).
      attention_impl: ``"xla"`` (portable einsum attention) or ``"cudnn"``
        (``jax.nn.dot_product_attention``'s fused cuDNN kernel; GPU only).
      remat_policy: activation rematerialisation of each decoder layer.
      scan_layers: True scans the groups of layers (parameters stacked under
        ``groups``: compile time independent of depth, the layout of every checkpoint);
        False holds each group's parameters apart, under ``group_0``, ``group_1``, ...
        (see ``unstack_layer_groups``), for generation, where a scan would copy every
        weight out of the stack at every decode step.
    """

    num_layers: int
    embed_dim: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    mlp_dim: int
    vocab_size: int = GEMMA3_VOCAB_SIZE
    sliding_window: int = 512
    context_length: int = 32_768
    query_pre_attn_scalar: float | None = None
    local_rope_base: float = 10_000.0
    global_rope_base: float = 1_000_000.0
    global_rope_scale: float = 1.0
    attention_pattern: tuple[AttentionType, ...] = GEMMA3_ATTENTION_PATTERN
    rms_norm_eps: float = 1e-6
    dtype: str = "float32"
    param_dtype: str = "float32"
    attention_impl: AttentionImpl = "xla"
    remat_policy: RematPolicy = "none"
    scan_layers: bool = True

    def __post_init__(self):
        positive = ("num_layers", "embed_dim", "num_heads", "num_kv_heads", "head_dim",
                    "mlp_dim", "vocab_size", "sliding_window", "context_length")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"GemmaConfig.{name} must be a positive int, got {value!r}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"GemmaConfig.num_heads ({self.num_heads}) must be a multiple of "
                f"num_kv_heads ({self.num_kv_heads})")
        if self.head_dim % 2:
            raise ValueError(f"GemmaConfig.head_dim must be even for RoPE, got {self.head_dim}")
        for name in ("dtype", "param_dtype"):
            if getattr(self, name) not in DTYPES:
                raise ValueError(f"GemmaConfig.{name} must be one of {DTYPES}, "
                                 f"got {getattr(self, name)!r}")
        if self.attention_impl not in ("xla", "cudnn"):
            raise ValueError("GemmaConfig.attention_impl must be 'xla' or 'cudnn', "
                             f"got {self.attention_impl!r}")
        if self.remat_policy not in REMAT_POLICIES:
            raise ValueError(f"GemmaConfig.remat_policy must be one of {REMAT_POLICIES}, "
                             f"got {self.remat_policy!r}")
        if not self.attention_pattern or any(
                kind not in ("local", "global") for kind in self.attention_pattern):
            raise ValueError("GemmaConfig.attention_pattern must be a non-empty tuple of "
                             f"'local'/'global', got {self.attention_pattern!r}")

    @property
    def query_scale(self) -> float:
        scalar = self.query_pre_attn_scalar or self.head_dim
        return float(scalar) ** -0.5

    @property
    def layer_types(self) -> tuple[AttentionType, ...]:
        """The attention kind of every layer, in depth order."""
        pattern = self.attention_pattern
        return tuple(pattern[i % len(pattern)] for i in range(self.num_layers))

    @property
    def num_scanned_groups(self) -> int:
        """How many full repetitions of ``attention_pattern`` are scanned."""
        return self.num_layers // len(self.attention_pattern)

    @property
    def num_tail_layers(self) -> int:
        """Layers after the last full repetition (a prefix of the pattern)."""
        return self.num_layers % len(self.attention_pattern)

    def replace(self, **changes) -> "GemmaConfig":
        return dataclasses.replace(self, **changes)

    def num_params(self) -> int:
        """Parameter count (embedding counted once: it is tied)."""
        d, h, k, hd, m = (self.embed_dim, self.num_heads, self.num_kv_heads, self.head_dim,
                          self.mlp_dim)
        attention = d * h * hd * 2 + d * k * hd * 2 + 2 * hd
        per_layer = attention + 3 * d * m + 4 * d
        return self.vocab_size * d + self.num_layers * per_layer + d


PRESETS: dict[str, GemmaConfig] = {
    "270m": GemmaConfig(num_layers=18, embed_dim=640, num_heads=4, num_kv_heads=1,
                        head_dim=256, mlp_dim=2048, sliding_window=512,
                        query_pre_attn_scalar=256),
    "1b": GemmaConfig(num_layers=26, embed_dim=1152, num_heads=4, num_kv_heads=1,
                      head_dim=256, mlp_dim=6912, sliding_window=512,
                      query_pre_attn_scalar=256),
    "4b": GemmaConfig(num_layers=34, embed_dim=2560, num_heads=8, num_kv_heads=4,
                      head_dim=256, mlp_dim=10240, sliding_window=1024, context_length=131_072,
                      query_pre_attn_scalar=256, global_rope_scale=8.0),
    "12b": GemmaConfig(num_layers=48, embed_dim=3840, num_heads=16, num_kv_heads=8,
                       head_dim=256, mlp_dim=15360, sliding_window=1024, context_length=131_072,
                       query_pre_attn_scalar=256, global_rope_scale=8.0),
    # 27B scales queries by (embed_dim / num_heads) ** -0.5 = 168 ** -0.5, not head_dim.
    "27b": GemmaConfig(num_layers=62, embed_dim=5376, num_heads=32, num_kv_heads=16,
                       head_dim=128, mlp_dim=21504, sliding_window=1024, context_length=131_072,
                       query_pre_attn_scalar=168, global_rope_scale=8.0),
    # Random tiny decoder for unit tests: 7 layers so both a scanned group and a tail exist.
    "tiny": GemmaConfig(num_layers=7, embed_dim=64, num_heads=4, num_kv_heads=2, head_dim=16,
                        mlp_dim=128, vocab_size=512, sliding_window=8, context_length=1024,
                        query_pre_attn_scalar=16),
}


def get_preset(name: str, **overrides) -> GemmaConfig:
    """Returns the named preset, with field overrides applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown Gemma preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]
