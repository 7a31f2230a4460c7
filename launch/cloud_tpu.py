"""Creates (or reuses) a Cloud TPU VM slice and runs the same launch.train on every worker.

  python -m launch.cloud_tpu --name=elm-v5p --zone=us-east5-a --accelerator_type=v5p-128 \
      --version=v2-alpha-tpuv5 --repository=https://github.com/YOU/elc.git \
      --checkpoint_dir=gs://my-bucket/elm/checkpoints -- \
      --config=configs/elm_270m.py --config.backbone.preset=27b --config.mesh.fsdp=-1 \
      --config.mesh.data=1
  python -m launch.cloud_tpu ... --dry_run     # print the gcloud commands, run nothing

Everything after ``--`` goes to launch.train. On the workers JAX finds the other hosts
itself (jax.distributed.initialize() with no arguments on Cloud TPU). Checkpoints must
go where every worker can write (a GCS bucket: every host writes its own shards); logs
are written by worker 0 into its local ``--workdir``.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

def commands(args: argparse.Namespace, train_args: list[str]) -> list[list[str]]:
    """The gcloud invocations, in order."""
    common = [f"--zone={args.zone}"] + ([f"--project={args.project}"] if args.project else [])
    create = ["gcloud", "compute", "tpus", "tpu-vm", "create", args.name, *common,
              f"--accelerator-type={args.accelerator_type}", f"--version={args.version}"]
    if args.spot:
        create.append("--spot")
    install = (f"set -e; if [ ! -d elc ]; then git clone {shlex.quote(args.repository)} elc; fi; "
               f"cd elc && git fetch -q && git checkout -q {shlex.quote(args.ref)} && "
               "python3 -m pip install -q -U pip && python3 -m pip install -q -e . 'jax[tpu]'")
    train = ("cd elc && python3 -m launch.train " + " ".join(shlex.quote(a) for a in [
        f"--workdir={args.workdir}", f"--config.train.checkpoint_dir={args.checkpoint_dir}",
        *train_args]))
    ssh = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", args.name, *common, "--worker=all"]
    steps = [] if args.reuse else [create]
    return steps + [ssh + ["--command", install], ssh + ["--command", train]]


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    ours, train_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="TPU VM name")
    parser.add_argument("--zone", required=True)
    parser.add_argument("--project", default="")
    parser.add_argument("--accelerator_type", default="v5p-8", help="e.g. v4-32, v5p-128, v6e-64")
    parser.add_argument("--version", default="v2-alpha-tpuv5", help="TPU VM software version")
    parser.add_argument("--checkpoint_dir", required=True,
                        help="written by all workers, e.g. gs://bucket/run/checkpoints")
    parser.add_argument("--workdir", default="elc_run", help="logs, on worker 0's disk")
    parser.add_argument("--repository", required=True, help="git URL of elc to install")
    parser.add_argument("--ref", default="main", help="git branch, tag or commit to run")
    parser.add_argument("--reuse", action="store_true", help="the slice exists: skip creation")
    parser.add_argument("--spot", action="store_true", help="create a Spot (preemptible) slice")
    parser.add_argument("--dry_run", action="store_true", help="print the commands only")
    args = parser.parse_args(ours)
    if not any(a.startswith("--config=") for a in train_args):
        parser.error("give launch.train's arguments after '--', at least --config=...")
    return args, train_args


def main(argv: list[str]) -> int:
    args, train_args = parse(argv)
    for command in commands(args, train_args):
        print(shlex.join(command), flush=True)
        if not args.dry_run:
            result = subprocess.run(command)
            if result.returncode:
                return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
