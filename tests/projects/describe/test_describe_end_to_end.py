"""The describe project end to end on the tiny random backbone: example -> prepare ->
train (2 + 2 steps) -> eval -> sample, each through its launcher."""

import json
import subprocess
import sys

import pytest
from helpers import ROOT

from elc.projects.describe.example import build_example


def tiny_describe_run_flags(out_dir):
    """Overrides of configs/describe.py for a tiny random backbone, two steps per stage and
    a small evaluation, on the data prepared into ``out_dir``."""
    return ["--config=configs/describe.py", f"--config.prepare.out_dir={out_dir}",
            "--config.backbone.format=random", "--config.backbone.preset=tiny",
            "--config.backbone.tokenizer=byte", "--config.model.adapter.hidden_dims=(16,)",
            "--config.stage.adapter.steps=2", "--config.stage.adapter.warmup_steps=1",
            "--config.stage.full.steps=2", "--config.stage.full.warmup_steps=1",
            "--config.train.checkpoint_every=1", "--config.train.keep_checkpoints=1",
            "--config.train.max_eval_batches=1", "--config.eval.entities=3",
            "--config.eval.max_new_tokens=6", "--config.eval.batch_size=4"]


def _launch(module, *flags):
    result = subprocess.run([sys.executable, "-m", module, *flags], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.minutes
@pytest.mark.slow
def test_describe_end_to_end(tmp_path):
    table, texts = build_example(str(tmp_path / "example"), "synthetic", count=40)
    data, workdir = tmp_path / "data", tmp_path / "run"
    flags = tiny_describe_run_flags(data)
    report = json.loads(_launch("launch.prepare_data", *flags, f"--config.prepare.table={table}",
                                f"--config.prepare.texts={texts}"))
    assert report["entities"] == 40 and report["held_out"] == 4
    _launch("launch.train", *flags, f"--workdir={workdir}")
    assert "report:" in _launch("launch.eval", *flags, f"--workdir={workdir}")
    results = json.loads((workdir / "eval" / "results.json").read_text())
    assert results["variants"] == ["untrained", "adapter", "full", "reference"]
    assert results["entities_asked"] == 3 and results["catalogue"] == 40
    assert results["metrics"]["reference"]["chrf"] == pytest.approx(100.0)
    assert results["metrics"]["reference"]["rank_mean"] == 1.0
    for variant in ("untrained", "adapter", "full"):
        assert 0 <= results["metrics"][variant]["chrf"] <= 100
    assert "| full |" in (workdir / "eval" / "report.md").read_text()
    entity = results["samples"][0]["entity"]
    out = _launch("launch.sample", *flags, f"--workdir={workdir}", f"--entity={entity}")
    assert f"[entity {entity}] Describe <entity>." in out
    bad = subprocess.run([sys.executable, "-m", "launch.sample", *flags, f"--workdir={workdir}",
                          "--entity=no_such_id"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert bad.returncode != 0 and "'no_such_id' is not in embedding space" in bad.stderr
