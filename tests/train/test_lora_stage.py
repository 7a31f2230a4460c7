"""A LoRA stage in a real (tiny) run: what trains, what is saved, what evaluation sees;
and the config line that freezes the embedding table in a full stage."""

import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import traverse_util

from elc.checkpoints.backbone import load_backbone
from elc.train.build import stages_from_config
from elc.train.checkpointing import Checkpointer
from elc.train.partition import param_paths, split_params
from elc.train.trainer import restore_stage_params, setup_run, train
from helpers import ROOT, load_config

Q_PROJ = ("backbone", "groups", "layer_0", "attention", "q_proj")


# The run of lora_config() as launcher flags (for launch.export_hf).
LORA_FLAGS = ("--config.data.examples_per_row=4", "--config.stage.adapter.steps=3",
              "--config.stage.adapter.warmup_steps=1", "--config.stage.full.steps=4",
              "--config.stage.full.warmup_steps=1", "--config.stage.full.learning_rate=1e-2",
              "--config.stage.full.trainable=('adapters/.*',)", "--config.stage.full.lora.rank=4",
              "--config.stage.full.lora.alpha=8.0", "--config.train.checkpoint_every=7")


def lora_config():
    config = load_config("tiny_elm")
    config.data.examples_per_row = 4
    config.stage.adapter.update(steps=3, warmup_steps=1)
    config.stage.full.update(steps=4, warmup_steps=1, learning_rate=1e-2,
                             trainable=("adapters/.*",))
    config.stage.full.lora.update(rank=4, alpha=8.0)
    config.train.update(eval_every=1000, checkpoint_every=7, async_checkpoints=False)
    return config


def test_lora_stage_trains_pairs_only_and_evaluates_merged(tmp_path):
    config = lora_config()
    train(config, str(tmp_path))
    state = Checkpointer(str(tmp_path / "checkpoints"), save_every=7, keep=1).restore_state(7, None)
    # Trained: the adapters and the pairs; the kernels are frozen and bit-identical.
    assert set(state["trainable"]) == {"adapters", "lora"}
    original = load_backbone(config.backbone).params
    jax.tree_util.tree_map(np.testing.assert_array_equal, state["frozen"]["backbone"], original)
    # Adam keeps moments of the trainable part only: two per trainable number (0-d leaves
    # left out on both sides, as the optimizer's step counts are 0-d).
    trainable = sum(np.size(x) for x in jax.tree_util.tree_leaves(state["trainable"])
                    if np.ndim(x) > 0)
    moments = sum(np.size(x) for x in jax.tree_util.tree_leaves(state["opt_state"])
                  if np.ndim(x) > 0)
    assert moments == 2 * trainable
    pairs = traverse_util.flatten_dict(state["trainable"]["lora"])
    a, b = pairs[Q_PROJ + ("a",)], pairs[Q_PROJ + ("b",)]
    assert a.shape[-1] == 4 and np.abs(b).max() > 0  # b starts at zero: it has trained

    run = setup_run(config)
    with jax.set_mesh(run.mesh):
        merged = jax.device_get(restore_stage_params(config, str(tmp_path), run, "full"))
    assert "lora" not in merged
    kernel = traverse_util.flatten_dict(original)[Q_PROJ[1:]]
    expected = kernel + (8.0 / 4) * np.einsum("lir,lrnh->linh", np.asarray(a, np.float64),
                                              np.asarray(b, np.float64))
    np.testing.assert_allclose(traverse_util.flatten_dict(merged)[Q_PROJ], expected,
                               rtol=1e-5, atol=1e-6)

    # The HF export of the run holds the merged kernels too.
    out = tmp_path / "hf"
    result = subprocess.run([sys.executable, "-m", "launch.export_hf", "--config=configs/tiny_elm.py",
                             f"--workdir={tmp_path}", f"--out={out}", *LORA_FLAGS],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    exported = load_backbone({"format": "hf", "path": str(out)}).params
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
                           exported, merged["backbone"])


def test_lora_settings_are_checked_per_stage():
    config = lora_config()
    config.stage.full.lora.dropout = 1.5
    with pytest.raises(ValueError, match=r"config.stage.full: .*dropout"):
        stages_from_config(config)
    config.stage.full.lora.dropout = 0.0
    assert stages_from_config(config)[1].trainable_patterns == ("adapters/.*", "lora/.*")
    assert stages_from_config(config)[0].lora is None  # rank 0: off


def test_the_documented_line_freezes_only_the_embedding_table():
    config = load_config("tiny_elm")
    params = {"backbone": load_backbone(config.backbone).params, "adapters": {"x": np.zeros(1)}}
    trainable, frozen = split_params(params, ("adapters/.*", "backbone/(?!embedder/).*"))
    assert param_paths(frozen) == ["backbone/embedder/embedding"]
    assert len(param_paths(trainable)) == len(param_paths(params)) - 1
