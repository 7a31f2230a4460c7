"""The peer of the accelerator suite: Hugging Face transformers' Gemma3ForCausalLM in PyTorch.

  python -m launch.peers.transformers_gemma3 '{"kind": "train", "preset": "270m", ...}'

Random init at the shapes of an elc preset, bfloat16 weights, the attention transformers
picks (sdpa where available), ``torch.compile``d training with fused AdamW; ``generate``
with its default KV cache for decoding. Like elc's benchmark model, the training model
has a two-layer MLP adapter whose output overwrites the embedding of position 1; stage
``adapter`` trains only the adapter (frozen backbone), stage ``full`` everything. Needs
torch and transformers; elc does not depend on either. Prints one result line (see
elc.benchmarks.worker).
"""

from __future__ import annotations

import time

from elc.benchmarks.worker import serve
from elc.model.config import get_preset

ADAPTER_INPUT_DIM = 64
ADAPTER_HIDDEN = 1024


def _model(preset: str):
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig
    shape = get_preset(preset)
    config = Gemma3TextConfig(
        vocab_size=shape.vocab_size, hidden_size=shape.embed_dim,
        intermediate_size=shape.mlp_dim, num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads, num_key_value_heads=shape.num_kv_heads,
        head_dim=shape.head_dim, sliding_window=shape.sliding_window,
        query_pre_attn_scalar=shape.query_pre_attn_scalar or shape.head_dim,
        max_position_embeddings=shape.context_length, pad_token_id=0, eos_token_id=1,
        bos_token_id=2)
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(config).to(device="cuda", dtype=torch.bfloat16)
    return model, getattr(model.config, "_attn_implementation", "?")


def _synchronized_seconds(call, repeats: int) -> float:
    import torch
    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        call()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def train(preset: str, rows: int, length: int, stage: str, steps: int = 10) -> dict:
    """Tokens per second of a compiled train step (every position a target)."""
    import torch
    from torch import nn
    if stage not in ("adapter", "full"):
        raise ValueError(f"stage must be 'adapter' or 'full', got {stage!r}")
    backbone, attention = _model(preset)
    adapter = nn.Sequential(nn.Linear(ADAPTER_INPUT_DIM, ADAPTER_HIDDEN), nn.GELU(),
                            nn.Linear(ADAPTER_HIDDEN, backbone.config.hidden_size)).to(
        device="cuda", dtype=torch.bfloat16)
    backbone.requires_grad_(stage == "full")
    trainable = [p for p in list(backbone.parameters()) + list(adapter.parameters())
                 if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5, fused=True)
    embed = backbone.get_input_embeddings()

    def loss_fn(tokens, vectors):
        embeddings = embed(tokens)
        soft = adapter(vectors).unsqueeze(1)
        embeddings = torch.cat([embeddings[:, :1], soft, embeddings[:, 2:]], dim=1)
        return backbone(inputs_embeds=embeddings, labels=tokens).loss

    compiled = torch.compile(loss_fn)

    def step():
        loss = compiled(tokens, vectors)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    generator = torch.Generator(device="cuda").manual_seed(0)
    tokens = torch.randint(0, backbone.config.vocab_size, (rows, length), device="cuda",
                           generator=generator)
    vectors = torch.randn(rows, ADAPTER_INPUT_DIM, device="cuda", dtype=torch.bfloat16,
                          generator=generator)
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    step()
    torch.cuda.synchronize()
    first = time.perf_counter() - start
    step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss = float(loss)
    seconds = (time.perf_counter() - start) / steps
    return {"tokens_per_second": rows * length / seconds, "step_seconds": seconds,
            "compile_seconds": first, "peak_bytes": int(torch.cuda.max_memory_allocated()),
            "loss": loss, "attention": attention,
            "trainable_params": int(sum(p.numel() for p in trainable))}


def decode(preset: str, batches: list[int], prompt_length: int, new_tokens: int,
           repeats: int = 2) -> list[dict]:
    """New tokens per second of greedy ``generate`` (every row runs all ``new_tokens``)."""
    import torch
    model, attention = _model(preset)
    model.eval()
    results = []
    generator = torch.Generator(device="cuda").manual_seed(0)
    for batch in batches:
        prompts = torch.randint(3, model.config.vocab_size, (batch, prompt_length),
                                device="cuda", generator=generator)

        def call(prompts=prompts):
            with torch.no_grad():
                return model.generate(prompts, attention_mask=torch.ones_like(prompts),
                                      max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                      do_sample=False, pad_token_id=0)

        start = time.perf_counter()
        out = call()
        torch.cuda.synchronize()
        first = time.perf_counter() - start
        if out.shape[1] != prompt_length + new_tokens:
            raise RuntimeError(f"generate returned {out.shape[1] - prompt_length} new tokens, "
                               f"expected {new_tokens}")
        best = _synchronized_seconds(call, repeats)
        results.append({"batch": batch, "tokens_per_second": batch * new_tokens / best,
                        "seconds": best, "first_call_seconds": first, "attention": attention})
    return results


if __name__ == "__main__":
    serve({"train": train, "decode": decode})
