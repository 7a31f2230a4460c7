"""Damaged checkpoints are reported and set aside, and the one before them is used;
non-finite states are never saved."""

import json
import os
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

from elc.train.checkpointing import Checkpointer, NonFiniteStateError, UnusableCheckpointError


def _state(step: int) -> dict:
    return {"w": jnp.arange(4096.0) * step, "b": jnp.full((3,), float(step))}


def _save_steps(directory: pathlib.Path, steps=(1, 2, 3)) -> None:
    checkpointer = Checkpointer(str(directory), save_every=1, keep=5)
    for step in steps:
        assert checkpointer.save(step, _state(step), {"stage": "one", "at": step})
    checkpointer.close()


def _largest_file(step_dir: pathlib.Path) -> pathlib.Path:
    return max((p for p in (step_dir / "state").rglob("*") if p.is_file()),
               key=lambda p: p.stat().st_size)


def flip_bytes(step_dir):
    path = _largest_file(step_dir)
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 16):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(step_dir):
    path = _largest_file(step_dir)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def delete_data_file(step_dir):
    _largest_file(step_dir).unlink()


def garble_record(step_dir):
    (step_dir / "record" / "metadata").write_text("{not json")


def wrong_fingerprint(step_dir):
    # Arrays that read back without error but differ from what was saved.
    path = step_dir / "fingerprints" / "metadata"
    prints = json.loads(path.read_text())
    prints["w"]["sum"] ^= 1
    path.write_text(json.dumps(prints))


@pytest.mark.parametrize("damage", [flip_bytes, truncate, delete_data_file, garble_record,
                                    wrong_fingerprint])
def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(tmp_path, damage, caplog):
    directory = tmp_path / "checkpoints"
    _save_steps(directory)
    damage(directory / "3")
    checkpointer = Checkpointer(str(directory), save_every=1, keep=5)
    step, record, state = checkpointer.restore_latest_usable(lambda record: None)
    assert (step, record) == (2, {"stage": "one", "at": 2})
    np.testing.assert_array_equal(state["w"], np.arange(4096.0) * 2)
    assert "step 3" in caplog.text
    # Set aside, not deleted; the run can save step 3 again.
    assert (tmp_path / "checkpoints.rejected" / "3").is_dir()
    assert checkpointer.latest_step() == 2
    assert checkpointer.save(3, _state(3), {"stage": "one", "at": 3})
    checkpointer.close()
    again = Checkpointer(str(directory), save_every=1, keep=5)
    assert again.restore_latest_usable(lambda record: None)[0] == 3
    again.close()


def test_the_fingerprint_check_names_the_array(tmp_path):
    _save_steps(tmp_path, steps=(1,))
    wrong_fingerprint(tmp_path / "1")
    checkpointer = Checkpointer(str(tmp_path), save_every=1, keep=5)
    with pytest.raises(UnusableCheckpointError, match=r"step 1 .*damaged.*: w: checksum differs"):
        checkpointer.restore_state(1, None)
    checkpointer.close()


def test_when_no_checkpoint_restores_nothing_is_moved_and_every_reason_is_given(tmp_path):
    directory = tmp_path / "checkpoints"
    _save_steps(directory)
    for step in (1, 2, 3):
        garble_record(directory / str(step))
    checkpointer = Checkpointer(str(directory), save_every=1, keep=5)
    with pytest.raises(UnusableCheckpointError) as error:
        checkpointer.restore_latest_usable(lambda record: None)
    checkpointer.close()
    message = str(error.value)
    assert all(f"step {step}" in message for step in (1, 2, 3)), message
    assert sorted(os.listdir(directory)) == ["1", "2", "3"]
    assert not (tmp_path / "checkpoints.rejected").exists()


def test_an_empty_directory_has_nothing_to_resume(tmp_path):
    checkpointer = Checkpointer(str(tmp_path), save_every=1, keep=5)
    assert checkpointer.restore_latest_usable(lambda record: None) is None
    checkpointer.close()


def test_a_state_with_nan_is_not_saved(tmp_path):
    checkpointer = Checkpointer(str(tmp_path), save_every=1, keep=5)
    assert checkpointer.save(1, _state(1), {})
    bad = {"w": jnp.arange(4096.0).at[7].set(jnp.nan), "b": jnp.ones(3)}
    with pytest.raises(NonFiniteStateError, match=r"step 2: .*arrays \(w\).*last checkpoint saved is step 1"):
        checkpointer.save(2, bad, {})
    assert checkpointer.latest_step() == 1
    checkpointer.close()
