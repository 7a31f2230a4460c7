"""Checkpoint saves on the CPU backend, where the train state lives in host memory."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from elc.host_memory import arrays_in_host_memory
from elc.train.checkpointing import Checkpointer, UnusableCheckpointError
from elc.train.state import create_state


def _step():
    """A train step that updates its donated state in place."""
    return jax.jit(lambda state: jax.tree_util.tree_map(lambda x: x + 1, state), donate_argnums=0)


def test_step_after_a_save_updates_the_state_in_place(tmp_path):
    # An asynchronous save's host transfer is, on the CPU backend, a view of the state's
    # own buffers: while it is being written, the next step could not reuse the donated
    # buffers and would allocate a second whole state.
    assert arrays_in_host_memory()
    checkpointer = Checkpointer(str(tmp_path), save_every=1, keep=2, async_save=True)
    assert not checkpointer.async_save
    step = _step()
    state = step({"params": jnp.zeros((256, 256)), "moments": jnp.ones((256,))})
    assert checkpointer.save(1, state, {"stage": "one"})
    saved = state
    state = step(saved)
    assert all(x.is_deleted() for x in jax.tree_util.tree_leaves(saved))
    checkpointer.close()


def test_save_is_complete_when_it_returns(tmp_path):
    checkpointer = Checkpointer(str(tmp_path), save_every=1, keep=2, async_save=True)
    state = {"params": jnp.arange(12.0).reshape(3, 4)}
    checkpointer.save(3, state, {"stage": "one"})
    # Read back by a second checkpointer before the first one waits or closes.
    other = Checkpointer(str(tmp_path), save_every=1, keep=2)
    assert other.latest_step() == 3
    np.testing.assert_array_equal(other.restore_state(3, None)["params"], state["params"])
    assert other.restore_record(3) == {"stage": "one"}
    other.close()
    checkpointer.close()


def test_saves_on_multiples_of_save_every_and_when_forced(tmp_path):
    checkpointer = Checkpointer(str(tmp_path), save_every=5, keep=10)
    state = {"params": jnp.zeros(3)}
    saved = [step for step in range(1, 13)
             if checkpointer.save(step, state, {}, force=step == 12)]
    # Not the first step a run sees: a restart would otherwise write a whole state at once.
    assert saved == [5, 10, 12]
    checkpointer.close()


def _train_state():
    params = {"kernel": jnp.arange(12.0).reshape(3, 4), "bias": jnp.ones((4,))}
    return create_state(params, ["kernel"], optax.adam(1e-3), step=5,
                        rng_data=jax.random.key_data(jax.random.key(0)))


def test_restoring_some_fields_reads_and_checks_only_those(tmp_path):
    checkpointer = Checkpointer(str(tmp_path), save_every=1, keep=2)
    state = _train_state()
    checkpointer.save(5, state, {"stage": "one"})
    abstract = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
    parts = checkpointer.restore_state(5, abstract, fields=("trainable", "frozen"))
    assert set(parts) == {"trainable", "frozen"}
    np.testing.assert_array_equal(parts["trainable"]["kernel"], state.trainable["kernel"])
    np.testing.assert_array_equal(parts["frozen"]["bias"], state.frozen["bias"])
    # A moment that differs from its fingerprint is not read, so not reported; a
    # parameter that differs is.
    prints_file = tmp_path / "5" / "fingerprints" / "metadata"
    prints = json.loads(prints_file.read_text())
    moment = next(path for path in prints if path.startswith("opt_state/"))
    prints[moment]["sum"] ^= 1
    prints_file.write_text(json.dumps(prints))
    checkpointer.restore_state(5, abstract, fields=("trainable", "frozen"))
    with pytest.raises(UnusableCheckpointError, match="opt_state"):
        checkpointer.restore_state(5, abstract)
    prints["frozen/bias"]["sum"] ^= 1
    prints_file.write_text(json.dumps(prints))
    with pytest.raises(UnusableCheckpointError, match="frozen/bias"):
        checkpointer.restore_state(5, abstract, fields=("trainable", "frozen"))
    checkpointer.close()
