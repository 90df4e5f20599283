"""`python -m benchmark diff`: our cells beside the published DRCORL numbers.

For every published cell (the poster table, and the cost-limit ablation) the report gives our mean
± std over seeds beside the published value, Δreward and Δcost (ours − published), and whether the
safety verdict (mean normalised cost ≤ 1) flips. Doubtful published cells (see
results/published/PROVENANCE.md) are marked, cells we have no records for are listed as missing,
and `--fail-on-flip` makes the command exit 1 when any verdict flips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.report.published import SOURCE, published_cost_limits, published_table
from benchmark.report.records import (
    SAFE_COST,
    Cell,
    display_name,
    protocol_label,
    report_cells,
    task_order,
)
from benchmark.report.table import MARK_DOUBTFUL, fmt_mean_std, fmt_number

DIFF_COLUMNS = (
    "table",
    "task",
    "algorithm",
    "method",
    "cost_limit",
    "status",
    "n_seeds",
    "missing_seeds",
    "ours_reward",
    "ours_reward_std",
    "ours_cost",
    "ours_cost_std",
    "published_reward",
    "published_cost",
    "d_reward",
    "d_cost",
    "ours_safe",
    "published_safe",
    "verdict_flip",
    "flip",
    "doubtful",
    "doubtful_reason",
    "protocol",
    "note",
)


def _flip_text(ours_safe: bool, theirs_safe: bool) -> str:
    if ours_safe == theirs_safe:
        return ""
    return "published safe, ours unsafe" if theirs_safe else "published unsafe, ours safe"


def _diff_row(table: str, published: pd.Series, cell: Cell | None, other_limits: list) -> dict:
    theirs_reward, theirs_cost = float(published["reward"]), float(published["cost"])
    theirs_safe = theirs_cost <= SAFE_COST
    row = {
        "table": table,
        "task": published["task"],
        "algorithm": published["algorithm"],
        "method": display_name(published["algorithm"]),
        "cost_limit": float(published["cost_limit"]),
        "published_reward": theirs_reward,
        "published_cost": theirs_cost,
        "published_safe": theirs_safe,
        "doubtful": bool(published["doubtful"]),
        "doubtful_reason": published["doubtful_reason"],
    }
    if cell is None:
        note = ""
        if other_limits:
            note = "records only at cost limit(s) " + ", ".join(f"{x:g}" for x in other_limits)
        return {**row, "status": "missing", "n_seeds": 0, "verdict_flip": False, "note": note}
    ours_safe = cell.safe
    return {
        **row,
        "status": "compared",
        "n_seeds": cell.n_seeds,
        "missing_seeds": " ".join(map(str, cell.missing_seeds)),
        "ours_reward": cell.reward_mean,
        "ours_reward_std": cell.reward_std,
        "ours_cost": cell.cost_mean,
        "ours_cost_std": cell.cost_std,
        "d_reward": cell.reward_mean - theirs_reward,
        "d_cost": cell.cost_mean - theirs_cost,
        "ours_safe": ours_safe,
        "verdict_flip": ours_safe != theirs_safe,
        "flip": _flip_text(ours_safe, theirs_safe),
        "protocol": protocol_label(cell.protocol),
        "note": f"{cell.n_seeds} seeds (others have {len(cell.missing_seeds) + cell.n_seeds})"
        if cell.missing_seeds
        else "",
    }


def diff_frame(cells: list[Cell], published: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per published cell: ours beside theirs, or `missing`."""
    by_key = {(c.task, c.algorithm, c.cost_limit): c for c in cells}
    limits: dict[tuple, list] = {}
    for c in cells:
        limits.setdefault((c.task, c.algorithm), []).append(c.cost_limit)
    rows = []
    for table, frame in published.items():
        for _, prow in frame.iterrows():
            limit = float(prow["cost_limit"])
            cell = next(
                (
                    by_key[k]
                    for k in by_key
                    if k[:2] == (prow["task"], prow["algorithm"]) and math.isclose(k[2], limit)
                ),
                None,
            )
            others = sorted(
                x
                for x in limits.get((prow["task"], prow["algorithm"]), [])
                if not math.isclose(x, limit)
            )
            rows.append(_diff_row(table, prow, cell, others))
    frame = pd.DataFrame(rows)
    return frame.reindex(columns=list(DIFF_COLUMNS))


# --------------------------------------------------------------------------- markdown


def _ours(row: pd.Series, which: str) -> str:
    return fmt_mean_std(row[f"ours_{which}"], row[f"ours_{which}_std"])


def _signed(x: float) -> str:
    return ("+" if x >= 0 else "") + fmt_number(x)


def _compared_table(frame: pd.DataFrame) -> list[str]:
    lines = [
        "| Task | Method | κ | Seeds | R ours | R published | ΔR | C ours | C published | ΔC | "
        "Verdict |",
        "|:---|:---|---:|---:|:---:|:---:|---:|:---:|:---:|---:|:---|",
    ]
    for _, row in frame.iterrows():
        mark = MARK_DOUBTFUL if row["doubtful"] else ""
        verdict = (
            f"**flip: {row['flip']}**"
            if row["verdict_flip"]
            else ("both safe" if row["ours_safe"] else "both unsafe")
        )
        seeds = f"{row['n_seeds']}" + (
            f" (of {row['n_seeds'] + len(row['missing_seeds'].split())})"
            if row["missing_seeds"]
            else ""
        )
        lines.append(
            f"| {row['task']} | {row['method']} | {row['cost_limit']:g} | {seeds} | "
            f"{_ours(row, 'reward')} | {fmt_number(row['published_reward'])}{mark} | "
            f"{_signed(row['d_reward'])} | {_ours(row, 'cost')} | "
            f"{fmt_number(row['published_cost'])}{mark} | {_signed(row['d_cost'])} | {verdict} |"
        )
    return lines


def _missing_lines(frame: pd.DataFrame) -> list[str]:
    """One line per task: the methods without records (and the limits, when several)."""
    lines = []
    for task in task_order(frame["task"]):
        part = frame[frame["task"] == task]
        several = part["cost_limit"].nunique() > 1
        names = []
        for algorithm, group in part.groupby("algorithm", sort=False):
            text = display_name(algorithm)
            if several:
                text += " (κ " + ", ".join(f"{x:g}" for x in sorted(group["cost_limit"])) + ")"
            notes = sorted({n for n in group["note"] if n})
            if notes:
                text += f" [{'; '.join(notes)}]"
            names.append(text)
        limit = ", ".join(f"{x:g}" for x in sorted(set(part["cost_limit"])))
        lines.append(f"- {task} (κ = {limit}): {', '.join(names)}")
    return lines


def _summary(frame: pd.DataFrame, profile_tasks: list[str]) -> list[str]:
    lines = []
    for table, part in frame.groupby("table", sort=False):
        compared = part[part["status"] == "compared"]
        flips = compared[compared["verdict_flip"]]
        text = f"- **{table}**: {len(compared)} of {len(part)} published cells compared"
        text += f", {len(part) - len(compared)} missing"
        if not compared.empty:
            text += (
                f"; {len(flips)} safety-verdict flip(s)"
                f" ({int(flips['doubtful'].sum())} on doubtful cells)"
                f"; mean ΔR {_signed(compared['d_reward'].mean())}"
                f" (mean |ΔR| {fmt_number(compared['d_reward'].abs().mean())})"
                f", median ΔC {_signed(float(np.median(compared['d_cost'])))}"
            )
        lines.append(text + ".")
    compared = frame[frame["status"] == "compared"]
    if compared.empty:
        lines.append(
            "- None of this profile's cells are in the published table (its tasks: "
            f"{', '.join(profile_tasks) or 'none'}); run a profile on the DSRL tasks "
            "(e.g. `cpu` or `paper`) to compare."
        )
    for _, row in compared[compared["verdict_flip"]].iterrows():
        mark = f" {MARK_DOUBTFUL} doubtful: {row['doubtful_reason']}" if row["doubtful"] else ""
        lines.append(
            f"- flip ({row['table']}): {row['task']} / {row['method']} at κ={row['cost_limit']:g}: "
            f"{row['flip']} "
            f"(cost ours {fmt_number(row['ours_cost'])}, published "
            f"{fmt_number(row['published_cost'])}){mark}"
        )
    return lines


def render_markdown(frame: pd.DataFrame, profile: str, profile_tasks: list[str]) -> str:
    lines = [
        f"# Profile {profile} against the published numbers",
        "",
        f"Published: {SOURCE} (results/published/, provenance in PROVENANCE.md). "
        "Δ = ours − published. A cell is safe when its mean normalised cost is ≤ 1; a *flip* is "
        "a cell whose verdict differs. Ours: mean ± std over seeds, each seed the mean over its "
        "evaluation episodes, at the published cell's cost limit κ. The published DRCORL values "
        "look single-seed and online-selected with cost C/(κ+0.1), and the baseline columns mix "
        f"sources and thresholds, so differences are expected; {MARK_DOUBTFUL} marks a published "
        "value flagged as doubtful.",
        "",
        "## Summary",
        "",
        *_summary(frame, profile_tasks),
    ]
    for table, part in frame.groupby("table", sort=False):
        compared = part[part["status"] == "compared"]
        missing = part[part["status"] == "missing"]
        lines += ["", f"## {table}: compared cells", ""]
        lines += _compared_table(compared) if not compared.empty else ["None."]
        lines += ["", f"## {table}: missing cells (no records)", ""]
        lines += _missing_lines(missing) if not missing.empty else ["None."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- entry points


@dataclass
class DiffReport:
    frame: pd.DataFrame
    markdown: str

    @property
    def flips(self) -> pd.DataFrame:
        return self.frame[self.frame["verdict_flip"].astype(bool)]


def make_diff(results_dir: Path, profile: str) -> DiffReport:
    cells, _, _ = report_cells(results_dir, profile, table_limits=False)
    published = {"table": published_table(), "cost-limit ablation": published_cost_limits()}
    frame = diff_frame(cells, published)
    tasks = task_order({c.task for c in cells})
    return DiffReport(frame, render_markdown(frame, profile, tasks))


def write_diff(report: DiffReport, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in (
        ("diff.md", report.markdown),
        ("diff.csv", report.frame.to_csv(index=False)),
    ):
        path = out_dir / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        paths.append(path)
    return paths


def cli_diff(args) -> int:
    from benchmark.paths import reports_dir, results_dir

    results = Path(args.results) if args.results else results_dir()
    report = make_diff(results, args.profile)
    paths = write_diff(report, reports_dir() / args.profile)
    summary = report.markdown.split("## Summary", 1)[1].split("\n## ", 1)[0].strip()
    print(f"Profile {args.profile} against the published numbers:\n{summary}")
    for path in paths:
        print(f"wrote {path}")
    if args.fail_on_flip and not report.flips.empty:
        print(f"{len(report.flips)} safety verdict(s) flip (--fail-on-flip): exit 1")
        return 1
    return 0
