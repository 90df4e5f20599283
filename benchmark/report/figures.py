"""Figures: the DRCORL poster's "Algorithm Performance Evaluation" panels, from our records.

- `cost_limits_figure` (`python -m benchmark figure-cost-limits`): panel (b). Two stacked panels,
  normalised return on top and normalised cost below; a group of bars per method, one bar per cost
  limit (the limits the records and the published ablation have, 10/20/30 on the poster), each the
  mean ± standard error over seeds; the threshold line at 1; the published values as markers.
  The cost axis stops at 10 as on the poster; taller values are clipped and printed.
- `inference_figure`: panel (a). Seconds per 1000 actions against normalised score, safe in
  green and unsafe in red: our timings from `make bench` (reports/bench/drcorl.json) beside the
  published points, and the GPU timings of section `gpu` (reports/bench/gpu.json, rows measured
  on CUDA) as triangles, or the note "GPU: not measured". Written by `figure-cost-limits` when
  the bench file exists.

Reads records and published CSVs only; never imports torch, an algorithm or the runner.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.atomic import atomic_path
from benchmark.errors import ReportError
from benchmark.report.published import SOURCE, published_cost_limits, published_inference
from benchmark.report.records import (
    Cell,
    algorithm_order,
    display_name,
    protocol_label,
    report_cells,
)

# the poster's colours for l = 10, 20, 30; further limits take matplotlib's cycle
LIMIT_COLOURS = ("#2ca02c", "#d62728", "#ff7f0e", "#1f77b4", "#9467bd", "#8c564b")
COST_AXIS_MAX = 10.0
SAFE_GREEN, UNSAFE_RED = "#2ca02c", "#d62728"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on clusters or CI
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("pdf", "png"):
        path = out_dir / f"{stem}.{ext}"
        # the temporary keeps the extension: matplotlib picks the format from it
        with atomic_path(path, suffix=f".tmp.{ext}") as tmp:
            fig.savefig(tmp, dpi=150, bbox_inches="tight")
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- panel (b)


def _task_cells(cells: list[Cell], task: str) -> dict[tuple[str, float], Cell]:
    return {(c.algorithm, c.cost_limit): c for c in cells if c.task == task}


def cost_limits_figure(
    cells: list[Cell], task: str, profile: str, published: pd.DataFrame | None
) -> object:
    """The panel-(b) figure for one task (a matplotlib Figure)."""
    plt = _pyplot()
    ours = _task_cells(cells, task)
    if not ours:
        tasks = ", ".join(sorted({c.task for c in cells})) or "none"
        raise ReportError(
            f"profile {profile!r} has no records for task {task}; tasks with records: {tasks}. "
            f"Pick one with --task (make figure-cost-limits TASK=...), or run a sweep whose "
            "profile lists that task and its cost limits first."
        )
    theirs = published[published["task"] == task] if published is not None else None
    theirs = theirs if theirs is not None and not theirs.empty else None
    methods = algorithm_order(
        {a for a, _ in ours} | (set(theirs["algorithm"]) if theirs is not None else set())
    )
    limits = sorted(
        {x for _, x in ours} | (set(theirs["cost_limit"]) if theirs is not None else set())
    )
    colours = {x: LIMIT_COLOURS[i % len(LIMIT_COLOURS)] for i, x in enumerate(limits)}
    width = 0.8 / len(limits)

    fig, (ax_r, ax_c) = plt.subplots(
        2, 1, figsize=(max(5.0, 1.6 * len(methods) + 1.5), 6.4), sharex=True
    )
    clipped = []
    for m, algorithm in enumerate(methods):
        for i, limit in enumerate(limits):
            x = m - 0.4 + width * (i + 0.5)
            cell = ours.get((algorithm, limit))
            if cell is not None:
                for ax, mean, se in (
                    (ax_r, cell.reward_mean, cell.reward_se),
                    (ax_c, cell.cost_mean, cell.cost_se),
                ):
                    err = None if math.isnan(se) else se
                    ax.bar(
                        x,
                        mean,
                        width * 0.9,
                        yerr=err,
                        color=colours[limit],
                        capsize=2,
                        edgecolor="black",
                        linewidth=0.4,
                        error_kw={"linewidth": 0.8},
                    )
                if cell.cost_mean > COST_AXIS_MAX:
                    clipped.append((x, cell.cost_mean))
                if cell.missing_seeds:
                    ax_r.annotate(
                        f"n={cell.n_seeds}",
                        (x, 0),
                        ha="center",
                        va="bottom",
                        fontsize=6,
                        rotation=90,
                        xytext=(0, 2),
                        textcoords="offset points",
                    )
            if theirs is not None:
                row = theirs[
                    (theirs["algorithm"] == algorithm) & np.isclose(theirs["cost_limit"], limit)
                ]
                if not row.empty:
                    reward, cost = float(row["reward"].iloc[0]), float(row["cost"].iloc[0])
                    ax_r.plot(
                        x,
                        reward,
                        "D",
                        color="black",
                        markerfacecolor="white",
                        markersize=5,
                        zorder=5,
                    )
                    ax_c.plot(
                        x,
                        min(cost, COST_AXIS_MAX),
                        "^" if cost > COST_AXIS_MAX else "D",  # a triangle: clipped, value printed
                        color="black",
                        markerfacecolor="white",
                        markersize=5,
                        zorder=5,
                        clip_on=False,
                    )
                    if cost > COST_AXIS_MAX:
                        clipped.append((x, cost))

    values = [c.cost_mean + (0 if math.isnan(c.cost_se) else c.cost_se) for c in ours.values()]
    if theirs is not None:
        values += list(theirs["cost"])
    top = COST_AXIS_MAX if max(values) > COST_AXIS_MAX else max(1.5, 1.15 * max(values))
    ax_c.set_ylim(0, top)
    for x, value in clipped:
        ax_c.annotate(
            f"{value:.3g}↑",
            (x, top),
            ha="center",
            va="bottom",
            fontsize=7,
            xytext=(0, 2),
            textcoords="offset points",
        )
    threshold = ax_c.axhline(
        1.0, color="red", linestyle="--", linewidth=1.2, label="Threshold = 1.0"
    )
    ax_r.axhline(0.0, color="black", linewidth=0.5)
    ax_r.set_ylabel("Normalised return")
    ax_c.set_ylabel("Normalised cost")
    ax_c.set_xticks(range(len(methods)), [display_name(a) for a in methods])
    ax_c.set_xlim(-0.6, len(methods) - 0.4)
    for ax in (ax_r, ax_c):
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)

    seeds = max(c.n_seeds + len(c.missing_seeds) for c in ours.values())
    protocols = sorted({protocol_label(c.protocol) for c in ours.values()})
    how = protocols[0] if len(protocols) == 1 else "protocols differ: " + " | ".join(protocols)
    ax_r.set_title(
        f"{task} — profile {profile}: mean ± SE over {seeds} seed(s)\nours: {how}", fontsize=9
    )
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[x]) for x in limits]
    labels = [f"l={x:g}" for x in limits]
    if theirs is not None:
        handles.append(
            plt.Line2D([], [], marker="D", color="black", markerfacecolor="white", linestyle="")
        )
        labels.append("published (poster; DRCORL cost C/(l+0.1))")
    handles.append(threshold)
    labels.append("Threshold = 1.0")
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8, frameon=False
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def write_cost_limits_figure(
    results_dir: Path,
    profile: str,
    task: str,
    out_dir: Path,
    with_published: bool = True,
    skip_invalid: bool = False,
) -> list[Path]:
    from benchmark.tasks import get_task

    task = get_task(task).name  # the canonical short name; unknown names fail here
    cells, _, _ = report_cells(results_dir, profile, table_limits=False, skip_invalid=skip_invalid)
    fig = cost_limits_figure(
        cells, task, profile, published_cost_limits() if with_published else None
    )
    try:
        return _save(fig, out_dir, f"cost_limits_{task}")
    finally:
        _pyplot().close(fig)


# --------------------------------------------------------------------------- panel (a)

# bench rows name their timing in different units; seconds per 1000 actions is the poster's
_TIME_KEYS = (
    ("seconds_per_1000_actions", 1.0),
    ("seconds_per_1k_actions", 1.0),
    ("s_per_1000_actions", 1.0),
    ("ms_per_1000_actions", 1e-3),
    ("ms_per_1k_actions", 1e-3),
    ("seconds_per_action", 1e3),
    ("ms_per_action", 1.0),
)


def bench_timings(path: Path, on_cuda_only: bool = False) -> list[tuple[str, float]]:
    """(label, seconds per 1000 actions) for every row of a bench JSON that has a timing;
    `on_cuda_only`: only rows whose `device` is CUDA (section gpu's measured points)."""
    data = json.loads(Path(path).read_text())
    rows = data.get("rows", []) if isinstance(data, dict) else data
    out = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        if on_cuda_only and not str(row.get("device", "")).startswith("cuda"):
            continue
        for key, scale in _TIME_KEYS:
            value = row.get(key)
            if isinstance(value, int | float) and math.isfinite(value) and value > 0:
                label = str(row.get("what") or row.get("name") or key)
                out.append((label, float(value) * scale))
                break
    return out


def gpu_timings(path: Path | None) -> list[tuple[str, float]]:
    """The CUDA-measured inference rows of `make bench` section gpu; [] when there are none
    (no file, no GPU on the machine that ran it, or an unreadable file)."""
    if path is None or not Path(path).is_file():
        return []
    try:
        return bench_timings(path, on_cuda_only=True)
    except (OSError, json.JSONDecodeError):
        return []


def _short_label(label: str) -> str:
    """`diffusion sampler, 25 steps, ...` -> `sampler 25`; the extracted policy -> `policy`."""
    steps = re.search(r"(\d+) steps", label)
    if "sampler" in label and steps:
        return f"sampler {steps.group(1)}"
    if "policy" in label:
        return "policy"
    return label.split(",")[0]


def drcorl_score(cells: Iterable[Cell]) -> tuple[float, bool] | None:
    """Our DRCORL point: mean normalised reward over its tasks, safe if mean cost ≤ 1."""
    mine = [c for c in cells if c.algorithm == "drcorl"]
    if not mine:
        return None
    return float(np.mean([c.reward_mean for c in mine])), float(
        np.mean([c.cost_mean for c in mine])
    ) <= 1.0


@dataclass(frozen=True)
class _PointStyle:
    marker: str
    size: int
    prefix: str
    line: str
    flip: int
    """Label offset sign for the first point (neighbours alternate, so labels stay legible)."""


CPU_POINTS = _PointStyle(marker="*", size=60, prefix="ours", line=":", flip=-1)
GPU_POINTS = _PointStyle(marker="^", size=50, prefix="ours GPU", line="--", flip=1)


def _our_points(
    ax, timings: list[tuple[str, float]], score: tuple[float, bool] | None, style: _PointStyle
) -> None:
    """Our timings at our score, safe green / unsafe red (vertical lines without a score)."""
    for i, (label, seconds) in enumerate(timings):
        if score is not None:
            colour = SAFE_GREEN if score[1] else UNSAFE_RED
            ax.scatter(seconds, score[0], s=style.size, marker=style.marker, color=colour, zorder=5)
            up = (7, -12) if style.flip > 0 else (-12, 7)
            ax.annotate(
                f"{style.prefix}: {_short_label(label)}",
                (seconds, score[0]),
                fontsize=7,
                xytext=(-10, up[i % 2]),
                textcoords="offset points",
            )
        else:
            ax.axvline(seconds, color="0.3", linestyle=style.line, linewidth=1)
            ax.annotate(
                f"{style.prefix}: {label}",
                (seconds, 0.02),
                fontsize=7,
                rotation=90,
                va="bottom",
                xytext=(3, 0),
                textcoords="offset points",
            )


def inference_figure(
    timings: list[tuple[str, float]],
    score: tuple[float, bool] | None,
    published: pd.DataFrame,
    profile: str,
    gpu: list[tuple[str, float]] | None = None,
):
    """`gpu`: timings measured on CUDA (section gpu), drawn as triangles beside the CPU stars."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for _, row in published.iterrows():
        colour = SAFE_GREEN if row["safe"] else UNSAFE_RED
        ax.scatter(
            row["seconds_per_1k_actions"],
            row["normalized_score"],
            s=40,
            facecolors="none",
            edgecolors=colour,
            linewidths=1.2,
        )
        ax.annotate(
            row["method_published"],
            (row["seconds_per_1k_actions"], row["normalized_score"]),
            fontsize=7,
            xytext=(4, 3),
            textcoords="offset points",
            color="0.35",
        )
    _our_points(ax, timings, score, CPU_POINTS)
    if gpu:
        _our_points(ax, gpu, score, GPU_POINTS)
    else:
        ax.text(0.02, 0.97, "GPU: not measured", transform=ax.transAxes, fontsize=7, va="top")
    ax.set_xscale("log")
    xs = [t for _, t in [*timings, *(gpu or [])]] + list(published["seconds_per_1k_actions"])
    ax.set_xlim(min(xs) / 2, max(xs) * 6)  # room for the labels right of the points
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("Inference time (seconds per 1000 actions, log scale)")
    ax.set_ylabel("Normalised score")
    how = (
        "ours (★): mean DRCORL normalised reward over the profile's tasks"
        if score is not None
        else "ours: timings only (no DRCORL records in this profile)"
    )
    ax.set_title(
        f"Inference time vs score — profile {profile}\n○ published ({SOURCE}); {how}", fontsize=8
    )
    ax.scatter([], [], color=SAFE_GREEN, label="safe")
    ax.scatter([], [], color=UNSAFE_RED, label="unsafe")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def write_inference_figure(
    bench_path: Path, cells: list[Cell], profile: str, out_dir: Path, gpu_path: Path | None = None
) -> list[Path]:
    """Panel (a) when `make bench` has written its DRCORL timings; [] (with a message) otherwise.
    `gpu_path`: section gpu's JSON, whose CUDA rows are added (else "GPU: not measured")."""
    if not Path(bench_path).is_file():
        print(f"inference figure skipped: {bench_path} not found (run `make bench` first)")
        return []
    try:
        timings = bench_timings(bench_path)
    except (OSError, json.JSONDecodeError) as error:
        print(f"inference figure skipped: cannot read {bench_path} ({error})")
        return []
    if not timings:
        print(f"inference figure skipped: no per-1000-action timings in {bench_path}")
        return []
    gpu = gpu_timings(gpu_path)
    fig = inference_figure(timings, drcorl_score(cells), published_inference(), profile, gpu)
    try:
        return _save(fig, out_dir, "inference")
    finally:
        _pyplot().close(fig)


def cli_figure_cost_limits(args) -> int:
    from benchmark.paths import report_out_dir, reports_dir, results_dir
    from benchmark.profiles import profile_name

    profile = profile_name(args.profile)
    results = Path(args.results) if args.results else results_dir()
    out_dir = report_out_dir(args.out, args.results, profile)
    skip = args.skip_invalid
    paths = write_cost_limits_figure(results, profile, args.task, out_dir, skip_invalid=skip)
    table_cells, _, _ = report_cells(results, profile, table_limits=True, skip_invalid=skip)
    bench = reports_dir() / "bench"
    paths += write_inference_figure(
        bench / "drcorl.json", table_cells, profile, out_dir, bench / "gpu.json"
    )
    for path in paths:
        print(f"wrote {path}")
    return 0
