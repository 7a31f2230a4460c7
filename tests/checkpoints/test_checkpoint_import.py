"""Importers against checkpoints written and run by the reference implementations.

tests/reference/tiny_hf_gemma3 was written by transformers' Gemma3ForCausalLM and
tests/reference/gemma_orbax_tiny by Google DeepMind's gemma library; each carries the
logits its own implementation computed (see the make_* scripts beside them).
"""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from elc.checkpoints import gemma_orbax, hf_safetensors
from elc.checkpoints.backbone import backbone_weights, load_backbone
from elc.model.gemma import Gemma3
from elc.checkpoints.layer_stack import stack_layers

from helpers import REFERENCE_DIR, ROOT

HF_DIR = os.path.join(REFERENCE_DIR, "tiny_hf_gemma3")
ORBAX_DIR = os.path.join(REFERENCE_DIR, "gemma_orbax_tiny")
# Both references ran in float32; what remains is summation order (and, for HF, the
# exact-vs-tanh GeLU approximations agree). Logits have std ~2.
LOGIT_ATOL = 1e-4


def reference_logits(directory):
    data = np.load(os.path.join(directory, "reference_logits.npz"))
    return data["input_ids"], data["logits"]


def assert_logits_match(backbone, directory):
    ids, expected = reference_logits(directory)
    logits = jax.jit(Gemma3(backbone.config).apply)(backbone.variables, ids)
    np.testing.assert_allclose(np.asarray(logits), expected, atol=LOGIT_ATOL, rtol=1e-4)


def test_hf_safetensors_logits_match_transformers():
    backbone = load_backbone({"format": "hf", "path": HF_DIR})
    assert (backbone.config.embed_dim, backbone.config.num_layers) == (48, 7)
    assert backbone.config.layer_types[5] == "global"
    assert backbone.config.context_length == 128  # its max_position_embeddings
    assert_logits_match(backbone, HF_DIR)


def test_hf_export_round_trip_is_exact(tmp_path):
    backbone = load_backbone({"format": "hf", "path": HF_DIR})
    out = tmp_path / "exported"
    hf_safetensors.save_hf(str(out), backbone.config, backbone_weights(backbone))
    again = load_backbone({"format": "hf", "path": str(out)})
    assert again.config == backbone.config
    jax.tree_util.tree_map(np.testing.assert_array_equal, again.params, backbone.params)
    # Tensor for tensor, the export equals what transformers itself saved.
    from safetensors.numpy import load_file
    original = load_file(os.path.join(HF_DIR, "model.safetensors"))
    exported = load_file(str(out / "model.safetensors"))
    assert set(exported) == set(original)
    for name, value in original.items():
        np.testing.assert_array_equal(exported[name], value, err_msg=name)


def test_hf_transformers4_config_keys(tmp_path):
    # Hub checkpoints written by transformers 4.x name the RoPE bases differently.
    shutil.copytree(HF_DIR, tmp_path / "v4")
    path = tmp_path / "v4" / "config.json"
    config = json.loads(path.read_text())
    del config["rope_parameters"]
    config.update(rope_theta=1e6, rope_local_base_freq=1e4, rope_scaling={"factor": 8.0,
                                                                          "rope_type": "linear"})
    path.write_text(json.dumps(config))
    parsed = hf_safetensors.config_from_hf(str(tmp_path / "v4"))
    assert (parsed.global_rope_base, parsed.local_rope_base, parsed.global_rope_scale) == (
        1e6, 1e4, 8.0)


def test_hf_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        hf_safetensors.config_from_hf(str(tmp_path))
    bad = tmp_path / "bad"
    shutil.copytree(HF_DIR, bad)
    config = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "model_type": "llama"}))
    with pytest.raises(ValueError, match="model_type is 'llama'"):
        hf_safetensors.config_from_hf(str(bad))
    (bad / "config.json").write_text(json.dumps({**config, "intermediate_size": 96}))
    with pytest.raises(ValueError, match=r"layers.0.mlp.gate_proj.weight has shape \(128, 48\)"):
        load_backbone({"format": "hf", "path": str(bad)})


@pytest.mark.parametrize("layout", ["checkpoint", "checkpoint_nested"])
def test_gemma_library_orbax_logits_match(layout):
    backbone = load_backbone({"format": "orbax", "preset": "tiny",
                              "path": os.path.join(ORBAX_DIR, layout)})
    assert_logits_match(backbone, ORBAX_DIR)


def test_orbax_errors_name_the_problem(tmp_path):
    from elc.model.config import get_preset
    with pytest.raises(FileNotFoundError, match="orbax checkpoint directory not found"):
        gemma_orbax.weights_from_orbax(str(tmp_path / "nope"), get_preset("tiny"))
    with pytest.raises(ValueError, match="is not an orbax checkpoint"):
        gemma_orbax.weights_from_orbax(str(tmp_path), get_preset("tiny"))
    with pytest.raises(ValueError, match="more layers than the config's 6"):
        gemma_orbax.weights_from_orbax(os.path.join(ORBAX_DIR, "checkpoint"),
                                       get_preset("tiny", num_layers=6))
    with pytest.raises(ValueError, match=r"q_einsum has shape \(4, 64, 16\)"):
        gemma_orbax.weights_from_orbax(os.path.join(ORBAX_DIR, "checkpoint"),
                                       get_preset("tiny", num_heads=8, num_kv_heads=2))


def test_three_formats_agree_on_one_model(tmp_path):
    # orbax -> elc -> HF export -> elc: the same parameters.
    orbax = load_backbone({"format": "orbax", "preset": "tiny",
                           "path": os.path.join(ORBAX_DIR, "checkpoint")})
    hf_safetensors.save_hf(str(tmp_path), orbax.config, backbone_weights(orbax))
    hf = load_backbone({"format": "hf", "path": str(tmp_path)})
    jax.tree_util.tree_map(np.testing.assert_array_equal, hf.params,
                           stack_layers(orbax.config, backbone_weights(orbax)))


@pytest.mark.slow
def test_export_launcher_writes_a_loadable_directory(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "launch.export_hf", "--config=configs/gemma3_270m.py",
         f"--out={out}", "--config.backbone.format=orbax", "--config.backbone.preset=tiny",
         f"--config.backbone.path={os.path.join(ORBAX_DIR, 'checkpoint')}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert_logits_match(load_backbone({"format": "hf", "path": str(out)}), ORBAX_DIR)
