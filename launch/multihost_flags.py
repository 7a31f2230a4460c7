"""The flags that join a launcher's process to a multi-host run (see elc/distributed.py)."""

from absl import flags

from elc import distributed

_COORDINATOR = flags.DEFINE_string("coordinator_address", "", "HOST:PORT of process 0.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 0, "Processes in the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", -1, "This process's index.")


def initialize_from_flags() -> None:
    """Joins the run the flags (or ELC_* variables, Cloud TPU, SLURM) describe, if any."""
    distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
