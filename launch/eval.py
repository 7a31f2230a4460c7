"""Evaluates a trained MovieLens ELM against its baselines and writes a report.

  python -m launch.eval --config=configs/movielens_elm.py --workdir=/tmp/movielens_elm

Use the config (and overrides) the run was trained with. Writes WORKDIR/eval/results.json
and WORKDIR/eval/report.md with its figures; see elc/evaluation/movielens_eval.py for
what is measured. Runs on one host.
"""

from absl import app, flags
from ml_collections import config_flags

from elc.evaluation.movielens_eval import evaluate_and_report
from launch.quiet_logs import quiet_third_party_logs

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "The trained run's workdir.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_third_party_logs()
    for section in ("prepare", "eval"):
        if section not in _CONFIG.value:
            raise app.UsageError(f"the config has no {section!r} section; launch.eval needs a "
                                 "MovieLens ELM config such as configs/movielens_elm.py")
    print(f"report: {evaluate_and_report(_CONFIG.value, _WORKDIR.value)}")


if __name__ == "__main__":
    app.run(main)
