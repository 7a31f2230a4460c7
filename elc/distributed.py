"""Joins the processes of a multi-host run into one JAX runtime.

The same launcher runs on every host. On Cloud TPU and under SLURM, JAX finds the
coordinator itself; elsewhere give it explicitly, by flags or environment variables
(ELC_COORDINATOR_ADDRESS, ELC_NUM_PROCESSES, ELC_PROCESS_ID).
"""

from __future__ import annotations

import glob
import importlib.util
import os

import jax
from absl import logging


def _running_on_cloud_tpu() -> bool:
    return any(k in os.environ for k in ("TPU_WORKER_HOSTNAMES", "TPU_WORKER_ID",
                                         "CLOUD_TPU_TASK_ID"))


def _running_under_slurm() -> bool:
    return int(os.environ.get("SLURM_NTASKS", "1")) > 1


def initialize(coordinator_address: str = "", num_processes: int = 0,
               process_id: int = -1) -> None:
    """Calls ``jax.distributed.initialize`` when this is one process of several.

    Explicit arguments win over the environment variables; with neither, Cloud TPU and
    SLURM are detected, and anything else runs as a single process. CPU processes talk
    through gloo collectives.
    """
    coordinator_address = coordinator_address or os.environ.get("ELC_COORDINATOR_ADDRESS", "")
    num_processes = num_processes or int(os.environ.get("ELC_NUM_PROCESSES", "0"))
    if process_id < 0:
        process_id = int(os.environ.get("ELC_PROCESS_ID", "-1"))
    explicit = [bool(coordinator_address), num_processes > 0, process_id >= 0]
    if any(explicit) and not all(explicit):
        raise ValueError("a multi-process run needs all of coordinator_address, num_processes "
                         f"and process_id; got {coordinator_address!r}, {num_processes}, "
                         f"{process_id}")
    if all(explicit):
        if not 0 <= process_id < num_processes:
            raise ValueError(f"process_id {process_id} is outside [0, {num_processes})")
        # Only CPU devices use it; GPU and TPU collectives are unaffected.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address, num_processes=num_processes,
                                   process_id=process_id)
    elif _running_on_cloud_tpu() or _running_under_slurm():
        jax.distributed.initialize()
    else:
        return
    logging.info("process %d of %d joined; %d local and %d global devices", jax.process_index(),
                 jax.process_count(), jax.local_device_count(), jax.device_count())


def accelerator_available() -> bool:
    """Whether this machine has a TPU or GPU together with the JAX runtime for it.

    Found from device files and installed packages, without initialising JAX: a
    multi-host run must call :func:`initialize` before anything touches the backends.
    ``JAX_PLATFORMS=cpu`` forces False.
    """
    if os.environ.get("JAX_PLATFORMS", "").strip().lower() == "cpu":
        return False
    tpu = glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*")
    gpu = glob.glob("/dev/nvidia[0-9]*")
    tpu_runtime = importlib.util.find_spec("libtpu") is not None
    gpu_runtime = any(importlib.util.find_spec(name) is not None
                      for name in ("jax_cuda12_plugin", "jax_cuda13_plugin"))
    return bool(tpu and tpu_runtime) or bool(gpu and gpu_runtime)
