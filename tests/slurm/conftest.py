"""A real single-node Slurm cluster for the tests in this folder.

The session fixture `slurm_cluster` reuses a cluster that already answers (`$SLURM_CONF` set and
`sinfo` works, e.g. after `make slurm-up`), or starts a throw-away one with `up.sh` under a
fresh folder (installing Slurm, munge and MariaDB with apt-get when they are missing) and stops
exactly its daemons with `down.sh` at the end. Without root, or without Slurm and apt-get, the
tests are skipped with a reason saying so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DAEMONS = ("slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd")


@dataclass(frozen=True)
class Cluster:
    conf: str
    """The cluster's slurm.conf; exported as SLURM_CONF for the whole session."""
    max_array_size: int
    partitions: tuple[str, ...]
    base: Path | None
    """The folder up.sh made, or None for a cluster that was already up (left running)."""


def _answers(conf: str) -> bool:
    env = {**os.environ, "SLURM_CONF": conf}
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and bool(out.stdout.strip())


def _port_free(port: int) -> bool:
    with socket.socket() as s, contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    return False


def _free_ports() -> tuple[int, int]:
    """Three consecutive Slurm ports and a MariaDB port nobody listens on (another cluster
    on this machine keeps the defaults)."""
    for slurm in range(6817, 7817, 10):
        db = 3307 + (slurm - 6817) // 10
        if all(_port_free(p) for p in (slurm, slurm + 1, slurm + 2, db)):
            return slurm, db
    pytest.fail("no free ports for a Slurm cluster between 6817 and 7817")


def _config_value(conf: str, key: str) -> str:
    out = subprocess.run(
        ["scontrol", "show", "config"],
        env={**os.environ, "SLURM_CONF": conf},
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    for line in out.splitlines():
        name, _, value = line.partition("=")
        if name.strip() == key:
            return value.strip()
    return ""


def _describe(conf: str, base: Path | None) -> Cluster:
    env = {**os.environ, "SLURM_CONF": conf}
    parts = subprocess.run(
        ["sinfo", "-h", "-o", "%R"], env=env, capture_output=True, text=True, timeout=20
    ).stdout.split()
    return Cluster(conf, int(_config_value(conf, "MaxArraySize")), tuple(parts), base)


def _why_not_startable() -> str | None:
    if os.name != "posix" or os.geteuid() != 0:
        return "Slurm tests skipped: starting the throw-away cluster (tests/slurm/up.sh) needs root"
    if not all(shutil.which(d) for d in DAEMONS) and not shutil.which("apt-get"):
        return "Slurm tests skipped: Slurm is not installed and there is no apt-get to install it"
    return None


@pytest.fixture(scope="session")
def slurm_cluster():
    conf = os.environ.get("SLURM_CONF")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")  # jobs inherit the submitter's environment
        if conf and shutil.which("sinfo") and _answers(conf):
            yield _describe(conf, None)  # someone else's cluster: leave it running
            return
        reason = _why_not_startable()
        if reason:
            pytest.skip(reason)
        base = Path(tempfile.mkdtemp(prefix="osb-slurm-"))  # short: munge's socket path
        slurm_port, db_port = _free_ports()
        env = {
            **os.environ,
            "SLURM_BASE": str(base),
            "SLURM_PORT": str(slurm_port),
            "SLURM_DB_PORT": str(db_port),
        }
        try:
            up = subprocess.run(
                ["bash", str(HERE / "up.sh")],
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
                stdin=subprocess.DEVNULL,
            )
            if up.returncode != 0:
                pytest.fail(f"tests/slurm/up.sh failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}")
            conf = str(base / "etc" / "slurm.conf")
            mp.setenv("SLURM_CONF", conf)
            yield _describe(conf, base)
        finally:
            subprocess.run(
                ["bash", str(HERE / "down.sh"), "--purge"],
                env=env,
                capture_output=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
            )
            shutil.rmtree(base, ignore_errors=True)
