"""Resolve the complete install set against PyPI alone, as a user's machine sees it.

Run by `make check-pypi` (and `.ci/run`). This machine's local wheel folder and pip
configuration are switched off for the check (`PIP_FIND_LINKS` unset, `PIP_CONFIG_FILE` set to
the null device, PyPI as the only index), and pip only resolves (`install --dry-run --report`):
metadata, no wheel downloads. Exit 1 names every pin PyPI cannot serve.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYPI = "https://pypi.org/simple"
# Variables through which pip would see anything but PyPI.
PIP_SOURCES = ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX")
UNSERVED = (
    re.compile(r"No matching distribution found for (\S+)"),
    re.compile(r"Cannot install (.+?) because these package versions have conflicting"),
)


@dataclass
class InstallSet:
    name: str
    args: list[str]


def install_sets(lock: Path, requirements: Path, environment: Path) -> list[InstallSet]:
    """What `make install` asks pip for, plus every pin of the lock and of environment.yml."""
    torch = next(line for line in lock.read_text().splitlines() if line.startswith("torch=="))
    with_lock = ["-c", str(lock)]
    return [
        InstallSet(
            "torch + runtime + dev under the lock",
            [*with_lock, torch, "-r", str(requirements / "runtime.txt")]
            + ["-r", str(requirements / "dev.txt")],
        ),
        InstallSet("the --no-deps set", ["--no-deps", "-r", str(requirements / "nodeps.txt")]),
        InstallSet(f"every pin of {lock.name}", ["--no-deps", "-r", str(lock)]),
        InstallSet(f"every pip pin of {environment.name}", ["--no-deps", *conda_pins(environment)]),
    ]


def conda_pins(environment: Path) -> list[str]:
    """The `pip:` entries of a conda environment file (`      - name==version` lines)."""
    pins = re.findall(r"^\s+- ([A-Za-z0-9_.\-\[\]]+==\S+)\s*$", environment.read_text(), re.M)
    return pins


def pypi_only_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PIP_SOURCES}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def resolve(install_set: InstallSet) -> tuple[list[str], int]:
    """(pins PyPI cannot serve, packages resolved) for one set."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"]
        command += ["--disable-pip-version-check", "-q", "--index-url", PYPI]
        command += ["--report", str(report), *install_set.args]
        done = subprocess.run(command, capture_output=True, text=True, env=pypi_only_env())
        if done.returncode == 0:
            return [], len(json.loads(report.read_text())["install"])
    unserved = [m.group(1) for p in UNSERVED for m in p.finditer(done.stderr)]
    if not unserved:  # a failure of another kind: show pip's last words rather than guess
        unserved = [line for line in done.stderr.splitlines() if "ERROR" in line][-3:] or [
            f"pip exited {done.returncode}"
        ]
    return unserved, 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=Path, default=HERE / "lock.txt")
    parser.add_argument("--requirements", type=Path, default=HERE, help="folder of the .txt sets")
    parser.add_argument("--environment", type=Path, default=HERE.parent / "environment.yml")
    args = parser.parse_args(argv)
    start = time.monotonic()
    failures: dict[str, list[str]] = {}
    for install_set in install_sets(args.lock, args.requirements, args.environment):
        unserved, count = resolve(install_set)
        verdict = f"{count} packages resolve" if not unserved else "FAILS"
        print(f"[check-pypi] {install_set.name}: {verdict}", flush=True)
        if unserved:
            failures[install_set.name] = unserved
    seconds = time.monotonic() - start
    if failures:
        for name, unserved in failures.items():
            print(f"error: PyPI alone cannot serve ({name}): {'; '.join(unserved)}")
        return 1
    print(f"[check-pypi] every pin resolves against PyPI alone ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
