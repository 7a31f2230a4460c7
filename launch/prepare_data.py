"""Builds a project's data once, into config.prepare.out_dir.

  python -m launch.prepare_data --config=configs/movielens_elm.py
  python -m launch.prepare_data --config=configs/describe.py \
      --config.prepare.table=TABLE.npz --config.prepare.texts=TEXTS.jsonl

The project comes from the config (config.project; MovieLens configs need none).
"""

import json

from absl import app
from ml_collections import config_flags

from launch.projects import config_project
from launch.quiet_logs import quiet_third_party_logs

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_third_party_logs()
    config = _CONFIG.value
    try:
        project = config_project(config, "launch.prepare_data")
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    if project == "describe":
        from elc.projects.describe.prepare import prepare_describe
        report = prepare_describe(config.prepare, config.prepare.out_dir)
    else:
        from elc.projects.movielens.prepare import prepare_movielens
        report = prepare_movielens(config.prepare, config.prepare.out_dir)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    app.run(main)
