"""Evaluates a trained ELM of a project (MovieLens, describe) and writes a report.

  python -m launch.eval --config=configs/movielens_elm.py --workdir=/tmp/movielens_elm
  python -m launch.eval --config=configs/describe.py --workdir=/tmp/describe

Use the config (and overrides) the run was trained with. Two phases, both by default:

  --phase=generate   the model answers every prompt: WORKDIR/eval/answers.jsonl and its
                     header answers_meta.json (wants the accelerator)
  --phase=score      scores the saved answers: WORKDIR/eval/results.json and
                     WORKDIR/eval/report.md with its figures (no backbone, no checkpoint,
                     any machine with the prepared data)

See elc/projects/movielens/evaluation.py and elc/projects/describe/evaluation.py for what
is measured. The project comes from the config (config.project; MovieLens configs need
none). Runs on one host.
"""

import shlex
import sys

from absl import app, flags
from ml_collections import config_flags

from elc.evaluation.phases import PHASES
from elc.train.config_check import check_run_config
from elc.train.workdir_lock import workdir_lock
from launch.projects import config_project
from launch.quiet_logs import quiet_third_party_logs

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The trained run's workdir.")
_PHASE = flags.DEFINE_enum("phase", "all", PHASES,
                           "generate: save the answers (eval/answers.jsonl); score: score "
                           "saved answers into eval/results.json and eval/report.md; all: both.")
flags.mark_flags_as_required(["config", "workdir"])


def _generate_command(argv: list[str]) -> str:
    """This command line with --phase=generate: the command that saves the answers."""
    args, skip = [], False
    for arg in argv[1:]:
        if skip or arg.startswith(("--phase=", "-phase=")):
            skip = False
        elif arg in ("--phase", "-phase"):
            skip = True  # and its value, the next argument
        else:
            args.append(arg)
    return shlex.join(["python", "-m", "launch.eval", *args, "--phase=generate"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_third_party_logs()
    try:
        project = config_project(_CONFIG.value, "launch.eval")
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    for section in ("prepare", "eval"):
        if section not in _CONFIG.value:
            raise app.UsageError(f"the config has no {section!r} section; launch.eval needs "
                                 f"the {project} project's config")
    if project == "describe":
        from elc.projects.describe.evaluation import evaluate_and_report
        project_checks = {}
    else:
        from elc.projects.movielens.config_checks import MOVIELENS_CHECKS as project_checks
        from elc.projects.movielens.evaluation import evaluate_and_report
    # The run's config, checked before any model loads (its data files may not exist on a
    # machine that only scores).
    check_run_config(_CONFIG.value, require_files=False, project_checks=project_checks)
    with workdir_lock(_WORKDIR.value):
        path = evaluate_and_report(_CONFIG.value, _WORKDIR.value, _PHASE.value,
                                   _generate_command(sys.argv))
    print(f"{'answers' if _PHASE.value == 'generate' else 'report'}: {path}")


if __name__ == "__main__":
    app.run(main)
