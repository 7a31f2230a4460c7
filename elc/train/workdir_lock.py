"""One run per workdir: a lock file naming the host and process that holds it.

Two runs on one workdir would interleave their metrics and overwrite each other's
checkpoints. The lock is ``WORKDIR/.lock``, created atomically; it holds the host name and
process id of its holder. A lock left by a process that no longer runs on this host is
stale: it is taken over with a warning. A lock held from another host cannot be checked
from here; the error says how to remove it if that run is gone. The holder may take the
lock again (a pipeline holds it while it trains and evaluates).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from typing import Iterator

from absl import logging

LOCK_NAME = ".lock"


class WorkdirLockedError(RuntimeError):
    """Another live run holds the workdir."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _read_holder(path: str) -> dict | None:
    """The lock's content, or None when it is gone or unreadable (a holder killed while
    writing it)."""
    try:
        with open(path, encoding="utf-8") as f:
            holder = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _try_create(path: str, me: dict) -> bool:
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w", encoding="utf-8") as f:
        json.dump(me, f)
    return True


@contextlib.contextmanager
def workdir_lock(workdir: str) -> Iterator[None]:
    """Holds ``workdir``'s lock for the body; raises WorkdirLockedError naming the holder
    when another live process on this host, or a process on another host, holds it."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, LOCK_NAME)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
    for attempt in range(3):  # a stale lock may be reclaimed by another starter at once
        if _try_create(path, me):
            break
        holder = _read_holder(path)
        if holder is None:
            continue
        if not holder and attempt == 0:  # perhaps its holder is still writing it
            time.sleep(1.0)
            continue
        if holder.get("host") == me["host"] and holder.get("pid") == me["pid"]:
            yield  # already ours: the outer holder releases it
            return
        held_here = holder.get("host") == me["host"]
        if held_here and isinstance(holder.get("pid"), int) and _alive(holder["pid"]):
            raise WorkdirLockedError(
                f"{workdir} is in use by process {holder['pid']} on this host ({me['host']}); "
                "wait for that run to end, or use another --workdir")
        if holder and not held_here:
            raise WorkdirLockedError(
                f"{workdir} is in use by process {holder.get('pid')} on host "
                f"{holder.get('host')}; if that run has ended, delete {path}")
        logging.warning("taking over the lock of %s from process %s, which no longer runs",
                        workdir, holder.get("pid", "unknown"))
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    else:
        raise OSError(errno.EBUSY, f"could not take the lock {path}")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
