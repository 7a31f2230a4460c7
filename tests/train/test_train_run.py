"""Whole training runs of the tiny ELM: learning, and exact continuation after a kill."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from elc.train.trainer import train

from helpers import ROOT, load_config, read_metrics



def tiny_config():
    return load_config("tiny_elm")


def test_tiny_elm_names_held_out_vectors(tmp_path):
    config = tiny_config()
    config.stage.adapter.steps = 40
    config.stage.full.steps = 120
    config.train.eval_every = 1000
    results = train(config, str(tmp_path))
    assert results["eval/exact_match"] >= 0.95, results
    # Naming an entity is reading its vector: given another example's, the model names
    # that example's entity with confidence.
    assert results["eval/vector_gain"] > 1.0, results
    evals = [json.loads(line) for line in open(tmp_path / "metrics.jsonl") if "eval/loss" in line]
    assert [e["stage"] for e in evals] == ["adapter", "full"]
    assert os.listdir(tmp_path / "tensorboard")


def run_train(workdir, *overrides, kill_after_step=None):
    command = [sys.executable, "-m", "launch.train", "--config=configs/tiny_elm.py",
               f"--workdir={workdir}", "--config.stage.adapter.steps=20",
               "--config.stage.full.steps=20", "--config.stage.full.warmup_steps=5",
               "--config.train.log_every=1",
               "--config.train.checkpoint_every=5", "--config.train.eval_every=1000",
               *overrides]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    if kill_after_step is None:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
        return
    metrics = os.path.join(workdir, "metrics.jsonl")
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None:
        if os.path.exists(metrics) and max(read_metrics(workdir) or [0]) >= kill_after_step:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()


# Packed rows and a LoRA stage 2: the iterator replans packed epochs and the LoRA pairs
# and their optimizer state come back from the checkpoint.
PACKED_LORA = ("--config.data.examples_per_row=4", "--config.stage.full.lora.rank=4",
               "--config.stage.full.trainable=('adapters/.*',)")


@pytest.mark.minutes
@pytest.mark.slow
def test_killed_run_resumes_with_identical_losses(tmp_path):
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    run_train(reference, *PACKED_LORA)
    run_train(interrupted, *PACKED_LORA, kill_after_step=27)  # in stage 2, between checkpoints
    killed_at = max(read_metrics(interrupted))
    assert 27 <= killed_at < 40
    run_train(interrupted, *PACKED_LORA)
    expected, resumed = read_metrics(reference), read_metrics(interrupted)
    assert sorted(resumed) == sorted(expected) == list(range(1, 41))
    for step in expected:
        assert resumed[step]["stage"] == expected[step]["stage"]
        assert resumed[step]["loss"] == pytest.approx(expected[step]["loss"], rel=1e-6, abs=1e-7), step
        assert resumed[step]["packing_efficiency"] == expected[step]["packing_efficiency"] > 0.5


def test_adapter_stage_leaves_the_backbone_bit_identical(tmp_path):
    import jax
    import numpy as np

    from elc.checkpoints.backbone import load_backbone
    from elc.train.checkpointing import Checkpointer

    config = tiny_config()
    config.train.stages = ("adapter",)
    config.stage.adapter.update(steps=10, warmup_steps=2)
    config.train.update(eval_every=1000, checkpoint_every=10, async_checkpoints=False)
    train(config, str(tmp_path))
    checkpointer = Checkpointer(str(tmp_path / "checkpoints"), save_every=10, keep=1)
    assert checkpointer.latest_step() == 10
    restored = checkpointer.restore_state(10, None)
    original = load_backbone(config.backbone).params  # same seed: the same random init
    jax.tree_util.tree_map(np.testing.assert_array_equal, restored["frozen"]["backbone"], original)
    assert set(restored["trainable"]) == {"adapters"}


@pytest.mark.slow
def test_unknown_config_key_is_an_error():
    result = subprocess.run([sys.executable, "-m", "launch.train", "--config=configs/tiny_elm.py",
                             "--workdir=/tmp/unused", "--config.train.learning_rat=1e-3"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "learning_rat" in result.stderr
