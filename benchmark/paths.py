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


def results_flag(results: str | Path | None) -> str:
    """` --results PATH` when `results` is not the default folder, for the commands a message
    suggests: the user's folder, never silently the checkout's."""
    if results is None or Path(results).resolve() == results_dir().resolve():
        return ""
    return f" --results {results}"


def reports_dir() -> Path:
    """Reports: `$BENCHMARK_REPORTS_DIR`, else `reports/` in the repo."""
    env = os.environ.get("BENCHMARK_REPORTS_DIR")
    return Path(env).expanduser() if env else REPO_ROOT / "reports"


def report_out_dir(out: str | None, results: str | None, profile: str) -> Path:
    """Where a report verb writes: `--out` if given; `$BENCHMARK_REPORTS_DIR/<profile>/` if that
    is set; `reports/<profile>/` when the records come from the default results folder;
    otherwise `<results>/reports/<profile>/`, beside the records it reports, so another
    folder's numbers never replace the checkout's committed reports."""
    if out:
        return Path(out).expanduser()
    if os.environ.get("BENCHMARK_REPORTS_DIR"):
        return reports_dir() / profile
    if results is None or Path(results).resolve() == results_dir().resolve():
        return reports_dir() / profile
    return Path(results).expanduser() / "reports" / profile
