"""One run per workdir: the lock names its holder and stale locks are taken over."""

import json
import os
import socket
import subprocess
import sys

import pytest

from elc.train.workdir_lock import LOCK_NAME, WorkdirLockedError, workdir_lock


def _write_lock(workdir, host, pid):
    (workdir / LOCK_NAME).write_text(json.dumps({"host": host, "pid": pid, "since": 0}))


def test_lock_is_held_for_the_body_and_removed_after(tmp_path):
    with workdir_lock(str(tmp_path)):
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
        assert (holder["host"], holder["pid"]) == (socket.gethostname(), os.getpid())
        with workdir_lock(str(tmp_path)):  # the holder may take it again
            pass
        assert (tmp_path / LOCK_NAME).exists()
    assert not (tmp_path / LOCK_NAME).exists()


def test_lock_is_removed_when_the_body_fails(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with workdir_lock(str(tmp_path)):
            1 / 0
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_live_process_on_this_host_keeps_the_workdir(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_lock(tmp_path, socket.gethostname(), other.pid)
        with pytest.raises(WorkdirLockedError, match=f"in use by process {other.pid} on this host"):
            with workdir_lock(str(tmp_path)):
                pass
    finally:
        other.kill()
        other.wait()
    # Now that it is gone, its lock is stale and taken over.
    with workdir_lock(str(tmp_path)):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_a_lock_from_another_host_is_not_guessed_at(tmp_path):
    _write_lock(tmp_path, "some-other-host", 4242)
    with pytest.raises(WorkdirLockedError, match="process 4242 on host some-other-host.*delete"):
        with workdir_lock(str(tmp_path)):
            pass


def test_an_unreadable_lock_is_stale(tmp_path):
    (tmp_path / LOCK_NAME).write_text("")  # a holder killed while writing it
    with workdir_lock(str(tmp_path)):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
