"""Orbax checkpoints of the train state plus a JSON record of where the run stands.

The JSON part holds the stage, the data iterators' positions and anything else needed to
continue a run exactly; the state part is the TrainState pytree.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import jax
import orbax.checkpoint as ocp
from absl import logging
from orbax.checkpoint import checkpoint_managers

from elc.host_memory import release_freed_host_memory


def state_in_host_memory() -> bool:
    """Whether the arrays live in host memory (JAX's CPU backend)."""
    return jax.default_backend() == "cpu"


class Checkpointer:
    """Saves every ``save_every`` steps (and when forced), keeps the last ``keep`` plus
    those at ``preserve_steps`` (the ends of stages, which evaluation compares).

    Saves are asynchronous when ``async_save``: training continues while arrays are
    written; ``wait`` blocks until the last save is durable. Not when the arrays live in
    host memory (the CPU backend): there the save's "device to host" transfer is a view
    of the state's own buffers, which keeps the next train step from updating the donated
    state in place, so that step would hold a second copy of the whole state (parameters
    and optimizer moments) next to its activations. There a save returns once written,
    and what the writer allocated is handed back to the OS.
    """

    def __init__(self, directory: str, *, save_every: int, keep: int, async_save: bool = True,
                 preserve_steps: Sequence[int] = ()):
        if save_every < 1 or keep < 1:
            raise ValueError(f"checkpoint save_every and keep must be >= 1, got {save_every}, {keep}")
        self._host_memory = state_in_host_memory()
        if async_save and self._host_memory:
            logging.info("checkpoints are written synchronously: the train state is in host "
                         "memory, where an asynchronous save would hold a second copy of it")
            async_save = False
        self.async_save = async_save  # whether a save returns before its arrays are written
        self._save_every = save_every
        preservation = checkpoint_managers.AnyPreservationPolicy([
            checkpoint_managers.LatestN(keep), checkpoint_managers.CustomSteps(preserve_steps)])
        options = ocp.CheckpointManagerOptions(
            preservation_policy=preservation,
            enable_async_checkpointing=async_save,
            # A run killed mid-save leaves a temporary directory; clear it on restart.
            cleanup_tmp_directories=True)
        # Remote paths (gs://...) go to orbax as they are; local ones are made absolute.
        path = directory if "://" in directory else os.path.abspath(directory)
        self._manager = ocp.CheckpointManager(path, options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any, record: dict, *, force: bool = False) -> bool:
        """Saves when ``step`` is due (or ``force``); returns whether it saved."""
        # Due-ness is decided here: orbax also saves the first step it sees, which would
        # write a whole state right after every start.
        if not force and step % self._save_every:
            return False
        saved = self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(record)), force=True)
        if saved and self._host_memory:
            release_freed_host_memory()
        return saved

    def restore_record(self, step: int) -> dict:
        """The JSON record of a checkpoint (cheap: no arrays are read)."""
        return self._manager.restore(step, args=ocp.args.Composite(
            record=ocp.args.JsonRestore()))["record"]

    def restore_state(self, step: int, abstract_state: Any) -> Any:
        """The state saved at ``step``, shaped (and sharded) like ``abstract_state``."""
        state = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state)))["state"]
        if self._host_memory:
            release_freed_host_memory()
        return state

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
