"""Evaluates a trained MovieLens ELM against its baselines, on held-out movies and users.

Two phases, which may run on different machines:
  * generate (:mod:`elc.projects.movielens.eval_generate`): loads the model and its stages'
    parameters and saves every variant's answers to ``WORKDIR/eval/answers.jsonl`` with a
    header ``answers_meta.json`` (see :mod:`elc.evaluation.answers`); wants an accelerator.
  * score (:mod:`elc.projects.movielens.eval_score`): scores the saved answers (facts, MiniLM
    semantic consistency, ridge maps into the ALS spaces, interpolations, CAVs) and writes
    ``WORKDIR/eval/results.json`` and ``WORKDIR/eval/report.md``; loads no backbone and no
    checkpoint.
"""

from __future__ import annotations

import json
import os

from elc.evaluation.answers import plain, write_atomically
from elc.evaluation.report import write_report
from elc.projects.movielens import eval_generate, eval_score
from elc.projects.movielens.eval_data import eval_dir, eval_tasks

PHASES = ("all", "generate", "score")


def generate_command(workdir: str, config_arg: str = "CONFIG") -> str:
    """The command that saves the answers of the run in ``workdir``."""
    return f"python -m launch.eval --config={config_arg} --workdir={workdir} --phase=generate"


def evaluate_and_report(config, workdir: str, phase: str = "all",
                        generate_command_hint: str | None = None) -> str:
    """Runs ``phase`` of the evaluation of the run of ``config`` (a movielens_elm config,
    the one it was trained with) in ``workdir``; returns the path of what it wrote last:
    ``WORKDIR/eval/answers.jsonl`` for ``generate``, else ``WORKDIR/eval/report.md``
    (after ``WORKDIR/eval/results.json``).

    ``generate_command_hint`` is the command that makes the answers, named when scoring
    finds none (default: :func:`generate_command`).
    """
    if phase not in PHASES:
        raise ValueError(f"unknown evaluation phase {phase!r}; expected one of {PHASES}")
    eval_tasks(config)  # names an unknown task before anything loads
    hint = generate_command_hint or generate_command(workdir)
    if phase in ("all", "generate"):
        answers = eval_generate.generate_answers(config, workdir)
        if phase == "generate":
            return answers
    results = plain(eval_score.score_answers(config, workdir, hint))
    out_dir = eval_dir(workdir)
    write_atomically(os.path.join(out_dir, "results.json"),
                     json.dumps(results, indent=1, allow_nan=False))
    return write_report(results, out_dir)
