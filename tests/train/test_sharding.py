"""Sharded training on 8 fake CPU devices and across 2 processes, against one device."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from elc.sharding import logical_rules, make_mesh

from helpers import ROOT, fake_devices_env, read_metrics

SHORT_RUN = ["--config=configs/tiny_elm.py", "--config.stage.adapter.steps=10",
             "--config.stage.adapter.warmup_steps=2", "--config.stage.full.steps=10",
             "--config.stage.full.warmup_steps=2", "--config.train.log_every=1",
             "--config.train.checkpoint_every=4", "--config.train.eval_every=1000"]
# Sharded reductions sum in another order than one device does; measured differences
# are ~4e-7 relative.
LOSS_RTOL = 1e-5


def environment(devices):
    env = fake_devices_env(devices)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def launch(workdir, devices=1, extra=(), process=None):
    command = [sys.executable, "-m", "launch.train", f"--workdir={workdir}", *SHORT_RUN, *extra]
    if process is not None:
        command += process
    return subprocess.Popen(command, cwd=ROOT, env=environment(devices), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(*processes):
    for p in processes:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]


def assert_same_losses(run, reference):
    got, want = read_metrics(run), read_metrics(reference)
    assert sorted(got) == sorted(want) == list(range(1, 21))
    for step in want:
        assert got[step]["loss"] == pytest.approx(want[step]["loss"], rel=LOSS_RTOL), step


@pytest.fixture(scope="module")
def single_device_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("one_device")
    finish(launch(workdir))
    return workdir


@pytest.mark.slow
def test_sharded_losses_match_one_device(tmp_path, single_device_run):
    # All three axes at once, with tensor parallelism; the two-process test below shards
    # parameters and optimizer state across processes with the default fsdp rules.
    finish(launch(tmp_path, devices=8, extra=[
        "--config.mesh.data=2", "--config.mesh.fsdp=2", "--config.mesh.tensor=2",
        "--config.mesh.rules=fsdp_tp"]))
    assert_same_losses(tmp_path, single_device_run)


def probe(rules, data, fsdp, tensor):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "probes", "sharding_probe.py"),
                             rules, str(data), str(fsdp), str(tensor)], cwd=ROOT,
                            env=environment(8), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.slow
def test_parameters_and_optimizer_state_are_really_sharded():
    fsdp = probe("fsdp", 1, 8, 1)
    q = ".trainable['backbone']['groups']['layer_0']['attention']['q_proj']"
    # [layers=1, embed=64, heads=4, head_dim=16]: embed split 8 ways.
    assert fsdp[q] == [[None, "fsdp"], [1, 8, 4, 16]]
    assert fsdp[".opt_state[1][0].mu['backbone']['groups']['layer_0']['attention']['q_proj']"] \
        == fsdp[q]
    assert fsdp[".trainable['backbone']['embedder']['embedding']"][1] == [512, 8]
    tp = probe("fsdp_tp", 2, 2, 2)
    assert tp[q] == [[None, "fsdp", "tensor"], [1, 32, 2, 16]]
    assert tp[".trainable['backbone']['embedder']['embedding']"] == [["tensor", "fsdp"], [256, 32]]
    up = ".trainable['backbone']['tail']['layer_0']['mlp']['up_proj']"
    assert tp[up] == [["fsdp", "tensor"], [32, 64]]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_two_processes(workdir):
    """A run over two processes of one device each, its parameters and optimizer state
    sharded across them (fsdp 2)."""
    port = free_port()
    return [launch(workdir, devices=1, extra=["--config.mesh.data=1", "--config.mesh.fsdp=2"],
                   process=[f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
                            f"--process_id={i}"])
        for i in range(2)]


@pytest.mark.minutes
@pytest.mark.slow
def test_two_processes_killed_and_resumed_match_one_device(tmp_path, single_device_run):
    processes = launch_two_processes(tmp_path)
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline and all(p.poll() is None for p in processes):
        if metrics.exists() and max(read_metrics(tmp_path) or [0]) >= 14:
            break
        time.sleep(0.05)
    assert all(p.poll() is None for p in processes), "the run ended before it could be killed"
    for p in processes:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert max(read_metrics(tmp_path)) < 20
    finish(*launch_two_processes(tmp_path))
    assert_same_losses(tmp_path, single_device_run)


@pytest.mark.slow
def test_sigterm_saves_and_exits_cleanly(tmp_path):
    process = launch(tmp_path, extra=["--config.train.checkpoint_every=1000"])
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None:
        if (tmp_path / "metrics.jsonl").exists() and max(read_metrics(tmp_path) or [0]) >= 5:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    saved = sorted(int(d) for d in os.listdir(tmp_path / "checkpoints") if d.isdigit())
    assert saved and 5 <= saved[-1] < 20  # the step it stopped at, not a scheduled save


def test_mesh_errors_name_the_problem():
    with pytest.raises(ValueError, match="only one mesh axis may be -1"):
        make_mesh({"data": -1, "fsdp": -1, "tensor": 1})
    with pytest.raises(ValueError, match="has 4 devices, but 1 are available"):
        make_mesh({"data": 2, "fsdp": 2, "tensor": 1})
    with pytest.raises(ValueError, match="mesh.rules is 'zero3'"):
        logical_rules("zero3")
