"""Orbax checkpoints of the train state plus a JSON record of where the run stands.

The JSON part holds the stage, the data iterators' positions and anything else needed to
continue a run exactly; the state part is the TrainState pytree.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers


class Checkpointer:
    """Saves every ``save_every`` steps (and when forced), keeps the last ``keep`` plus
    those at ``preserve_steps`` (the ends of stages, which evaluation compares).

    Saves are asynchronous when ``async_save``: training continues while arrays are
    written; ``wait`` blocks until the last save is durable.
    """

    def __init__(self, directory: str, *, save_every: int, keep: int, async_save: bool = True,
                 preserve_steps: Sequence[int] = ()):
        if save_every < 1 or keep < 1:
            raise ValueError(f"checkpoint save_every and keep must be >= 1, got {save_every}, {keep}")
        preservation = checkpoint_managers.AnyPreservationPolicy([
            checkpoint_managers.LatestN(keep), checkpoint_managers.CustomSteps(preserve_steps)])
        options = ocp.CheckpointManagerOptions(
            save_interval_steps=save_every, preservation_policy=preservation,
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
        return self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(record)), force=force)

    def restore_record(self, step: int) -> dict:
        """The JSON record of a checkpoint (cheap: no arrays are read)."""
        return self._manager.restore(step, args=ocp.args.Composite(
            record=ocp.args.JsonRestore()))["record"]

    def restore_state(self, step: int, abstract_state: Any) -> Any:
        """The state saved at ``step``, shaped (and sharded) like ``abstract_state``."""
        return self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state)))["state"]

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
