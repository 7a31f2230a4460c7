#!/usr/bin/env python3
"""Build a tiny random Gemma 3 checkpoint in Hugging Face layout, plus reference logits.

Standalone generator (needs torch + transformers from the throwaway venv described in
tests/reference/README.md); never imported by the elc library or its tests.

Writes tests/reference/tiny_hf_gemma3/:
  config.json               Gemma3TextConfig as written by transformers' save_pretrained
  model.safetensors         float32 weights, HF names (model.embed_tokens.weight, model.layers.N...,
                            model.norm.weight); lm_head is tied to embed_tokens and not stored
  reference_logits.npz      input_ids int32 [B, T], logits float32 [B, T, V]
  generation_config.json    (whatever save_pretrained writes; not needed by the importer)

The dimensions are deliberately all different from each other so that a transposed weight
cannot go unnoticed: hidden 48, heads*head_dim = 4*16 = 64, kv_heads*head_dim = 2*16 = 32,
intermediate 128, vocab 512.  7 layers with the default 5:1 pattern give layer types
[s, s, s, s, s, full, s].  sliding_window 8 < T = 24, so the window matters.
Every parameter, norms included, is random (norms ~ N(0, 0.1^2)), so the (1 + w) RMSNorm
convention is exercised.

Run (inside the venv):  python tests/reference/make_tiny_hf_checkpoint.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "tiny_hf_gemma3"
SEED = 1234
BATCH, SEQ = 2, 24


def main() -> None:
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(SEED)
    cfg = Gemma3TextConfig(
        vocab_size=512,
        hidden_size=48,
        intermediate_size=128,
        num_hidden_layers=7,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        sliding_window=8,
        rope_theta=1e6,
        rope_local_base_freq=1e4,
        query_pre_attn_scalar=16,
        rms_norm_eps=1e-6,
        hidden_activation="gelu_pytorch_tanh",
        max_position_embeddings=128,
        tie_word_embeddings=True,
        final_logit_softcapping=None,
        attn_logit_softcapping=None,
        bos_token_id=2,
        eos_token_id=1,
        pad_token_id=0,
        attn_implementation="eager",
    )
    assert cfg.layer_types == ["sliding_attention"] * 5 + ["full_attention", "sliding_attention"], cfg.layer_types
    assert cfg.rope_parameters["full_attention"]["rope_theta"] == 1e6
    assert cfg.rope_parameters["sliding_attention"]["rope_theta"] == 1e4

    model = Gemma3ForCausalLM(cfg).float().eval()
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
            elif name == "model.embed_tokens.weight":
                p.copy_(torch.randn(p.shape, generator=gen) * 0.25)
            else:
                assert p.dim() == 2, name
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()

    ids_gen = torch.Generator().manual_seed(SEED + 1)
    input_ids = torch.randint(3, cfg.vocab_size, (BATCH, SEQ), generator=ids_gen)
    input_ids[:, 0] = cfg.bos_token_id
    with torch.no_grad():
        logits = model(input_ids=input_ids, use_cache=False).logits.float()

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(OUT_DIR, safe_serialization=True)
    np.savez_compressed(
        OUT_DIR / "reference_logits.npz",
        input_ids=input_ids.numpy().astype(np.int32),
        logits=logits.numpy().astype(np.float32),
    )

    # Round trip: reload from disk and check the logits match exactly.
    reloaded = Gemma3ForCausalLM.from_pretrained(OUT_DIR, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        logits2 = reloaded(input_ids=input_ids, use_cache=False).logits.float()
    assert torch.equal(logits, logits2), float((logits - logits2).abs().max())

    # Sliding window must matter for this input (positions >= 8 see a truncated context).
    model.config.sliding_window = 1 << 20
    with torch.no_grad():
        logits_nowin = model(input_ids=input_ids, use_cache=False).logits.float()
    d = (logits_nowin - logits).abs()
    assert float(d[:, :8].max()) < 1e-5 and float(d[:, 8:].max()) > 1e-2, (float(d[:, :8].max()), float(d[:, 8:].max()))

    from safetensors import safe_open

    with safe_open(OUT_DIR / "model.safetensors", "pt") as f:
        keys = sorted(f.keys())
    print("safetensors keys:", len(keys), keys[:3], "...")
    print("logits std %.3f, max |logit| %.3f" % (float(logits.std()), float(logits.abs().max())))
    print("sliding-window effect on logits at t>=8: max abs diff %.3f" % float(d[:, 8:].max()))
    print(json.dumps(json.loads((OUT_DIR / "config.json").read_text()), indent=1))
    for p in sorted(OUT_DIR.iterdir()):
        print(p.name, os.path.getsize(p))


if __name__ == "__main__":
    main()
