"""launch.plan plans the model launch.train trains: the same spaces, adapters and counts."""

import json
import logging
import re
import subprocess
import sys

import numpy as np
import pytest

from elc.data.space_spec import model_spaces, table_dim
from elc.train.build import build_elm, stages_from_config
from elc.train.stage_program import memory_plan
from elc.train.trainer import setup_run, stage_state, train

from helpers import ROOT, load_config

COUNT_LINE = re.compile(r"stage (\w+): (\d+) trainable of (\d+) parameters")


def tiny_config():
    return load_config("tiny_elm")


def trainer_counts(config) -> dict[str, tuple[int, int]]:
    """Stage -> (trainable, total) as the trainer logs them at the start of each stage."""
    run = setup_run(config)
    return {stage.name: (stage_state(run, i).trainable_parameters,
                         stage_state(run, i).total_parameters)
            for i, stage in enumerate(run.stages)}


def jsonl_config(tmp_path):
    """The tiny backbone with two table spaces: ``item`` (6-d .npz, two slots per example)
    and ``user`` (4-d .npy with an ids file, one slot), a wider adapter with two soft tokens."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "item.npz", ids=np.array(["a", "b", "c"]),
             vectors=rng.normal(size=(3, 6)).astype(np.float32))
    np.save(tmp_path / "user.npy", rng.normal(size=(2, 4)).astype(np.float32))
    (tmp_path / "user_ids.txt").write_text("u1\nu2\n")
    lines = [{"prompt": "Does <user> like <item:x> more than <item:y>?", "target": "yes",
              "slots": {"user": "u1", "item:x": "a", "item:y": "b"}},
             {"prompt": "Name <item>.", "target": "c", "slots": {"item": "c"}}]
    with open(tmp_path / "examples.jsonl", "w") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    config = tiny_config()
    config.data.update(source="jsonl", train=str(tmp_path / "examples.jsonl"),
                       eval=str(tmp_path / "examples.jsonl"), batch_size=2, eval_batch_size=2)
    config.data.spaces = {
        "item": dict(table=str(tmp_path / "item.npz"), ids="", dim=0, max_slots=2),
        "user": dict(table=str(tmp_path / "user.npy"), ids=str(tmp_path / "user_ids.txt"),
                     dim=4, max_slots=1)}
    config.model.adapter.update(num_soft_tokens=2, hidden_dims=(32,), activation="relu",
                                input_norm="rms", output_scale=2.0)
    config.stage.adapter.update(steps=1, warmup_steps=0)
    config.stage.full.update(steps=1, warmup_steps=0, trainable=("adapters/.*", ".*/layer_0/.*"))
    config.train.update(log_every=1, max_eval_batches=1, async_checkpoints=False)
    return config


def test_the_plan_of_the_tiny_config_counts_what_the_trainer_trains():
    result = subprocess.run([sys.executable, "-m", "launch.plan", "--config=configs/tiny_elm.py"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    planned = {m[0]: (int(m[1]), int(m[2])) for m in COUNT_LINE.findall(result.stdout)}
    assert planned == trainer_counts(tiny_config())
    assert planned["adapter"][0] < planned["full"][0] == planned["full"][1]
    # Each stage is also planned with logits at every position, beside the saving.
    assert "| total GiB/device | with full logits GiB | saved |" in result.stdout
    rows = re.findall(r"^\| (adapter|full) \|(.*)\|$", result.stdout, re.MULTILINE)
    assert [stage for stage, _ in rows] == ["adapter", "full"]
    for _, cells in rows:
        *_, total, full_logits, saved = [c.strip() for c in cells.split("|")]
        assert float(full_logits) > 0 and re.fullmatch(r"-?\d+%", saved)


@pytest.mark.slow
def test_devices_is_parsed_by_absl_in_either_form_and_must_be_positive():
    def plan_adapter(*flags):
        return subprocess.run([sys.executable, "-m", "launch.plan", "--config=configs/tiny_elm.py",
                               "--stage=adapter", "--nocompare_full_logits", *flags],
                              cwd=ROOT, capture_output=True, text=True, timeout=600)

    spaced = plan_adapter("--devices", "2")  # was read by hand, as 1 device
    assert spaced.returncode == 0, spaced.stderr[-3000:]
    assert "; 2 devices, " in spaced.stdout
    zero = plan_adapter("--devices=0")  # was planned for no device
    assert zero.returncode != 0
    assert "flag --devices=0: 0 is not a positive integer" in zero.stderr


@pytest.mark.minutes
def test_a_multi_space_plan_counts_what_the_trainer_logs(tmp_path, caplog):
    config = jsonl_config(tmp_path)
    spaces = {s.name: (s.dim, s.max_slots) for s in model_spaces(config.data)}
    assert spaces == {"item": (6, 2), "user": (4, 1)}
    elm = build_elm(config)
    assert elm.spaces == (("item", 6), ("user", 4))
    assert (elm.adapter.num_soft_tokens, elm.adapter.hidden_dims, elm.adapter.activation,
            elm.adapter.input_norm, elm.adapter.output_scale) == (2, (32,), "relu", "rms", 2.0)
    planned = {}
    for stage in stages_from_config(config):
        row = memory_plan(config, stage)
        planned[row["stage"]] = (row["trainable_parameters"], row["total_parameters"])
        assert row["batch"] > 0 and row["temporaries"] > 0
    caplog.set_level(logging.INFO, logger="absl")
    train(config, str(tmp_path / "run"))
    logged = {m[0]: (int(m[1]), int(m[2])) for m in COUNT_LINE.findall(caplog.text)}
    assert planned == logged
    adapter, full = planned["adapter"], planned["full"]
    assert adapter[1] == full[1] and adapter[0] < full[0] < full[1]


def test_a_missing_table_names_the_file_and_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data\.spaces\.movie\.table: no file .*gone\.npz.*"
                                                r"launch\.prepare_data"):
        table_dim("movie", str(tmp_path / "gone.npz"))
