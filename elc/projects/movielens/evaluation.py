"""Evaluates a trained MovieLens ELM against its baselines, on held-out movies and users.

Two phases, which may run on different machines:
  * generate (:mod:`elc.projects.movielens.eval_generate`): loads the model and its stages'
    parameters and saves every variant's answers to ``WORKDIR/eval/answers.jsonl`` with a
    header ``answers_meta.json`` (see :mod:`elc.evaluation.answers`); wants an accelerator.
  * score (:mod:`elc.projects.movielens.eval_score`): scores the saved answers (facts, MiniLM
    semantic consistency, ridge maps into the ALS spaces, interpolations, CAVs) and writes
    ``WORKDIR/eval/results.json``, ``WORKDIR/eval/summary.json`` and
    ``WORKDIR/eval/report.md``; loads no backbone and no checkpoint.
"""

from __future__ import annotations

from elc.evaluation import phases
from elc.evaluation.report import write_report
from elc.projects.movielens import eval_generate, eval_score
from elc.projects.movielens.eval_data import eval_tasks
from elc.projects.movielens.summary import goals, write_summary


def evaluate_and_report(config, workdir: str, phase: str = "all",
                        generate_command_hint: str | None = None) -> str:
    """Runs ``phase`` of the evaluation of the run of ``config`` (a movielens_elm config,
    the one it was trained with) in ``workdir``; returns the path of what it wrote last:
    ``WORKDIR/eval/answers.jsonl`` for ``generate``, else ``WORKDIR/eval/report.md``
    (after ``WORKDIR/eval/results.json``).

    ``generate_command_hint`` is the command that makes the answers, named when scoring
    finds none (default: :func:`elc.evaluation.phases.generate_command`).
    """
    eval_tasks(config)  # names an unknown task before anything loads
    hint = generate_command_hint or phases.generate_command(workdir, "CONFIG")
    return phases.run_phases(phase, workdir,
                             lambda: eval_generate.generate_answers(config, workdir),
                             lambda: eval_score.score_answers(config, workdir, hint),
                             _summary_and_report)


def _summary_and_report(results: dict, out_dir: str) -> str:
    """Writes ``summary.json`` (:mod:`elc.projects.movielens.summary`), then the report
    with the main job's goals; returns the report's path."""
    write_summary(results, out_dir)
    return write_report({**results, "goals": goals(results)}, out_dir)
