"""Builds MovieLens embeddings and ELM task datasets once, into config.prepare.out_dir.

  python -m launch.prepare_data --config=configs/movielens_elm.py
"""

import json

from absl import app
from ml_collections import config_flags

from elc.projects.movielens.prepare import prepare_movielens
from launch.quiet_logs import quiet_third_party_logs

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_third_party_logs()
    config = _CONFIG.value
    report = prepare_movielens(config.prepare, config.prepare.out_dir)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    app.run(main)
