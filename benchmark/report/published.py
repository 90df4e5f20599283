"""The published DRCORL numbers (`results/published/`, provenance in its PROVENANCE.md)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.paths import REPO_ROOT

PUBLISHED_DIR = REPO_ROOT / "results" / "published"
SOURCE = "DRCORL poster (NeurIPS 2025)"


def _read(name: str, folder: Path | None) -> pd.DataFrame:
    frame = pd.read_csv((folder or PUBLISHED_DIR) / name, keep_default_na=False)
    if "doubtful" in frame:
        frame["doubtful"] = frame["doubtful"].astype(str).str.lower() == "true"
    return frame


def published_table(folder: Path | None = None) -> pd.DataFrame:
    """9 methods x 11 tasks: task, algorithm, reward, cost, doubtful, doubtful_reason,
    other_cost_limits (a tuple of floats: other limits the value may be at; CarRun baselines)."""
    frame = _read("drcorl_table.csv", folder)
    column = frame["other_cost_limits"] if "other_cost_limits" in frame else [""] * len(frame)
    frame["other_cost_limits"] = [_limits(text) for text in column]
    return frame


def _limits(text: object) -> tuple[float, ...]:
    """`"10;20"` -> (10.0, 20.0); empty -> ()."""
    return tuple(float(x) for x in str(text).split(";") if x.strip())


def published_cost_limits(folder: Path | None = None) -> pd.DataFrame:
    """Poster panel (b): task, algorithm, cost_limit, reward, cost, doubtful, ..."""
    frame = _read("drcorl_cost_limits.csv", folder)
    frame["cost_limit"] = frame["cost_limit"].astype(float)
    return frame


def published_inference(folder: Path | None = None) -> pd.DataFrame:
    """Poster panel (a): method_published, algorithm, seconds_per_1k_actions, score, safe."""
    frame = _read("drcorl_inference_time.csv", folder)
    frame["safe"] = frame["safe"].astype(str).str.lower() == "true"
    return frame


REFERENCE_PROFILE = "paper"
"""The profile whose budget set is the reference (the authors' settings) for `diff`'s ratios."""


def reference_budgets(folder: Path | None = None) -> dict[tuple[str, str], int]:
    """(task, algorithm) -> training samples (steps x batch, summed over stages) under the
    `paper` budget set; task `*` is an algorithm's budget on a task without per-task settings.
    `reference_budgets.csv` is generated from the configs (see PROVENANCE.md)."""
    frame = _read("reference_budgets.csv", folder)
    return {(r.task, r.algorithm): int(r.samples) for r in frame.itertuples()}
