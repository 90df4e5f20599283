"""Learning curves from the runs' CSV training logs (`make curves`).

Every run's work folder holds `plan.json` (algorithm, task, seed, cost limits) and
`train_log.csv` (stage, step, seconds, metric, value: what `update` returned every `log_every`
steps). For each (task, algorithm) this draws one panel per (stage, metric): the mean over seeds
with a ± one-standard-deviation band, one line per training cost limit. The panels come in the
order people read them: first the signal a safe-RL method acts on (DRCORL's cost estimate and
branch, Lagrange multipliers), then each stage's losses, then the rest.

Reads files only; never imports torch, an algorithm or the runner.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import ReportError
from benchmark.report.figures import _pyplot, _save
from benchmark.report.records import algorithm_order, display_name, task_order

SIGNAL = re.compile(r"(^cost/|estimate|branch|lag|lambda|multiplier|kappa|budget)", re.IGNORECASE)
LOSS = re.compile(r"loss", re.IGNORECASE)
MAX_PANELS = 12
MAX_SIGNAL = 8
GRID_POINTS = 200


@dataclass(frozen=True)
class RunLog:
    algorithm: str
    task: str
    seed: int
    cost_limit: float
    frame: pd.DataFrame
    """Columns stage, step, metric, value."""


def read_logs(results: Path, profile: str) -> list[RunLog]:
    """The training logs of every run of `profile` that has both a plan and a log."""
    logs = []
    for plan_path in sorted((Path(results) / "work" / profile).glob("*/plan.json")):
        log_path = plan_path.with_name("train_log.csv")
        if not log_path.exists() or log_path.stat().st_size == 0:
            continue
        plan = json.loads(plan_path.read_text())
        frame = pd.read_csv(log_path)
        if frame.empty:
            continue
        limits = plan.get("cost_limits") or [math.nan]
        logs.append(RunLog(plan["algorithm"], plan["task"], int(plan["seed"]), max(limits), frame))
    return logs


def _panel_order(keys: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The cost signal first (at most MAX_SIGNAL panels), then every stage's losses, then the
    rest, up to MAX_PANELS in all."""
    signal = [k for k in keys if SIGNAL.search(k[1])][:MAX_SIGNAL]
    losses = [k for k in keys if LOSS.search(k[1]) and k not in signal]
    rest = [k for k in keys if k not in signal and k not in losses]
    return (signal + losses + rest)[:MAX_PANELS]


def band(series: list[pd.Series]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and standard deviation over seeds on a common step grid (linear interpolation
    inside each seed's own range; steps no seed reached are dropped)."""
    low = max(s.index.min() for s in series)
    high = min(s.index.max() for s in series)
    grid = np.unique(np.linspace(low, high, GRID_POINTS).round())
    values = np.stack([np.interp(grid, s.index.to_numpy(float), s.to_numpy(float)) for s in series])
    return grid, values.mean(axis=0), values.std(axis=0)


def _series(log: RunLog, stage: str, metric: str) -> pd.Series | None:
    rows = log.frame[(log.frame["stage"] == stage) & (log.frame["metric"] == metric)]
    if rows.empty:
        return None
    return rows.groupby("step")["value"].mean().sort_index()


def curves_figure(logs: list[RunLog], task: str, algorithm: str):
    """One figure: a panel per (stage, metric), a line per training cost limit."""
    plt = _pyplot()
    runs = [g for g in logs if g.task == task and g.algorithm == algorithm]
    columns = pd.concat([r.frame for r in runs])[["stage", "metric"]].drop_duplicates()
    panels = _panel_order([(str(a), str(b)) for a, b in columns.itertuples(index=False)])
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.5 * rows), squeeze=False)
    limits = sorted({r.cost_limit for r in runs})
    for ax, (stage, metric) in zip(axes.flat, panels):
        for limit in limits:
            series = [s for r in runs if r.cost_limit == limit for s in [_series(r, stage, metric)]]
            series = [s for s in series if s is not None and len(s) > 0]
            if not series:
                continue
            grid, mean, std = band(series)
            label = f"κ={limit:g} ({len(series)} seed{'s' if len(series) > 1 else ''})"
            (line,) = ax.plot(grid, mean, lw=1.2, label=label)
            ax.fill_between(grid, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        ax.set_title(f"{stage}: {metric}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("step", fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=7)
    fig.suptitle(f"{display_name(algorithm)} on {task}: mean ± std over seeds", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def write_curves(results: Path, profile: str, out_dir: Path, task: str | None = None) -> list[Path]:
    """PNG and PDF per (task, algorithm) under `out_dir`; a ReportError when there is no log."""
    logs = read_logs(results, profile)
    if task is not None:
        logs = [g for g in logs if g.task == task]
    if not logs:
        from benchmark.profiles import profile_path

        profile_path(profile)  # an unknown profile: say so, as table and diff do
        where = Path(results) / "work" / profile
        only = f" for task {task}" if task else ""
        raise ReportError(
            f"no training logs{only} in {where}; run `make sweep PROFILE={profile}` first"
        )
    plt = _pyplot()
    paths = []
    for name in task_order({g.task for g in logs}):
        for algorithm in algorithm_order({g.algorithm for g in logs if g.task == name}):
            fig = curves_figure(logs, name, algorithm)
            paths += _save(fig, out_dir, f"{name}-{algorithm}")
            plt.close(fig)
    return paths


def cli_curves(args) -> int:
    from benchmark.paths import report_out_dir, results_dir
    from benchmark.profiles import profile_name

    profile = profile_name(args.profile)
    results = Path(args.results) if args.results else results_dir()
    out_dir = report_out_dir(args.out, args.results, profile) / "curves"
    for path in write_curves(results, profile, out_dir, getattr(args, "task", None)):
        print(f"wrote {path}")
    return 0
