"""The two phases of every project's evaluation: generate answers (loads the model; the
accelerator's work), then score the saved answers (no model; any machine).

A project supplies its generation and scoring steps and its report writer; this module
holds what is the same for all of them: the phase names, where the answers and results
live, the generation settings, the variants that answer (the untrained model and the end
of every stage), and the order of the steps.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from elc.evaluation.answers import plain, write_atomically
from elc.generation.answering import GenerationConfig

PHASES = ("all", "generate", "score")


def eval_dir(workdir: str) -> str:
    """Where a run's answers, results and report live."""
    return os.path.join(workdir, "eval")


def generate_command(workdir: str, config_arg: str) -> str:
    """The command that saves the answers of the run in ``workdir``."""
    return f"python -m launch.eval --config={config_arg} --workdir={workdir} --phase=generate"


def generation_config(eval_config) -> GenerationConfig:
    """How a config's ``eval`` section generates: greedy, ``max_new_tokens``, batched."""
    return GenerationConfig(max_new_tokens=eval_config.max_new_tokens,
                            batch_size=eval_config.batch_size, seed=eval_config.seed)


def variant_params(config, workdir: str, run) -> list[tuple[str, Callable[[], dict]]]:
    """(variant, params loader) for the untrained model (fresh adapters, the training
    start) and the end of every stage of ``run`` (a trainer ``Run``) in ``workdir``. Call
    each once, in order: the first hands the backbone's arrays over to its params."""
    import jax

    from elc.train import trainer  # looked up at call time: scoring never loads a model

    def untrained() -> dict:
        params = trainer.initial_params(run, jax.random.key(config.train.seed))
        run.backbone = None  # its arrays now live in params; the stages' loaders read checkpoints
        return params

    loaders = [("untrained", untrained)]
    for stage in run.stages:
        loaders.append((stage.name, lambda s=stage.name: trainer.restore_stage_params(
            config, workdir, run, s)))
    return loaders


def run_phases(phase: str, workdir: str, generate: Callable[[], str],
               score: Callable[[], dict[str, Any]],
               write_report: Callable[[dict[str, Any], str], str]) -> str:
    """Runs ``phase``: ``generate`` saves the answers and returns their path; ``score``
    scores the saved answers into ``WORKDIR/eval/results.json`` and returns the path of
    the report ``write_report(results, eval_dir)`` writes; ``all`` does both."""
    if phase not in PHASES:
        raise ValueError(f"unknown evaluation phase {phase!r}; expected one of {PHASES}")
    if phase in ("all", "generate"):
        answers = generate()
        if phase == "generate":
            return answers
    results = plain(score())
    out_dir = eval_dir(workdir)
    write_atomically(os.path.join(out_dir, "results.json"),
                     json.dumps(results, indent=1, allow_nan=False))
    return write_report(results, out_dir)
