"""Trains an ELM: every stage of the config, resuming from the workdir's last checkpoint.

Multi-host: run the same command on every host. Cloud TPU and SLURM are detected;
elsewhere add --coordinator_address=HOST:PORT --num_processes=N --process_id=I (or set
ELC_COORDINATOR_ADDRESS, ELC_NUM_PROCESSES, ELC_PROCESS_ID). SIGTERM saves a checkpoint
at the next step boundary and exits.

  python -m launch.train --config=configs/tiny_elm.py --workdir=/tmp/tiny_elm
  python -m launch.train --config=configs/elm_270m.py --workdir=/tmp/elm \
      --config.stage.adapter.steps=20 --config.data.batch_size=8

The workdir receives checkpoints/, metrics.jsonl and tensorboard/.
"""

from absl import app, flags
from ml_collections import config_flags

from elc.train.trainer import train
from launch.multihost_flags import initialize_from_flags
from launch.quiet_logs import quiet_third_party_logs

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where checkpoints and logs go.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_third_party_logs()
    initialize_from_flags()
    results = train(_CONFIG.value, _WORKDIR.value)
    print(" ".join(f"{k}={v:.4f}" for k, v in results.items()))


if __name__ == "__main__":
    app.run(main)
