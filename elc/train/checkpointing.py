"""Orbax checkpoints of the train state plus a JSON record of where the run stands.

The JSON part holds the stage, the data iterators' positions and anything else needed to
continue a run exactly; the state part is the TrainState pytree. A third part holds the
state's fingerprints (elc/train/fingerprint.py): a restore compares the arrays it read
with them, so a damaged checkpoint is reported, set aside, and the one before it used.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath
from jax.experimental import multihost_utils
from orbax.checkpoint import checkpoint_managers

from elc.host_memory import arrays_in_host_memory, release_freed_host_memory
from elc.train.fingerprint import fingerprints, mismatches, non_finite_leaves


class UnusableCheckpointError(RuntimeError):
    """A checkpoint that cannot be read back faithfully (damaged, incomplete, or saved by
    a run of another shape)."""


class NonFiniteStateError(FloatingPointError):
    """The train state holds NaN or infinite values; it is not saved."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


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
        self._host_memory = arrays_in_host_memory()
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
        self._path = directory.rstrip("/") if "://" in directory else os.path.abspath(directory)
        self._manager = ocp.CheckpointManager(self._path, options=options,
                                              item_handlers={
                                                  "state": self._state_handler(),
                                                  "record": ocp.JsonCheckpointHandler(),
                                                  "fingerprints": ocp.JsonCheckpointHandler()})

    def _state_handler(self) -> ocp.PyTreeCheckpointHandler:
        """Orbax's handler for the state. In host memory, the writer's buffers share the
        RAM with the state and the next step's temporaries: TensorStore's zstd encoding
        holds a compressed copy of every array until it is written, about a second copy of
        the state at each save (+1.7 GiB for the 270M's stage 2 state of 1.85 GiB). There
        raw arrays are written from the state's own buffers instead: four times faster,
        for a checkpoint about a quarter larger.
        """
        return ocp.PyTreeCheckpointHandler(use_compression=not self._host_memory)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def due(self, step: int) -> bool:
        """Whether ``save`` saves ``step`` without being forced."""
        return step % self._save_every == 0

    def save(self, step: int, state: Any, record: dict, *, force: bool = False) -> bool:
        """Saves when ``step`` is due (or ``force``); returns whether it saved.

        Raises NonFiniteStateError, saving nothing, if the state holds NaN or infinities:
        a checkpoint is only written of a state worth resuming from.
        """
        # Due-ness is decided here: orbax also saves the first step it sees, which would
        # write a whole state right after every start.
        if not (force or self.due(step)):
            return False
        if self._host_memory:  # the last steps' freed temporaries, before the save's own
            release_freed_host_memory()
        prints = fingerprints(state)
        bad = non_finite_leaves(prints)
        if bad:
            raise NonFiniteStateError(
                f"step {step}: the train state holds NaN or infinite values in {len(bad)} "
                f"arrays ({', '.join(bad[:3])}); not saved. The last checkpoint saved is "
                f"step {self.latest_step()} in {self._path}")
        saved = self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.PyTreeSave(state), record=ocp.args.JsonSave(record),
            fingerprints=ocp.args.JsonSave(prints)), force=True)
        if saved and self._host_memory:
            release_freed_host_memory()
        return saved

    def restore_record(self, step: int) -> dict:
        """The JSON record of a checkpoint (cheap: no arrays are read)."""
        return self._manager.restore(step, args=ocp.args.Composite(
            record=ocp.args.JsonRestore()))["record"]

    def restore_state(self, step: int, abstract_state: Any,
                      fields: Sequence[str] | None = None) -> Any:
        """The state saved at ``step``, shaped (and sharded) like ``abstract_state``.
        With ``fields``, only those fields of it, as a dict: the rest (the optimizer's
        moments, say) is not read.

        Raises UnusableCheckpointError when it cannot be read or its arrays differ from
        the fingerprints recorded when it was saved.
        """
        has_prints = (epath.Path(self._path) / str(step) / "fingerprints").exists()
        item = abstract_state if fields is None else {
            name: getattr(abstract_state, name) for name in fields}
        items = {"state": ocp.args.PyTreeRestore(
            item, restore_args=ocp.checkpoint_utils.construct_restore_args(item),
            partial_restore=fields is not None)}
        if has_prints:
            items["fingerprints"] = ocp.args.JsonRestore()
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as error:  # orbax and TensorStore raise many kinds
            raise UnusableCheckpointError(
                f"checkpoint of step {step} in {self._path} cannot be read: "
                f"{_first_line(error)}") from error
        state = restored["state"]
        if self._host_memory:
            release_freed_host_memory()
        if not has_prints:
            logging.warning("checkpoint of step %d has no fingerprints (saved by an older "
                            "elc): restored unverified", step)
            return state
        saved = restored["fingerprints"]
        if fields is not None:
            saved = {path: value for path, value in saved.items()
                     if path.split("/")[0] in fields}
        problems = mismatches(saved, fingerprints(state))
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise UnusableCheckpointError(
                f"checkpoint of step {step} in {self._path} is damaged: its arrays differ "
                f"from what was saved: {'; '.join(problems[:3])}{more}")
        return state

    def restore_latest_usable(self, abstract_for: Callable[[dict], Any]
                              ) -> tuple[int, dict, Any] | None:
        """``(step, record, state)`` of the newest checkpoint that reads back faithfully,
        or None when there is no checkpoint. ``abstract_for(record)`` gives the abstract
        state to restore a checkpoint with that record into.

        Each newer checkpoint that fails is reported by step and reason and moved to
        ``<directory>.rejected/`` once an older one has restored, so that the run can
        save those steps again and the rotation counts only usable checkpoints. When none
        restores, nothing is moved and the error lists every step's reason (a config
        that no longer matches its checkpoints fails this way).
        """
        failures: list[tuple[int, str]] = []
        for step in sorted(self._manager.all_steps(), reverse=True):
            try:
                record = self.restore_record(step)
                state = self.restore_state(step, abstract_for(record))
            except Exception as error:  # any reason this checkpoint cannot be resumed from
                reason = str(error) if isinstance(error, UnusableCheckpointError) else \
                    f"checkpoint of step {step} in {self._path}: {_first_line(error)}"
                logging.warning("%s; trying the checkpoint before it", reason)
                failures.append((step, reason))
                continue
            for rejected, _ in failures:
                self._set_aside(rejected)
            return step, record, state
        if failures:
            raise UnusableCheckpointError(
                "no checkpoint in this run can be resumed from:\n  " +
                "\n  ".join(reason for _, reason in failures) +
                f"\nMove {self._path} away to start the run afresh.")
        return None

    def _set_aside(self, step: int) -> None:
        """Moves the checkpoint of ``step`` out of the directory orbax manages."""
        if jax.process_index() == 0:
            target = epath.Path(self._path + ".rejected")
            target.mkdir(parents=True, exist_ok=True)
            (epath.Path(self._path) / str(step)).rename(target / str(step))
            logging.warning("checkpoint of step %d moved to %s", step, target / str(step))
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices(f"elc_checkpoint_{step}_set_aside")
        self._manager.reload()

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
