"""Reading back the held-out metrics at the end of each stage from metrics.jsonl."""

import json

from elc.train.metrics_log import stage_end_evals


def test_each_stage_ends_with_its_last_evaluation(tmp_path):
    records = [
        {"step": 5, "stage": "adapter", "loss": 3.0},
        {"step": 5, "stage": "adapter", "eval/loss": 2.9, "eval/vector_gain": 0.0},  # mid-stage
        {"step": 10, "stage": "adapter", "eval/loss": 2.5, "eval/vector_gain": 0.25},
        {"step": 15, "stage": "full", "loss": 1.0},
        {"step": 20, "stage": "full", "eval/loss": 0.75, "eval/vector_gain": 0.5},
        # A run resumed from step 15 logs the end of its stage again.
        {"step": 20, "stage": "full", "eval/loss": 0.875, "eval/vector_gain": 0.125},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert stage_end_evals(str(tmp_path)) == {
        "adapter": {"loss": 2.5, "vector_gain": 0.25},
        "full": {"loss": 0.875, "vector_gain": 0.125}}


def test_no_log_no_stages(tmp_path):
    assert stage_end_evals(str(tmp_path)) == {}
