"""`python -m benchmark diff`: our cells beside the published DRCORL numbers.

For every published cell (the poster table, and the cost-limit ablation) the report gives our mean
± std over seeds beside the published value, Δreward and Δcost (ours − published), and whether the
safety verdict (mean normalised cost ≤ 1) flips. Doubtful published cells (see
results/published/PROVENANCE.md) are marked, cells we have no records for are listed as missing,
and `--fail-on-flip` makes the command exit 1 when any verdict flips.

Budgets: the header and every compared row state the ratio of the runs' training budget --
samples drawn, i.e. steps x batch size summed over an algorithm's stages -- to the reference
budget (the `paper` budget set, `results/published/reference_budgets.csv`). A diff of a
reduced-budget profile (`cpu`, `demo`) says so: it measures distance from the published numbers,
it does not reproduce them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.atomic import atomic_write_text
from benchmark.report.published import (
    REFERENCE_PROFILE,
    SOURCE,
    published_cost_limits,
    published_table,
    reference_budgets,
)
from benchmark.report.records import (
    SAFE_COST,
    Cell,
    algorithm_order,
    display_name,
    protocol_label,
    report_cells,
    task_order,
)
from benchmark.report.table import MARK_DOUBTFUL, data_criteria_note, fmt_mean_std, fmt_number

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
    "budget_ratio",
    "note",
)

STAGE_BUDGETS: dict[str, tuple[tuple[str, str, int], ...]] = {
    "ccac": (("warmup_steps", "batch_size", 1), ("steps", "batch_size", 1)),
}
"""Per algorithm: (steps key, batch-size key, batch multiplier) of each training stage, as its
`stages` are built from its Config (tests/report/test_diff_budgets.py checks every registered
algorithm against its real stages). Algorithms not listed have one stage, steps x batch_size;
DRCORL's stages depend on its switching mode (`_drcorl_samples`).
The report reads records only, so it cannot ask the algorithm."""
ONE_STAGE = (("steps", "batch_size", 1),)


def _drcorl_samples(config: dict) -> int:
    """DRCORL's stages: behaviour, critic, extract, then (offline switching on the policy-
    evaluation cost signal) `cost_eval`, and `adapt`, whose batch holds a critic TD half, a
    policy half and, with `cost_eval`, the per-iteration policy-evaluation TD steps."""
    total = (
        config["behavior_steps"] * config["behavior_batch_size"]
        + config["critic_steps"] * config["critic_batch_size"]
        + config["extract_steps"] * config["policy_batch_size"]
    )
    adapt_batch = 2 * config["policy_batch_size"]
    policy_eval = (
        config.get("switching", "critic") == "critic" and config.get("cost_signal") == "policy_eval"
    )
    if policy_eval:
        total += config["pe_init_steps"] * config["pe_batch_size"]
        adapt_batch += config["pe_steps_per_iteration"] * config["pe_batch_size"]
    return int(total + config["adapt_iterations"] * adapt_batch)


def training_samples(algorithm: str, config: dict) -> int | None:
    """Steps x batch size summed over the algorithm's stages, from a resolved config; None when
    the config lacks a key (an unregistered algorithm)."""
    if algorithm == "drcorl":
        try:
            return _drcorl_samples(config)
        except KeyError:
            return None
    total = 0
    for steps, batch, factor in STAGE_BUDGETS.get(algorithm, ONE_STAGE):
        if steps not in config or batch not in config:
            return None
        total += int(config[steps]) * int(config[batch]) * factor
    return total


def budget_ratios(records: list[dict], reference: dict[tuple[str, str], int]) -> dict:
    """(task, algorithm, cost limit) -> our samples / the reference's (the largest over seeds,
    which share a config); cells with an unknown budget are left out."""
    ratios: dict[tuple, float] = {}
    for record in records:
        ours = training_samples(record["algorithm"], record["config"])
        theirs = reference.get((record["task"], record["algorithm"])) or reference.get(
            ("*", record["algorithm"])
        )
        if ours is None or not theirs:
            continue
        key = (record["task"], record["algorithm"], float(record["cost_limit"]))
        ratios[key] = max(ratios.get(key, 0.0), ours / theirs)
    return ratios


def _ratio_text(values: list[float]) -> str:
    lo, hi = _fmt_ratio(min(values)), _fmt_ratio(max(values))
    return lo if lo == hi else f"{lo}–{hi}"  # one number when the range rounds to one


def _fmt_ratio(x: float) -> str:
    return f"{x:.2f}" if x >= 0.01 else f"{x:.1e}"


def budget_header(ratios: dict[tuple, float]) -> list[str]:
    """The header's budget paragraph: every method's ratio(s), and whether this reproduces."""
    if not ratios:
        return ["Training budget: unknown (no record carries a budget the suite can read)."]
    per_method: dict[str, list[float]] = {}
    for (_, algorithm, _), ratio in ratios.items():
        per_method.setdefault(algorithm, []).append(ratio)
    methods = algorithm_order(per_method)
    parts = ", ".join(f"{display_name(a)} {_ratio_text(per_method[a])}" for a in methods)
    line = (
        "Training budget (samples drawn: steps × batch size, summed over stages) relative to "
        f"the reference `{REFERENCE_PROFILE}` budget set: {parts}."
    )
    if all(math.isclose(r, 1.0, rel_tol=1e-6) for r in ratios.values()):
        return [line + " Every run is at the reference budget."]
    reduced = [display_name(a) for a in methods if min(per_method[a]) < 1 - 1e-6]
    return [
        line,
        "",
        f"**Not a reproduction:** {', '.join(reduced) or 'some methods'} ran below the "
        "reference budget, so differences from the published numbers measure this budget as "
        "much as the methods; reproduce with the `paper` profile.",
    ]


def _flip_text(ours_safe: bool, theirs_safe: bool) -> str:
    if ours_safe == theirs_safe:
        return ""
    return "published safe, ours unsafe" if theirs_safe else "published unsafe, ours safe"


def _diff_row(
    table: str,
    published: pd.Series,
    cell: Cell | None,
    other_limits: list,
    ratio: float | None = None,
) -> dict:
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
        "budget_ratio": ratio,
        "note": f"{cell.n_seeds} seeds (others have {len(cell.missing_seeds) + cell.n_seeds})"
        if cell.missing_seeds
        else "",
    }


def diff_frame(
    cells: list[Cell], published: dict[str, pd.DataFrame], ratios: dict | None = None
) -> pd.DataFrame:
    """One row per published cell: ours beside theirs, or `missing`; `ratios`: each cell's
    training budget relative to the reference, from `budget_ratios`."""
    ratios = ratios or {}
    by_key = {(c.task, c.algorithm, c.cost_limit): c for c in cells}
    limits: dict[tuple, list] = {}
    for c in cells:
        limits.setdefault((c.task, c.algorithm), []).append(c.cost_limit)
    rows = []
    for table, frame in published.items():
        for _, published_row in frame.iterrows():
            stated = float(published_row["cost_limit"])
            # a value whose limit is not known (CarRun's baselines) is compared at each candidate
            alternatives = tuple(published_row.get("other_cost_limits", ()) or ())
            for limit in (stated, *alternatives):
                prow = published_row.copy()
                prow["cost_limit"] = limit
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
                ratio = ratios.get((cell.task, cell.algorithm, cell.cost_limit)) if cell else None
                row = _diff_row(table, prow, cell, others, ratio)
                if cell is not None and not math.isclose(limit, stated):
                    note = f"published value listed at κ={stated:g} (assumed); compared here too"
                    row["note"] = "; ".join(n for n in (row.get("note"), note) if n)
                rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.reindex(columns=list(DIFF_COLUMNS))


# --------------------------------------------------------------------------- markdown


def _ours(row: pd.Series, which: str) -> str:
    return fmt_mean_std(row[f"ours_{which}"], row[f"ours_{which}_std"])


def _signed(x: float) -> str:
    return ("+" if x >= 0 else "") + fmt_number(x)


def _compared_table(frame: pd.DataFrame) -> list[str]:
    lines = [
        "| Task | Method | κ | Seeds | Budget | R ours | R published | ΔR | C ours | C published | "
        "ΔC | Verdict |",
        "|:---|:---|---:|---:|---:|:---:|:---:|---:|:---:|:---:|---:|:---|",
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
        ratio = row["budget_ratio"]
        budget = "?" if ratio is None or pd.isna(ratio) else f"×{_fmt_ratio(float(ratio))}"
        lines.append(
            f"| {row['task']} | {row['method']} | {row['cost_limit']:g} | {seeds} | {budget} | "
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


def render_markdown(
    frame: pd.DataFrame,
    profile: str,
    profile_tasks: list[str],
    budget_lines: list[str] | None = None,
) -> str:
    lines = [
        f"# Profile {profile} against the published numbers",
        "",
        *(budget_lines or []),
        "",
        f"Published: {SOURCE} (results/published/, provenance in PROVENANCE.md). "
        "Δ = ours − published. A cell is safe when its mean normalised cost is ≤ 1; a *flip* is "
        "a cell whose verdict differs. Ours: mean ± std over seeds, each seed the mean over its "
        "evaluation episodes, at the published cell's cost limit κ. The published DRCORL values "
        "look single-seed and online-selected with cost C/(κ+0.1), and the baseline columns mix "
        f"sources and thresholds, so differences are expected; {MARK_DOUBTFUL} marks a published "
        "value flagged as doubtful. Budget: a row's training budget as a multiple of the "
        "reference one.",
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


def make_diff(results_dir: Path, profile: str, skip_invalid: bool = False) -> DiffReport:
    from benchmark.results import read_records

    cells, _, _ = report_cells(results_dir, profile, table_limits=False, skip_invalid=skip_invalid)
    published = {"table": published_table(), "cost-limit ablation": published_cost_limits()}
    records = read_records(results_dir, profile).records
    ratios = budget_ratios(records, reference_budgets())
    frame = diff_frame(cells, published, ratios)
    tasks = task_order({c.task for c in cells})
    criteria = data_criteria_note(cells)
    header = data_header(records) + ([criteria, ""] if criteria else []) + budget_header(ratios)
    scales = sorted({c.budget_scale for c in cells})
    if scales != [1.0]:
        header.append(
            f"Budget scale: step counts × {', '.join(f'{x:g}' for x in scales)} of the profile's "
            "budget set (`--budget-scale`); the ratios above include it."
        )
    return DiffReport(frame, render_markdown(frame, profile, tasks, header))


def data_header(records: list[dict]) -> list[str]:
    """A warning line when any record trained on data other than DSRL's own files."""
    sources = sorted({r.get("dataset", {}).get("source", "unknown") for r in records} - {"dsrl"})
    if not sources:
        return []
    return [
        f"**Not DSRL's data:** runs of this profile trained on {', '.join(sources)} data, not "
        "on the DSRL datasets the published numbers come from; rewards and costs are not "
        "comparable, and the safety verdicts only say how the methods behave on other data.",
        "",
    ]


def write_diff(report: DiffReport, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in (
        ("diff.md", report.markdown),
        ("diff.csv", report.frame.to_csv(index=False)),
    ):
        path = out_dir / name
        atomic_write_text(path, text)
        paths.append(path)
    return paths


def cli_diff(args) -> int:
    from benchmark.paths import report_out_dir, results_dir
    from benchmark.profiles import profile_name

    profile = profile_name(args.profile)
    results = Path(args.results) if args.results else results_dir()
    report = make_diff(results, profile, skip_invalid=args.skip_invalid)
    paths = write_diff(report, report_out_dir(args.out, args.results, profile))
    head, _, rest = report.markdown.partition("## Summary")
    budget = head.split("\n\nPublished:", 1)[0].split("\n", 1)[1].strip()
    summary = rest.split("\n## ", 1)[0].strip()
    print(f"Profile {args.profile} against the published numbers:\n{budget}\n\n{summary}")
    for path in paths:
        print(f"wrote {path}")
    if args.fail_on_flip and not report.flips.empty:
        print(f"{len(report.flips)} safety verdict(s) flip (--fail-on-flip): exit 1")
        return 1
    return 0
