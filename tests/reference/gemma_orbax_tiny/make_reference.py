"""Generates the tiny Gemma 3 reference checkpoint + logits in this folder.

Standalone script, run with the *upstream* `gemma` library (google-deepmind,
PyPI package `gemma`) in a throwaway virtualenv -- see README.md. It is never
imported by the elc project.

Outputs (next to this file):
  checkpoint/          orbax checkpoint, FLAT layout = layout of the official
                       Gemma 3 orbax/Kaggle releases
                       (keys like 'transformer/layer_0/attn/q_einsum' -> {'w'}).
  checkpoint_nested/   the same params written by `gm.ckpts.save_params`
                       (NESTED layout = Flax `model.init()['params']`).
  reference_logits.npz input_ids int32 [2, 24], logits float32 [2, 24, 512]
                       computed by the gemma library's forward pass (float32).
  param_tree.txt       listing of the FLAT checkpoint tree (path, shape, dtype).

Besides producing the files, the script checks that
  * both checkpoints load back with `gm.ckpts.load_params` bit-exactly,
  * the library forward pass on the reloaded params gives the same logits,
  * an independent NumPy re-implementation of the documented semantics
    (README.md) reproduces the library logits from the raw FLAT checkpoint.
"""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import importlib.metadata
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import traverse_util
from gemma import gm
from gemma.gm.ckpts import _checkpoint as gm_checkpoint  # for the FLAT layout

jax.config.update("jax_default_matmul_precision", "highest")

HERE = pathlib.Path(__file__).resolve().parent
CKPT_FLAT = HERE / "checkpoint"
CKPT_NESTED = HERE / "checkpoint_nested"
LOGITS = HERE / "reference_logits.npz"
TREE_TXT = HERE / "param_tree.txt"

SEED = 0
BATCH, SEQ = 2, 24
BOS_ID = 2

C = gm.nn.config
CONFIG = C.TransformerConfig(
    num_embed=512,
    embed_dim=64,
    hidden_dim=128,
    num_heads=4,
    head_dim=16,
    num_kv_heads=2,  # != num_heads -> q_einsum + kv_einsum (GQA)
    final_logit_softcap=None,
    use_post_attn_norm=True,
    use_post_ffw_norm=True,
    use_qk_norm=True,
    attention_types=C.make_attention_layers_types(
        C.GEMMA3_ATTENTION_PATTERN, num_layers=7
    ),  # L L L L L G L
    query_pre_attn_norm=C.QueryPreAttentionNormalisation.BY_ONE_OVER_SQRT_HEAD_DIM,
    attn_logits_soft_cap=None,
    sliding_window_size=8,
    transpose_gating_einsum=True,  # as in every Gemma 3 config of the library
    local_base_frequency=10_000,
    global_base_frequency=1_000_000,
    local_scale_factor=1.0,
    global_scale_factor=1.0,
    vision_encoder=None,
)


class TinyGemma3(gm.nn.Transformer):
  """Tiny Gemma 3 text-only transformer (same code path as gm.nn.Gemma3_*)."""

  config: gm.nn.config.TransformerConfig = CONFIG
  INFO = gm.nn.config.ModelInfo(tokenizer_version=3)


def make_model() -> TinyGemma3:
  return TinyGemma3(dtype=jnp.float32)  # float32 params, no bf16 anywhere


def make_input_ids() -> np.ndarray:
  rng = np.random.default_rng(1234)
  ids = rng.integers(3, CONFIG.num_embed, size=(BATCH, SEQ), dtype=np.int64)
  ids[:, 0] = BOS_ID
  return ids.astype(np.int32)


def make_params(model, ids) -> dict:
  """Library init with a fixed seed, then deterministic rescaling.

  The library initialises Einsum weights / embeddings with N(0, 0.01**2) and
  RMSNorm scales with 0. To exercise every code path with O(1) activations we
  (a) rescale weights to std 1/sqrt(fan_in) (embedding: std 0.3) and
  (b) replace every norm `scale` with N(0, 0.1**2) so that (1 + scale) != 1.
  """
  params = model.init(jax.random.PRNGKey(SEED), jnp.asarray(ids))["params"]
  params = jax.tree.map(np.asarray, params)
  flat = traverse_util.flatten_dict(params, sep="/")
  key = jax.random.PRNGKey(SEED + 1)
  out = {}
  for i, (path, v) in enumerate(sorted(flat.items())):
    assert v.dtype == np.float32, (path, v.dtype)
    name = path.split("/")[-1]
    if name == "scale":
      assert np.all(v == 0), path
      v = 0.1 * np.asarray(
          jax.random.normal(jax.random.fold_in(key, i), v.shape, jnp.float32)
      )
    elif name == "input_embedding":
      v = v * (0.3 / 0.01)
    elif path.endswith("attn_vec_einsum/w"):  # [N, H, D], fan_in = N*H
      v = v * ((v.shape[0] * v.shape[1]) ** -0.5 / 0.01)
    elif path.endswith("q_einsum/w") or path.endswith("kv_einsum/w"):
      v = v * (CONFIG.embed_dim**-0.5 / 0.01)
    elif path.endswith("mlp/gating_einsum"):
      v = v * (CONFIG.embed_dim**-0.5 / 0.01)
    elif path.endswith("mlp/linear"):
      v = v * (CONFIG.hidden_dim**-0.5 / 0.01)
    else:
      raise ValueError(f"unexpected param {path}")
    out[path] = np.asarray(v, np.float32)
  return traverse_util.unflatten_dict(out, sep="/")


def forward(model, params, ids) -> np.ndarray:
  out = model.apply({"params": params}, jnp.asarray(ids))
  assert out.logits.dtype == jnp.float32, out.logits.dtype
  return np.asarray(out.logits)


# --------------------------------------------------------------------------
# Independent NumPy re-implementation of the semantics documented in README.md
# operating directly on the FLAT checkpoint dict.
# --------------------------------------------------------------------------


def _rms_norm(x, scale):
  var = np.mean(np.square(x), axis=-1, keepdims=True)
  return x / np.sqrt(var + 1e-6) * (1.0 + scale)


def _gelu_tanh(x):
  return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def _rope(x, pos, base):  # x [B,T,N,H]; split-half ("rotate_half") RoPE
  h = x.shape[-1]
  inv_ts = base ** (-(2.0 * np.arange(h // 2) / h))
  ang = pos[:, :, None, None] * inv_ts  # [B,T,1,H/2]
  sin, cos = np.sin(ang), np.cos(ang)
  x1, x2 = x[..., : h // 2], x[..., h // 2 :]
  return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def numpy_forward(flat: dict, ids: np.ndarray) -> np.ndarray:
  p = {k: {kk: np.asarray(vv, np.float64) for kk, vv in v.items()}
       for k, v in flat.items()}
  cfg = CONFIG
  b, t = ids.shape
  emb = p["transformer/embedder"]["input_embedding"]  # [V, D]
  x = emb[ids] * np.sqrt(cfg.embed_dim)
  pos = np.broadcast_to(np.arange(t), (b, t)).astype(np.float64)
  i_idx = np.arange(t)[:, None]
  j_idx = np.arange(t)[None, :]
  causal = j_idx <= i_idx
  window = causal & (j_idx > i_idx - cfg.sliding_window_size)  # W keys incl. i
  group = cfg.num_heads // cfg.num_kv_heads
  for li, attn_type in enumerate(cfg.attention_types):
    L = lambda name: p[f"transformer/layer_{li}/{name}"]  # noqa: E731
    local = attn_type == gm.nn.AttentionType.LOCAL_SLIDING
    base = cfg.local_base_frequency if local else cfg.global_base_frequency
    h = _rms_norm(x, L("pre_attention_norm")["scale"])
    q = np.einsum("btd,ndh->btnh", h, L("attn/q_einsum")["w"])
    kv = L("attn/kv_einsum")["w"]  # [2, K, D, H]
    k = np.einsum("btd,kdh->btkh", h, kv[0])
    v = np.einsum("btd,kdh->btkh", h, kv[1])
    q = _rms_norm(q, L("attn/_query_norm")["scale"])
    k = _rms_norm(k, L("attn/_key_norm")["scale"])
    q = _rope(q, pos, base) * cfg.head_dim**-0.5
    k = _rope(k, pos, base)
    k = np.repeat(k, group, axis=2)  # query head n uses kv head n // group
    v = np.repeat(v, group, axis=2)
    logits = np.einsum("btnh,bsnh->bnts", q, k)
    mask = window if local else causal
    logits = np.where(mask[None, None], logits, -np.inf)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    enc = np.einsum("bnts,bsnh->btnh", probs, v)
    a = np.einsum("btnh,nhd->btd", enc, L("attn/attn_vec_einsum")["w"])
    a = _rms_norm(a, L("post_attention_norm")["scale"])
    x = x + a
    h = _rms_norm(x, L("pre_ffw_norm")["scale"])
    gw = L("mlp/gating_einsum")["w"]  # [2, F(hidden), D]
    gate = np.einsum("btd,fd->btf", h, gw[0])
    up = np.einsum("btd,fd->btf", h, gw[1])
    m = np.einsum("btf,fd->btd", _gelu_tanh(gate) * up, L("mlp/linear")["w"])
    m = _rms_norm(m, L("post_ffw_norm")["scale"])
    x = x + m
  x = _rms_norm(x, p["transformer/final_norm"]["scale"])
  return x @ emb.T  # tied embeddings, no softcap


def tree_listing(tree: dict) -> list[str]:
  lines = []
  for top in sorted(tree):
    for leaf in sorted(tree[top]):
      a = tree[top][leaf]
      lines.append(f"{top}/{leaf}: {list(a.shape)} {a.dtype}")
  return lines


def assert_same_tree(a, b):
  fa = traverse_util.flatten_dict(a, sep="/")
  fb = traverse_util.flatten_dict(b, sep="/")
  assert sorted(fa) == sorted(fb), (sorted(fa), sorted(fb))
  for k in fa:
    x, y = np.asarray(fa[k]), np.asarray(fb[k])
    assert x.dtype == y.dtype == np.float32, (k, x.dtype, y.dtype)
    np.testing.assert_array_equal(x, y, err_msg=k)


def main():
  for pkg in ("gemma", "jax", "jaxlib", "flax", "orbax-checkpoint", "kauldron"):
    print(f"{pkg}=={importlib.metadata.version(pkg)}")

  model = make_model()
  ids = make_input_ids()
  params = make_params(model, ids)
  logits = forward(model, params, ids)
  print("logits", logits.shape, logits.dtype, "std", logits.std())

  # ---- FLAT layout (official Gemma 3 release layout) ------------------------
  flat = gm_checkpoint._nested_to_flat(params)  # library's own NESTED->FLAT
  # Save jax.Arrays (like the official checkpoints), not numpy arrays.
  flat = jax.tree.map(jnp.asarray, flat)
  for p in (CKPT_FLAT, CKPT_NESTED):
    if p.exists():
      shutil.rmtree(p)
  ckptr = ocp.StandardCheckpointer()  # what gm.ckpts.save_params uses
  ckptr.save(CKPT_FLAT, flat)
  ckptr.wait_until_finished()
  # ---- NESTED layout, through the library's own helper ---------------------
  gm.ckpts.save_params(
      jax.tree.map(jnp.asarray, params), CKPT_NESTED, wait_until_finished=True
  )

  # ---- Checks ---------------------------------------------------------------
  for path in (CKPT_FLAT, CKPT_NESTED):
    loaded = gm.ckpts.load_params(path)
    assert_same_tree(params, loaded)
    np.testing.assert_array_equal(forward(model, loaded, ids), logits)
    print(f"load_params({path.name}) OK, logits identical")
  # raw orbax restore (no gemma involved): keys exactly as documented
  raw = ocp.StandardCheckpointer().restore(CKPT_FLAT)
  assert sorted(raw) == sorted(flat), sorted(raw)
  for k in flat:
    assert sorted(raw[k]) == sorted(flat[k])
    for leaf in flat[k]:
      np.testing.assert_array_equal(
          np.asarray(raw[k][leaf]), np.asarray(flat[k][leaf])
      )
  ref = numpy_forward(raw, ids)
  err = np.abs(ref - logits).max()
  print("numpy re-implementation max abs err", err)
  assert err < 1e-4, err

  np.savez(LOGITS, input_ids=ids, logits=logits.astype(np.float32))
  TREE_TXT.write_text("\n".join(tree_listing(raw)) + "\n")
  print("\n".join(tree_listing(raw)))


if __name__ == "__main__":
  main()
