"""Shows that reference_logits.npz pins down every documented semantic detail.

Standalone (same venv as make_reference.py; never imported by the project).
Re-implements the forward pass in NumPy from the raw FLAT checkpoint, once
with the documented semantics and once per plausible mis-implementation, and
prints max|logits - reference| for each.
"""
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import make_reference as mr  # noqa: E402
import orbax.checkpoint as ocp  # noqa: E402
from scipy.special import erf  # noqa: E402

raw = ocp.StandardCheckpointer().restore(mr.CKPT_FLAT)
d = np.load(mr.LOGITS); ids, ref = d['input_ids'], d['logits']
cfg = mr.CONFIG
def rope_interleaved(x, pos, base):
    h = x.shape[-1]; inv = base ** (-(2.0*np.arange(h//2)/h)); ang = pos[:,:,None,None]*inv
    s, c = np.sin(ang), np.cos(ang); x1, x2 = x[...,0::2], x[...,1::2]
    out = np.empty_like(x); out[...,0::2] = x1*c-x2*s; out[...,1::2] = x2*c+x1*s; return out
def run(window_lo=lambda i: i - cfg.sliding_window_size, rope=mr._rope, swap_gate=False,
        gelu=mr._gelu_tanh, grouping='block', norm_plus1=True, swap_base=False, emb_scale=True, qscale=cfg.head_dim**-0.5):
    p = {k: {kk: np.asarray(vv, np.float64) for kk, vv in v.items()} for k, v in raw.items()}
    nrm = (lambda x, s: x/np.sqrt(np.mean(x*x,-1,keepdims=True)+1e-6)*((1+s) if norm_plus1 else s))
    b, t = ids.shape; emb = p['transformer/embedder']['input_embedding']
    x = emb[ids] * (np.sqrt(cfg.embed_dim) if emb_scale else 1.0)
    pos = np.broadcast_to(np.arange(t), (b, t)).astype(float)
    i = np.arange(t)[:, None]; j = np.arange(t)[None, :]
    causal = j <= i; window = causal & (j > window_lo(i))
    G = cfg.num_heads // cfg.num_kv_heads
    for li, at in enumerate(cfg.attention_types):
        L = lambda n: p[f'transformer/layer_{li}/{n}']
        local = at == mr.gm.nn.AttentionType.LOCAL_SLIDING
        base = cfg.local_base_frequency if local != swap_base else cfg.global_base_frequency
        h = nrm(x, L('pre_attention_norm')['scale'])
        q = np.einsum('btd,ndh->btnh', h, L('attn/q_einsum')['w']); kv = L('attn/kv_einsum')['w']
        k = np.einsum('btd,kdh->btkh', h, kv[0]); v = np.einsum('btd,kdh->btkh', h, kv[1])
        q = nrm(q, L('attn/_query_norm')['scale']); k = nrm(k, L('attn/_key_norm')['scale'])
        q = rope(q, pos, base) * qscale; k = rope(k, pos, base)
        if grouping == 'block': k = np.repeat(k, G, 2); v = np.repeat(v, G, 2)
        else: k = np.tile(k, (1,1,G,1)); v = np.tile(v, (1,1,G,1))
        lg = np.einsum('btnh,bsnh->bnts', q, k); lg = np.where((window if local else causal)[None,None], lg, -np.inf)
        pr = np.exp(lg - lg.max(-1, keepdims=True)); pr /= pr.sum(-1, keepdims=True)
        a = np.einsum('btnh,nhd->btd', np.einsum('bnts,bsnh->btnh', pr, v), L('attn/attn_vec_einsum')['w'])
        x = x + nrm(a, L('post_attention_norm')['scale'])
        h = nrm(x, L('pre_ffw_norm')['scale']); gw = L('mlp/gating_einsum')['w']
        g0, g1 = (1, 0) if swap_gate else (0, 1)
        gate = np.einsum('btd,fd->btf', h, gw[g0]); up = np.einsum('btd,fd->btf', h, gw[g1])
        m = np.einsum('btf,fd->btd', gelu(gate)*up, L('mlp/linear')['w'])
        x = x + nrm(m, L('post_ffw_norm')['scale'])
    x = nrm(x, p['transformer/final_norm']['scale']); return x @ emb.T
cases = {
  'documented': {},
  'window 9 keys (j >= i-8)': dict(window_lo=lambda i: i - 9),
  'window 7 keys (j > i-7)': dict(window_lo=lambda i: i - 7),
  'interleaved rope': dict(rope=rope_interleaved),
  'gate/up swapped': dict(swap_gate=True),
  'exact erf gelu': dict(gelu=lambda x: 0.5*x*(1+erf(x/np.sqrt(2)))),
  'kv grouping n % K': dict(grouping='tile'),
  'norm x*scale (no 1+)': dict(norm_plus1=False),
  'local/global rope bases swapped': dict(swap_base=True),
  'no sqrt(embed_dim) embedding scale': dict(emb_scale=False),
}
for name, kw in cases.items():
    print(f'{name:40s} max|diff| = {np.abs(run(**kw) - ref).max():.3e}')
