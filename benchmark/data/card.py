"""The dataset card: statistics of a dataset's cost-return plane, and its CR scatter plot.

Follows docs/datasets.md: the mechanical checks the reader has not already made, the
statistics to compare with DSRL's reference (ranges, fractions under the cost thresholds,
best safe return, 10x10 grid occupancy over DSRL's (cost, return) box, Spearman rho,
termination rate, per-step costs) and the 4.1 verdict on whether offline safe-RL results on
this data can mean anything. Every record carries the card of the data it was trained on.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.atomic import atomic_path
from benchmark.data.dataset import Dataset
from benchmark.paths import reports_dir
from benchmark.tasks import TaskSpec, get_task

GRID_BINS = 10
FIXED_THRESHOLDS = (10.0, 20.0, 40.0, 80.0)
# docs/datasets.md: our own heuristic targets for a "meaningful" offline safe-RL dataset.
SAFE_FRACTION_RANGE = (0.15, 0.50)
MIN_SAFE_TRAJECTORIES = 30
MIN_UNSAFE_FRACTION = 0.30  # of trajectories with C > 2 kappa (C > kappa when 2 kappa >= C_max)
MIN_BEST_SAFE_NORMALISED = 0.7


def _as_task(task: TaskSpec | str) -> TaskSpec:
    return get_task(task) if isinstance(task, str) else task


def _num(value: Any) -> float | None:
    """A JSON-safe float: NaN and Inf become None."""
    value = float(value)
    return value if math.isfinite(value) else None


def dataset_card(
    dataset: Dataset, task: TaskSpec | str, cost_limit: float | None = None
) -> dict[str, Any]:
    """Statistics and the docs/datasets.md verdict of `dataset` at cost limit `cost_limit`."""
    task = _as_task(task)
    kappa = float(task.drcorl_cost_limit if cost_limit is None else cost_limit)
    returns = dataset.episode_returns
    costs = dataset.episode_costs
    lengths = dataset.episode_lengths
    n = int(returns.shape[0])
    safe = costs <= kappa
    best_safe = float(returns[safe].max()) if safe.any() else None
    best_safe_norm = _num(task.normalise_reward(best_safe)) if best_safe is not None else None
    ends = dataset.episode_ends - 1
    card: dict[str, Any] = {
        "task": task.name,
        "source": dataset.source,
        "path": dataset.path,
        "content_sha256": dataset.content_sha256,
        "file_sha256": dataset.file_sha256,
        "cost_limit": kappa,
        "n_transitions": len(dataset),
        "n_trajectories": n,
        "dsrl_trajectories": task.dsrl_trajectories or None,
        "reference": {
            "reward_min": task.reward_min,
            "reward_max": task.reward_max,
            "max_cost": task.max_cost,
            "horizon": task.horizon,
        },
        "return": _range(returns),
        "cost": _range(costs),
        "max_return_normalised": _num(task.normalise_reward(returns.max())),
        "fraction_cost_zero": _num(np.mean(costs == 0)),
        "fraction_safe": _num(np.mean(safe)),
        "fraction_cost_le_2kappa": _num(np.mean(costs <= 2 * kappa)),
        "fraction_cost_above_2kappa": _num(np.mean(costs > 2 * kappa)),
        "fraction_cost_above_kappa": _num(np.mean(costs > kappa)),
        "fraction_cost_le": {f"{c:g}": _num(np.mean(costs <= c)) for c in FIXED_THRESHOLDS},
        "n_safe": int(safe.sum()),
        "best_safe_return": best_safe,
        "best_safe_return_normalised": best_safe_norm,
        "grid": grid_occupancy(returns, costs, task),
        "spearman_rho": _spearman(costs, returns),
        "termination_rate": _num(np.mean(dataset.terminals[ends])),
        "mean_step_cost": _num(np.mean(dataset.costs)),
        "max_step_cost": _num(np.max(dataset.costs)),
        "episode_length": {
            "min": int(lengths.min()),
            "mean": _num(lengths.mean()),
            "max": int(lengths.max()),
            "longer_than_horizon": int(np.sum(lengths > task.horizon)),
        },
        "next_obs_mismatch_rows": _next_obs_mismatches(dataset),
    }
    card["verdict"] = verdict(card, recipe_note(dataset, task))
    return card


def recipe_note(dataset: Dataset, task: TaskSpec) -> str:
    """The collection recipe's words on why its data misses a criterion (its `criteria_note`),
    when `dataset` is generated data made by that very revision of the recipe; else ""."""
    spec = task.collect
    if dataset.source != "generated" or spec is None or not spec.criteria_note:
        return ""
    made_by = int(dataset.attrs.get("recipe_revision", 1))
    return spec.criteria_note if made_by == spec.revision else ""


def _range(values: np.ndarray) -> dict[str, float | None]:
    return {"min": _num(values.min()), "mean": _num(values.mean()), "max": _num(values.max())}


def grid_occupancy(returns: np.ndarray, costs: np.ndarray, task: TaskSpec) -> dict[str, Any]:
    """Occupied cells of a 10x10 grid over DSRL's box [0, max_cost] x [R_min, R_max].

    Trajectories outside the box are counted in the nearest edge cell (and reported), so a
    dataset is not rewarded for spilling outside the reference range.
    """
    c_edges = np.linspace(0.0, task.max_cost, GRID_BINS + 1)
    r_edges = np.linspace(task.reward_min, task.reward_max, GRID_BINS + 1)
    ci = np.clip(np.searchsorted(c_edges, costs, side="right") - 1, 0, GRID_BINS - 1)
    ri = np.clip(np.searchsorted(r_edges, returns, side="right") - 1, 0, GRID_BINS - 1)
    counts = np.zeros((GRID_BINS, GRID_BINS), dtype=np.int64)
    np.add.at(counts, (ri, ci), 1)
    outside = (costs < 0) | (costs > task.max_cost)
    outside |= (returns < task.reward_min) | (returns > task.reward_max)
    return {
        "occupied_cells": int((counts > 0).sum()),
        "fraction_occupied": _num((counts > 0).mean()),
        "outside_box": int(outside.sum()),
        "counts": counts.tolist(),
        "axes": "rows: return bins from R_min up; columns: cost bins from 0 up",
    }


def _spearman(costs: np.ndarray, returns: np.ndarray) -> float | None:
    """Spearman's rho (average ranks for ties), as `scipy.stats.spearmanr` computes it.

    Written with numpy because importing `scipy.stats` takes seconds and every run record
    carries a card (tests check the two agree).
    """
    if costs.shape[0] < 3 or np.ptp(costs) == 0 or np.ptp(returns) == 0:
        return None  # undefined for constant columns
    rc, rr = _average_ranks(costs), _average_ranks(returns)
    return _num(np.corrcoef(rc, rr)[0, 1])


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)  # the highest rank of each distinct value
    return (upper - (counts - 1) / 2.0)[inverse]


def _next_obs_mismatches(dataset: Dataset) -> int:
    """Rows inside a trajectory whose next observation is not the following row's observation.

    Zero for generated data; a cheap corruption check (docs/datasets.md).
    """
    inside = np.ones(len(dataset) - 1, dtype=bool) if len(dataset) > 1 else np.zeros(0, bool)
    inside[dataset.episode_ends[:-1] - 1] = False
    mismatches = 0
    step = 1 << 18
    for start in range(0, inside.shape[0], step):
        stop = min(start + step, inside.shape[0])
        same = np.all(
            dataset.next_observations[start:stop] == dataset.observations[start + 1 : stop + 1],
            axis=1,
        )
        mismatches += int(np.sum(inside[start:stop] & ~same))
    return mismatches


def verdict(card: dict[str, Any], note: str = "") -> dict[str, Any]:
    """The four criteria of docs/datasets.md, each with its value, target and pass/fail, and
    the verdict's reason in words (`note`: the recipe's own account of a failure, if any).

    The unsafe side is counted above 2 kappa; where DSRL's cost cap keeps no trajectory above
    2 kappa (CarRun: kappa 30, cap 40), it is counted above kappa instead, the strongest test
    the capped data can pass.
    """
    lo, hi = SAFE_FRACTION_RANGE
    best = card["best_safe_return_normalised"]
    capped = 2 * card["cost_limit"] >= card["reference"]["max_cost"]
    unsafe = card["fraction_cost_above_kappa"] if capped else card["fraction_cost_above_2kappa"]
    unsafe_label = "kappa (2 kappa is above the cost cap)" if capped else "2 kappa"
    criteria = {
        "safe_fraction": {
            "value": card["fraction_safe"],
            "target": f"{lo:.0%}-{hi:.0%} of trajectories with C <= kappa",
            "pass": lo <= card["fraction_safe"] <= hi,
        },
        "safe_trajectories": {
            "value": card["n_safe"],
            "target": f">= {MIN_SAFE_TRAJECTORIES} trajectories with C <= kappa",
            "pass": card["n_safe"] >= MIN_SAFE_TRAJECTORIES,
        },
        "unsafe_fraction": {
            "value": unsafe,
            "target": f">= {MIN_UNSAFE_FRACTION:.0%} of trajectories with C > {unsafe_label}",
            "pass": unsafe is not None and unsafe >= MIN_UNSAFE_FRACTION,
        },
        "best_safe_return": {
            "value": best,
            "target": f"best safe return >= {MIN_BEST_SAFE_NORMALISED} normalised",
            "pass": best is not None and best >= MIN_BEST_SAFE_NORMALISED,
        },
    }
    meaningful = all(c["pass"] for c in criteria.values())
    return {"criteria": criteria, "meaningful": meaningful, "reason": _reason(criteria, note)}


def _reason(criteria: dict[str, dict], note: str) -> str:
    failed = [name for name, c in criteria.items() if not c["pass"]]
    if not failed:
        return "meets every criterion of docs/datasets.md"
    said = "fails " + _failures(criteria, failed)
    return f"{said}. {note}" if note else f"{said}; no reason recorded for this data's recipe"


def failed_criteria(card: dict[str, Any]) -> list[str]:
    """The names of the docs/datasets.md criteria `card` fails (empty: the data meets all)."""
    return [name for name, c in card["verdict"]["criteria"].items() if not c["pass"]]


def describe_failures(card: dict[str, Any]) -> str:
    """Each failed criterion with its value and target, for a person to read."""
    return _failures(card["verdict"]["criteria"], failed_criteria(card))


def _failures(criteria: dict[str, dict], names: list[str]) -> str:
    parts = []
    for name in names:
        value = criteria[name]["value"]
        shown = "n/a" if value is None else format(value, ".3g")
        parts.append(f"{name} {shown} (target {criteria[name]['target']})")
    return "; ".join(parts)


def criteria_warning(
    dataset: Dataset, task: TaskSpec | str, cost_limit: float | None = None
) -> str | None:
    """A warning for a run about to train on data other than DSRL's that fails the
    docs/datasets.md criteria at `cost_limit` (None when it meets them, or it is DSRL's)."""
    if dataset.source == "dsrl":
        return None  # the published numbers come from these files, whatever their shape
    card = dataset_card(dataset, task, cost_limit)
    if card["verdict"]["meaningful"]:
        return None
    return (
        f"the {dataset.source} dataset for {card['task']} fails the docs/datasets.md criteria "
        f"at kappa={card['cost_limit']:g}: {describe_failures(card)}. A result on it may say "
        "little about the method; the record lists the failed criteria."
    )


def format_card(card: dict[str, Any]) -> str:
    """A readable multi-line rendering of `card` for the terminal."""

    def f(value: Any, fmt: str = ".3g") -> str:
        return "n/a" if value is None else format(value, fmt)

    ref = card["reference"]
    ret, cost, length = card["return"], card["cost"], card["episode_length"]
    le = ", ".join(f"C<={k}: {f(v, '.0%')}" for k, v in card["fraction_cost_le"].items())
    dsrl_count = card["dsrl_trajectories"]
    lines = [
        f"dataset card: {card['task']} (source {card['source']},"
        f" cost limit {card['cost_limit']:g})",
        f"  file             {card['path'] or '-'}",
        f"  content sha256   {card['content_sha256']} (the arrays: the data's identity)",
        f"  file sha256      {card.get('file_sha256') or '-'} (the file, as sha256sum prints it)",
        f"  transitions      {card['n_transitions']}",
        f"  trajectories     {card['n_trajectories']}"
        + (f" (DSRL file: {dsrl_count})" if dsrl_count else ""),
        f"  episode length   {length['min']} / {f(length['mean'], '.1f')} / {length['max']}"
        f" (min/mean/max; horizon {ref['horizon']}, {length['longer_than_horizon']} longer)",
        f"  return           [{f(ret['min'])}, {f(ret['max'])}] mean {f(ret['mean'])}"
        f" (reference [{ref['reward_min']:.4g}, {ref['reward_max']:.4g}];"
        f" max normalised {f(card['max_return_normalised'], '.2f')})",
        f"  cost             [{f(cost['min'])}, {f(cost['max'])}] mean {f(cost['mean'])}"
        f" (reference max {ref['max_cost']:g})",
        f"  safe (C<=kappa)  {f(card['fraction_safe'], '.1%')} ({card['n_safe']} trajectories);"
        f" C=0: {f(card['fraction_cost_zero'], '.1%')};"
        f" C<=2kappa: {f(card['fraction_cost_le_2kappa'], '.1%')}",
        f"  fixed limits     {le}",
        f"  best safe return {f(card['best_safe_return'])}"
        f" (normalised {f(card['best_safe_return_normalised'], '.2f')})",
        f"  grid occupancy   {card['grid']['occupied_cells']}/{GRID_BINS * GRID_BINS} cells"
        f" ({card['grid']['outside_box']} trajectory(ies) outside the reference box)",
        f"  spearman rho     {f(card['spearman_rho'], '.2f')} (cost vs return)",
        f"  termination rate {f(card['termination_rate'], '.1%')}",
        f"  step cost        mean {f(card['mean_step_cost'], '.3f')},"
        f" max {f(card['max_step_cost'], '.3g')}",
        f"  next-obs check   {card['next_obs_mismatch_rows']} mismatching rows",
        "  verdict (docs/datasets.md): "
        + ("meaningful" if card["verdict"]["meaningful"] else "NOT meaningful"),
    ]
    for name, crit in card["verdict"]["criteria"].items():
        mark = "pass" if crit["pass"] else "FAIL"
        lines.append(f"    [{mark}] {name}: {f(crit['value'])} (target {crit['target']})")
    if card["verdict"].get("reason"):  # cards from before the field have none
        lines.append(f"  reason           {card['verdict']['reason']}")
    return "\n".join(lines)


def scatter_png(
    dataset: Dataset, task: TaskSpec | str, cost_limit: float | None, path: str | os.PathLike
) -> Path:
    """Cost-return scatter of the trajectories, with the cost limit marked; written atomically."""
    # The object-oriented API with the Agg canvas: no pyplot, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    task = _as_task(task)
    kappa = float(task.drcorl_cost_limit if cost_limit is None else cost_limit)
    returns, costs = dataset.episode_returns, dataset.episode_costs
    safe = costs <= kappa
    fig = Figure(figsize=(5.5, 4.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(costs[~safe], returns[~safe], s=6, alpha=0.5, c="tab:red", label="C > kappa")
    ax.scatter(costs[safe], returns[safe], s=6, alpha=0.6, c="tab:blue", label="C <= kappa")
    ax.axvline(kappa, color="black", linestyle="--", linewidth=1, label=f"kappa = {kappa:g}")
    ax.axvline(2 * kappa, color="grey", linestyle=":", linewidth=1, label="2 kappa")
    if safe.any():
        best = returns[safe].max()
        ax.axhline(
            best, color="tab:blue", linewidth=0.8, alpha=0.6, label=f"best safe R {best:.4g}"
        )
    ax.set_xlabel("episode cost C")
    ax.set_ylabel("episode return R")
    ax.set_title(f"{task.name} ({dataset.source}): {len(returns)} trajectories", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def write_card_json(card: dict[str, Any], path: str | os.PathLike) -> Path:
    path = Path(path)
    text = json.dumps(card, indent=2, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def report_stem(out: Path, task_name: str, source: str, content_sha256: str) -> str:
    """The name a card gets in a report folder: `<Task>-<source>`, unless a card of *another*
    dataset already holds that name (a committed card, whose records name its hash): then
    `<Task>-<source>-<first 12 hex of the content hash>`, so no card is ever overwritten by
    another dataset's."""
    stem = f"{task_name}-{source}"
    existing = out / f"{stem}.json"
    if existing.exists():
        try:
            held = json.loads(existing.read_text()).get("content_sha256")
        except (OSError, ValueError):
            held = None
        if held != content_sha256:
            return f"{stem}-{content_sha256[:12]}"
    return stem


def cli_card(args) -> int:
    """`python -m benchmark data card TASK [--path P] [--data SRC] [--out DIR] [--cost-limit K]`."""
    from benchmark.data import load_dataset

    task = get_task(args.task)
    dataset = load_dataset(task, source=args.data, path=args.path)
    card = dataset_card(dataset, task, args.cost_limit)
    out = Path(args.out) if args.out else reports_dir() / "datasets"
    stem = report_stem(out, task.name, dataset.source, card["content_sha256"])
    json_path = write_card_json(card, out / f"{stem}.json")
    png_path = scatter_png(dataset, task, args.cost_limit, out / f"{stem}.png")
    print(format_card(card))
    print(f"wrote {json_path} and {png_path}")
    return 0
