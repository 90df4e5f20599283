"""Where the suite keeps its files (never inside DSRL's cache for generated data)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """The suite's own data cache: `$BENCHMARK_CACHE_DIR`, else `~/.cache/offline-safe-bench`."""
    env = os.environ.get("BENCHMARK_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "offline-safe-bench"


def dsrl_dir() -> Path:
    """DSRL's own cache: `$DSRL_DATASET_DIR`, else `~/.dsrl/datasets` (as dsrl itself)."""
    env = os.environ.get("DSRL_DATASET_DIR")
    return Path(env).expanduser() if env else Path.home() / ".dsrl" / "datasets"


def results_dir() -> Path:
    """Run records and work folders: `$BENCHMARK_RESULTS_DIR`, else `results/` in the repo."""
    env = os.environ.get("BENCHMARK_RESULTS_DIR")
    return Path(env).expanduser() if env else REPO_ROOT / "results"


def reports_dir() -> Path:
    env = os.environ.get("BENCHMARK_REPORTS_DIR")
    return Path(env).expanduser() if env else REPO_ROOT / "reports"
