"""What a record says about where it was made: code version, packages, hardware.

Recorded, never hashed: a new commit or another machine does not orphan finished runs.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

from benchmark.paths import REPO_ROOT

PACKAGES = (
    "torch",
    "numpy",
    "gymnasium",
    "mujoco",
    "safety-gymnasium",
    "bullet-safety-gym",
    "dsrl",
    "osrl-lib",
    "submitit",
    "h5py",
)
SNAPSHOT_INFO = "SNAPSHOT.json"
"""Written into a sweep's code snapshot: the commit the snapshot was taken from."""


def git_state(root: Path | None = None) -> dict:
    """Commit and dirtiness of the code that runs; inside a sweep's code snapshot, those of
    the checkout the snapshot was taken from."""
    root = root or REPO_ROOT
    info = root / SNAPSHOT_INFO
    if info.exists():
        return {**json.loads(info.read_text()), "path": str(root)}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = ["git", "status", "--porcelain", "--untracked-files=no"]
        dirty = subprocess.run(status, cwd=root, capture_output=True, text=True, timeout=10).stdout
        return {"git_commit": commit, "dirty": bool(dirty.strip()), "path": str(root)}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "dirty": False, "path": str(root)}


def packages() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


BF16_FLAGS = ("amx_bf16", "avx512_bf16")
"""/proc/cpuinfo flags of native bf16 matrix units (Intel AMX, AVX-512 BF16)."""


def cpu_bf16_units() -> list[str]:
    """Which native bf16 units this CPU has (empty: none, or not Linux): bf16 autocast pays
    only where they exist (`make bench` section `phase_a`)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])  # fmt: skip
    return [f for f in BF16_FLAGS if f in flags]


def cpu_model() -> str:
    """The CPU's model name (`platform.processor()` is empty on most Linux machines): results
    are bit-identical on one machine, not across CPUs, so a record says which it ran on."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gpu_driver() -> str | None:
    """The NVIDIA driver version, from nvidia-smi (None where it cannot be asked)."""
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else None


def hardware(device: torch.device) -> dict:
    info = {
        "device": str(device),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_model": cpu_model(),
        "cpu_bf16_units": cpu_bf16_units(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "hostname": platform.node(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["gpu_driver"] = gpu_driver()
    return info


def provenance(device: torch.device) -> dict:
    """The `code`, `packages` and `hardware` blocks of a record."""
    return {"code": git_state(), "packages": packages(), "hardware": hardware(device)}
