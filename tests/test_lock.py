"""benchmark.lock: one process per work folder, refused at once, released however it ends."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmark.errors import BusyError
from benchmark.lock import LOCK_NAME, exclusive


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path):
    import os

    busy = rf"run x is already running \(pid {os.getpid()} on"
    with (
        exclusive(tmp_path / "work", "run x"),
        pytest.raises(BusyError, match=busy),
        exclusive(tmp_path / "work", "run x"),
    ):
        pass
    with exclusive(tmp_path / "work", "run x"):  # released when the block ended
        pass


def test_the_lock_is_released_when_its_process_is_killed(tmp_path):
    folder = tmp_path / "work"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from benchmark.lock import exclusive\n"
            f"with exclusive(Path({str(folder)!r}), 'run x'):\n"
            "    print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(BusyError, match=f"pid {holder.pid} on"), exclusive(folder, "run x"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with exclusive(folder, "run x"):  # no stale lock after a kill -9
        assert (folder / LOCK_NAME).exists()
