"""Shared test setup: one torch thread, no network, results in a temporary folder."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("DSRL_SUPPRESS_IMPORT_ERROR", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    """A fresh results folder, also the default one for code that reads the environment."""
    folder = tmp_path / "results"
    monkeypatch.setenv("BENCHMARK_RESULTS_DIR", str(folder))
    monkeypatch.setenv("BENCHMARK_REPORTS_DIR", str(tmp_path / "reports"))
    return folder


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch):
    """Never write into the user's DSRL or suite caches from a test."""
    root = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("DSRL_DATASET_DIR", str(root / "dsrl-cache"))
    monkeypatch.setenv("BENCHMARK_CACHE_DIR", str(root / "suite-cache"))
