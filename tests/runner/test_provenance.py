"""What a record says about its machine: the CPU model (results differ across CPUs)."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from benchmark.runner import provenance


def test_hardware_names_the_cpu_model_from_cpuinfo():
    info = provenance.hardware(torch.device("cpu"))
    cpuinfo = Path("/proc/cpuinfo").read_text() if platform.system() == "Linux" else ""
    models = [
        line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line
    ]
    assert info["cpu_model"] and info["cpu_model"] != "unknown"
    if models:
        assert info["cpu_model"] == models[0]
    assert "gpu" not in info and "gpu_driver" not in info


def test_gpu_driver_is_none_without_nvidia_smi(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert provenance.gpu_driver() is None
