"""The Cloud TPU launcher's dry run: the gcloud commands it would run."""

import shlex

import pytest

from launch.cloud_tpu import commands, parse

ARGS = ["--name=elm", "--zone=us-east5-a", "--accelerator_type=v5p-128",
        "--repository=https://example.org/elc.git", "--checkpoint_dir=gs://bucket/ckpt"]


def test_creates_installs_and_trains_on_every_worker():
    args, train_args = parse(ARGS + ["--", "--config=configs/elm_270m.py", "--config.mesh.fsdp=-1",
                                     "--config.mesh.data=1"])
    create, install, train = commands(args, train_args)
    assert create[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "create", "elm"]
    assert "--accelerator-type=v5p-128" in create
    for ssh in (install, train):
        assert ssh[4:6] == ["ssh", "elm"] and "--worker=all" in ssh
    assert "git clone https://example.org/elc.git" in install[-1]
    words = shlex.split(train[-1])
    assert words[:5] == ["cd", "elc", "&&", "python3", "-m"] and words[5] == "launch.train"
    assert "--config.train.checkpoint_dir=gs://bucket/ckpt" in words
    assert "--config=configs/elm_270m.py" in words and "--config.mesh.fsdp=-1" in words


def test_reuse_skips_creation():
    args, train_args = parse(ARGS + ["--reuse", "--", "--config=configs/elm_270m.py"])
    assert [c[4] for c in commands(args, train_args)] == ["ssh", "ssh"]


def test_train_arguments_are_required():
    with pytest.raises(SystemExit):
        parse(ARGS)
