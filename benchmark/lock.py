"""One process at a time per work folder (a training run's, a data collection's).

Two processes on one folder would both write its checkpoint and both write the result: a second
`make table` started while the first runs, a sweep next to a hand-started run, or a collection
started twice. An advisory `flock` on `<folder>/.lock` refuses the second at once, naming the
process that holds it; the kernel drops the lock when that process ends, however it ends, so a
killed run leaves no stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from benchmark.errors import BusyError

LOCK_NAME = ".lock"


@contextlib.contextmanager
def exclusive(folder: Path, what: str) -> Iterator[None]:
    """Hold `folder`'s lock for the block; `BusyError` when another process holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    handle = open(path, "a+")  # noqa: SIM115  (held for the block, closed below)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "a process that did not say which"
            raise BusyError(
                f"{what} is already running ({holder}; lock {path}); wait for it or stop it, "
                "then run again: it resumes from its last checkpoint"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        yield
    finally:
        handle.close()  # closing the descriptor releases the lock
