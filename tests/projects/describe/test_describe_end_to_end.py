"""The describe project end to end on the tiny random backbone: example -> prepare ->
train (2 + 2 steps) -> eval -> sample, each through its launcher."""

import json
import subprocess
import sys

import pytest
from helpers import ROOT, tiny_describe_run_flags

from elc.projects.describe.example import build_example


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
    _explore(data, workdir, entity)


def _explore(data, workdir, entity):
    """The explorer's model side on the describe run: loads both stages, answers about an
    entity and about a point between two, and scores answers against the descriptions."""
    from elc.explorer.loading import load_catalog, load_model
    from helpers import load_config
    config = load_config("describe")
    config.prepare.out_dir = str(data)
    config.backbone.update(format="random", preset="tiny", tokenizer="byte")
    config.model.adapter.hidden_dims = (16,)
    config.stage.adapter.steps = config.stage.full.steps = 2
    config.stage.adapter.warmup_steps = config.stage.full.warmup_steps = 1
    config.sample.update(max_new_tokens=8, temperature=1.0)  # a 2-step model's greedy
    explorer = load_catalog(config, "describe", ["adapter", "full"])  # answer may be empty
    assert explorer.catalog.tasks_for("entity") == ["describe"]
    load_model(explorer, config, str(workdir), "TRAIN")
    assert explorer.problem == "" and explorer.model.stages == ["adapter", "full"]
    point = explorer.model.entity_point("entity", entity)
    reply = explorer.model.ask(point, "describe", "full", explorer.settings)
    assert reply.text and -1 <= reply.consistency <= 1 and len(reply.nearest) == 5
    other = explorer.catalog.space("entity").ids[0]
    mixed = explorer.model.mixed_point("entity", entity, other, 0.5)
    assert explorer.model.ask(mixed, "describe", "adapter", explorer.settings).text
