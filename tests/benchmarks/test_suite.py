"""The accelerator suite: its FLOP and byte counts, and the whole suite at tiny shapes on CPU."""

import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT

from elc.benchmarks import flops
from elc.benchmarks.suite import Case, ELC_WORKER, Settings, cases, parse_shapes, run_case
from elc.model.config import get_preset



@pytest.mark.parametrize("preset,tokens_per_second,sequence,peer_mfu", [
    # The peer's figures on an H100 as the issue reports them (798 TFLOP/s measured peak).
    ("270m", 170e3, 1024, 0.36), ("1b", 67e3, 1024, 0.51), ("1b", 60e3, 2048, 0.46)])
def test_mfu_reproduces_the_peers_published_figures(preset, tokens_per_second, sequence,
                                                     peer_mfu):
    got = flops.mfu(tokens_per_second, get_preset(preset), sequence, 798e12)
    assert got == pytest.approx(peer_mfu, abs=0.005)


def test_matmul_params_are_all_params_but_the_norms():
    config = get_preset("270m")
    norms = config.num_layers * (4 * config.embed_dim + 2 * config.head_dim) + config.embed_dim
    assert flops.matmul_params(config) == config.num_params() - norms


def test_decode_bytes_count_weights_once_and_the_windowed_cache():
    config = get_preset("tiny")  # 7 layers: 6 local (window 8), 1 global; 2 kv heads of 16
    kv_per_token = 2 * 2 * 16 * 2  # k and v, kv heads, head_dim, bf16 bytes
    context = 20
    expected_kv = kv_per_token * (6 * 8 + 1 * 20)
    assert flops.decode_bytes_per_step(config, 3, context) == (
        2 * config.num_params() + 3 * expected_kv)


def test_parse_shapes_names_the_bad_entry():
    assert parse_shapes(["16x1024", "8X2048"]) == ((16, 1024), (8, 2048))
    with pytest.raises(ValueError, match="'16by1024'"):
        parse_shapes(["16by1024"])
    with pytest.raises(ValueError, match="'0x64'"):
        parse_shapes(["0x64"])


def test_cases_put_the_peer_beside_each_elc_stage_and_plans_last():
    settings = Settings(presets=("270m",), shapes=((16, 1024),), attentions=("xla", "cudnn"))
    names = [c.name for c in cases(settings)]
    assert names[:2] == ["ceilings", "correctness"]
    for stage in ("full", "adapter"):
        assert f"train/270m/16x1024/{stage}/cudnn" in names
        assert names.index(f"peer/270m/16x1024/{stage}") > names.index(
            f"train/270m/16x1024/{stage}/xla")
    assert [n for n in names if n.startswith("plan/")] == names[-2:]


@pytest.mark.slow
def test_a_failing_case_is_reported_not_raised():
    out = run_case(Case("bad", ELC_WORKER, {"kind": "train", "preset": "nope", "rows": 1,
                                            "length": 4, "stage": "full"}), timeout_s=120)
    assert "unknown Gemma preset 'nope'" in out["error"]


@pytest.mark.minutes
@pytest.mark.slow
def test_the_suite_runs_at_tiny_shapes_on_cpu(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "launch.benchmark", "--suite=accelerator", f"--out={out}",
         "--budget_s=900", "--peer=off"], cwd=ROOT, capture_output=True, text=True,
        timeout=1200, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    results = {name: entry.get("result") for name, entry in report["cases"].items()}
    missing = [name for name, result in results.items() if result is None]
    assert not missing, {name: report["cases"][name] for name in missing}
    assert set(results) == {"ceilings", "correctness", "train/tiny/2x32/full/xla",
                            "train/tiny/2x32/adapter/xla", "decode/tiny",
                            "plan/tiny/2x32/full", "plan/tiny/2x32/adapter"}
    numerics = results["correctness"]
    # bfloat16 compute against float32: between 1e-3 and a few 1e-2 relative error.
    assert 1e-4 < numerics["logits_rel_error"] < 5e-2
    assert numerics["loss_rel_difference"] < 1e-2
    full, frozen = results["train/tiny/2x32/full/xla"], results["train/tiny/2x32/adapter/xla"]
    assert full["tokens_per_second"] > 0 and frozen["tokens_per_second"] > 0
    assert frozen["trainable_params"] < full["trainable_params"]
    # Adam keeps two moments per trainable parameter: the plan's optimizer state says so.
    plan = results["plan/tiny/2x32/full"]
    assert plan["optimizer"] >= 2 * plan["params"]
    assert [r["batch"] for r in results["decode/tiny"]] == [1, 4]
    assert "| tiny | 2x32 | adapter | xla |" in done.stdout
