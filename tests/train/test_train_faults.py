"""Training runs that meet faults: a damaged checkpoint, a diverging loss, a busy workdir."""

import json

import pytest

from elc.train.checkpointing import Checkpointer
from elc.train.trainer import train
from elc.train.workdir_lock import LOCK_NAME, WorkdirLockedError

from helpers import load_config


def short_config(**train_fields):
    config = load_config("tiny_elm")
    config.stage.adapter.update(steps=4, warmup_steps=1)
    config.stage.full.update(steps=4, warmup_steps=1)
    config.train.update(log_every=1, eval_every=1000, checkpoint_every=2, keep_checkpoints=10,
                        **train_fields)
    return config


def test_a_damaged_checkpoint_is_set_aside_and_training_redone_identically(tmp_path):
    config = short_config()
    config.train.stages = ("adapter",)
    config.stage.adapter.steps = 6
    train(config, str(tmp_path))
    first = [json.loads(line) for line in open(tmp_path / "metrics.jsonl") if '"loss"' in line]
    # Steps 6 and 4 damaged: the run goes back to step 2.
    for step in (6, 4):
        prints = tmp_path / "checkpoints" / str(step) / "fingerprints" / "metadata"
        values = json.loads(prints.read_text())
        values[next(iter(values))]["weighted_sum"] ^= 1 << 7
        prints.write_text(json.dumps(values))
    train(config, str(tmp_path))
    assert sorted(p.name for p in (tmp_path / "checkpoints.rejected").iterdir()) == ["4", "6"]
    lines = [json.loads(line) for line in open(tmp_path / "metrics.jsonl") if '"loss"' in line]
    assert [line["step"] for line in lines] == list(range(1, 7)) + [3, 4, 5, 6]
    for redone, original in zip(lines[6:], first[2:]):
        assert redone["loss"] == pytest.approx(original["loss"], rel=1e-6), redone["step"]


def test_a_diverging_run_stops_naming_the_step_and_saves_no_bad_state(tmp_path):
    config = short_config()
    config.train.stages = ("adapter",)
    config.stage.adapter.learning_rate = 1e30  # finite, but the next forward pass overflows
    with pytest.raises(FloatingPointError, match=r"step (\d+): the loss is (nan|inf)"):
        train(config, str(tmp_path))
    checkpointer = Checkpointer(str(tmp_path / "checkpoints"), save_every=2, keep=10)
    latest = checkpointer.latest_step()
    checkpointer.close()
    assert latest is None or latest < 4
    # metrics.jsonl stays JSON: no bare NaN.
    for line in open(tmp_path / "metrics.jsonl"):
        json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in metrics.jsonl"))
    assert not (tmp_path / LOCK_NAME).exists()


def test_skip_mode_keeps_the_parameters_and_counts_skipped_updates(tmp_path):
    config = short_config(nonfinite_updates="skip")
    config.train.stages = ("adapter",)
    config.stage.adapter.learning_rate = 1e30
    train(config, str(tmp_path))
    lines = [json.loads(line) for line in open(tmp_path / "metrics.jsonl") if '"loss"' in line]
    stage_one = [line for line in lines if line["stage"] == "adapter"]
    # Step 1 learns at rate 0 (warmup), step 2 at 1e30 (clipped to norm 1: finite);
    # every later forward pass overflows.
    assert [line["skipped_update"] for line in stage_one] == [0.0, 0.0, 1.0, 1.0]
    assert stage_one[-1]["skipped_updates"] == 2.0
    assert all(line["loss"] is None for line in stage_one[2:])


def test_a_bad_nonfinite_mode_is_named(tmp_path):
    with pytest.raises(ValueError, match="train.nonfinite_updates='halt': expected one of"):
        train(short_config(nonfinite_updates="halt"), str(tmp_path))


def test_a_workdir_in_use_is_refused(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    with pytest.raises(WorkdirLockedError, match="process 1 on host elsewhere"):
        train(short_config(), str(tmp_path))
    assert not (tmp_path / "checkpoints").exists()
