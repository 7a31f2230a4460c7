"""The whole MovieLens ELM job: prepare data, train both stages, evaluate, report.

  python -m launch.pipeline --config=configs/movielens_elm.py --workdir=workdir/movielens_elm

Without a variant suffix the config picks ``full`` on a GPU or TPU and ``cpu_quick``
elsewhere (see configs/movielens_elm.py). Every phase resumes: data prepared with the same
settings are reused, training continues from the workdir's last checkpoint, and a finished
training goes straight to evaluation, which saves every answer (WORKDIR/eval/answers.jsonl)
and then scores them. The report is WORKDIR/eval/report.md. Runs on one host.
"""

import time

from absl import app, flags, logging
from ml_collections import config_flags

from elc.projects.movielens.config_checks import MOVIELENS_CHECKS
from elc.projects.movielens.prepare import is_prepared, prepare_movielens
from elc.projects.movielens.evaluation import evaluate_and_report
from elc.train.config_check import check_run_config
from elc.train.trainer import train
from elc.train.workdir_lock import workdir_lock
from launch.quiet_logs import quiet_third_party_logs

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints, logs and the report go.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_third_party_logs()
    config, workdir = _CONFIG.value, _WORKDIR.value
    logging.info("MovieLens ELM, variant %s, workdir %s", config.get("variant", "?"), workdir)
    # The data files come from prepare.
    check_run_config(config, require_files=False, project_checks=MOVIELENS_CHECKS)
    seconds = {}
    start = time.time()
    if is_prepared(config.prepare, config.prepare.out_dir):
        logging.info("data already prepared in %s", config.prepare.out_dir)
    else:
        prepare_movielens(config.prepare, config.prepare.out_dir)
    seconds["prepare"] = time.time() - start
    with workdir_lock(workdir):  # held from training to the report
        start = time.time()
        train(config, workdir)
        seconds["train"] = time.time() - start
        start = time.time()
        report = evaluate_and_report(config, workdir, phase="all")
        seconds["eval"] = time.time() - start
    print(" ".join(f"{phase} {s:.0f}s" for phase, s in seconds.items()),
          f"total {sum(seconds.values()):.0f}s")
    print(f"report: {report}")


if __name__ == "__main__":
    app.run(main)
