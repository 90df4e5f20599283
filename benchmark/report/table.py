"""`python -m benchmark table`: the results table as LaTeX, Markdown and a terminal print.

Rows are tasks, columns are methods with a reward (R↑) and a cost (C↓) column each, as in the
DRCORL table. A cell is the mean ± sample std (ddof=1) over seeds, where each seed's value is its
mean over the evaluation episodes. Per row, the highest reward among safe methods (mean normalised
cost ≤ 1; ties at the printed precision all count) is bold and unsafe methods are grey (italic in
Markdown). Published values, when the task is in the published table, sit in a row below ours and
follow the same rules. Each task is reported at its DRCORL cost limit; records at other limits are
left to `figure-cost-limits`.

A second table holds the aggregates across tasks: per method the IQM of normalised reward and cost
with stratified-bootstrap 95% intervals, and the probability that DRCORL improves on the method
(`benchmark.report.stats`, numpy/scipy; rliable is not installed). This module reads records only:
it never imports torch, an algorithm or the runner.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.atomic import atomic_write_text
from benchmark.errors import ReportError
from benchmark.report import stats
from benchmark.report.published import SOURCE, published_table
from benchmark.report.records import (
    Cell,
    algorithm_order,
    display_name,
    profile_settings,
    protocol_label,
    report_cells,
    task_order,
)

REFERENCE_ALGORITHM = "drcorl"
AVERAGED_LIMIT = 0.0
"""The cost limit of a cell averaged over its task's limits (a sentinel: real limits are > 0)."""
PUBLISHED_LABEL = "published"
MARK_DOUBTFUL = "†"
MARK_PROTOCOL = "‡"
MARK_DATA = "§"
_LATEX_MARKS = {
    # math-mode symbols: the text-mode ones need TS1 fonts a minimal TeX may lack
    MARK_DOUBTFUL: r"$^{\dagger}$",
    MARK_PROTOCOL: r"$^{\ddagger}$",
    MARK_DATA: r"$^{\S}$",
}


# --------------------------------------------------------------------------- formatting


def fmt_number(x: float, latex: bool = False) -> str:
    """Two decimals as in the paper; no '-0.00'; a LaTeX minus sign in LaTeX."""
    text = f"{x:.2f}"
    if text == "-0.00":
        text = "0.00"
    if latex and text.startswith("-"):
        text = "$-$" + text[1:]
    return text


def fmt_mean_std(mean: float, std: float, latex: bool = False) -> str:
    """'0.71 ± 0.05'; just the mean when the std is undefined (one seed)."""
    if std is None or math.isnan(std):
        return fmt_number(mean, latex)
    pm = r"\,$\pm$\," if latex else " ± "
    return f"{fmt_number(mean, latex)}{pm}{fmt_number(std, latex)}"


def fmt_interval(interval: stats.Interval, latex: bool = False) -> str:
    """'0.71 [0.65, 0.78]'."""
    lo, hi = fmt_number(interval.low, latex), fmt_number(interval.high, latex)
    return f"{fmt_number(interval.point, latex)} [{lo}, {hi}]"


def escape_latex(text: str) -> str:
    """Escape the LaTeX specials in free text (captions, names)."""
    specials = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
        "±": r"$\pm$",
        "≤": r"$\le$",
        "κ": r"$\kappa$",
        "↑": r"$\uparrow$",
        "↓": r"$\downarrow$",
        "−": "-",
        "–": "--",
        "×": r"$\times$",
    }
    specials.update(_LATEX_MARKS)
    return "".join(specials.get(ch, ch) for ch in text)


# --------------------------------------------------------------------------- table model


@dataclass
class Entry:
    """One (row, method) pair of the table: the reward and cost texts and how to style them."""

    reward: str
    cost: str
    reward_value: float
    cost_value: float
    reward_marks: str = ""
    cost_marks: str = ""
    bold: bool = False
    grey: bool = False


@dataclass
class Row:
    label: str
    task: str
    published: bool
    entries: dict[str, Entry] = field(default_factory=dict)


def _style_row(row: Row) -> None:
    """Bold the best reward among safe entries (at printed precision), grey the unsafe ones."""
    safe = [e for e in row.entries.values() if e.cost_value <= 1.0]
    best = max((round(e.reward_value, 2) for e in safe), default=None)
    for entry in row.entries.values():
        entry.grey = entry.cost_value > 1.0
        entry.bold = best is not None and not entry.grey and round(entry.reward_value, 2) == best


def _our_entry(cell: Cell, latex: bool) -> Entry:
    marks = (MARK_PROTOCOL if cell.other_protocol else "") + (MARK_DATA if cell.other_data else "")
    reward = fmt_mean_std(cell.reward_mean, cell.reward_std, latex)
    if cell.missing_seeds:
        reward += f" (n={cell.n_seeds})"
    return Entry(
        reward=reward,
        cost=fmt_mean_std(cell.cost_mean, cell.cost_std, latex),
        reward_value=cell.reward_mean,
        cost_value=cell.cost_mean,
        reward_marks=marks,
        cost_marks=marks,
    )


def _published_entry(row: pd.Series, latex: bool) -> Entry:
    reward_mark = cost_mark = ""
    if row["doubtful"]:
        text = f"{row['doubtful_reason']} {row.get('ocr_fix', '')}".lower()
        says_reward, says_cost = "reward" in text, "cost" in text
        reward_mark = MARK_DOUBTFUL if says_reward or not says_cost else ""
        cost_mark = MARK_DOUBTFUL if says_cost or not says_reward else ""
    return Entry(
        reward=fmt_number(float(row["reward"]), latex),
        cost=fmt_number(float(row["cost"]), latex),
        reward_value=float(row["reward"]),
        cost_value=float(row["cost"]),
        reward_marks=reward_mark,
        cost_marks=cost_mark,
    )


def build_rows(
    cells: list[Cell], published: pd.DataFrame | None, latex: bool
) -> tuple[list[Row], list[str]]:
    """The table's rows (ours, then published under it) and its method columns."""
    methods = algorithm_order(c.algorithm for c in cells)
    by_key = {(c.task, c.cost_limit, c.algorithm): c for c in cells}
    limits: dict[str, list[float]] = {}
    for cell in cells:
        limits.setdefault(cell.task, []).append(cell.cost_limit)
    rows = []
    for task in task_order(limits):
        several = len(set(limits[task])) > 1  # e.g. table_cost_limits: osrl
        for limit in sorted(set(limits[task])):
            label = f"{task} (κ={limit:g})" if several else task
            ours = Row(label=label, task=task, published=False)
            for algorithm in methods:
                if (task, limit, algorithm) in by_key:
                    ours.entries[algorithm] = _our_entry(by_key[(task, limit, algorithm)], latex)
            _style_row(ours)
            rows.append(ours)
            pub = _published_row(published, task, limit, methods, latex)
            if pub is not None:
                rows.append(pub)
    return rows, methods


def _published_row(
    published: pd.DataFrame | None, task: str, limit: float, methods: list[str], latex: bool
) -> Row | None:
    """The published values of a task, under our row at the published cost limit, and at the
    other limits a value may have been obtained at (`other_cost_limits`: CarRun's baselines,
    whose threshold the poster does not state)."""
    if published is None:
        return None
    at_limit = np.isclose(published["cost_limit"].astype(float), limit)
    if "other_cost_limits" in published:
        at_limit |= np.array(
            [
                any(math.isclose(x, limit) for x in others)
                for others in published["other_cost_limits"]
            ],
            dtype=bool,
        )
    theirs = published[
        (published["task"] == task) & published["algorithm"].isin(methods) & at_limit
    ]
    if theirs.empty:
        return None
    pub = Row(label=PUBLISHED_LABEL, task=task, published=True)
    for _, prow in theirs.iterrows():
        pub.entries[prow["algorithm"]] = _published_entry(prow, latex)
    _style_row(pub)
    return pub


# --------------------------------------------------------------------------- averaging


def average_over_limits(
    cells: list[Cell],
) -> tuple[list[Cell], dict[str, tuple[float, ...]], list[str]]:
    """OSRL's and CAPS's score: per (task, method) and seed, the mean over the task's cost
    limits; then mean ± std over seeds as any cell. Returns the averaged cells (cost limit
    `AVERAGED_LIMIT`), each task's averaged limits, and notes on what could not be averaged."""
    task_limits: dict[str, tuple[float, ...]] = {}
    groups: dict[tuple[str, str], list[Cell]] = {}
    for cell in cells:
        task_limits[cell.task] = tuple(sorted({*task_limits.get(cell.task, ()), cell.cost_limit}))
        groups.setdefault((cell.task, cell.algorithm), []).append(cell)
    out, notes = [], []
    for (task, algorithm), group in groups.items():
        limits = tuple(sorted(c.cost_limit for c in group))
        if limits != task_limits[task]:
            have = ", ".join(f"{x:g}" for x in limits)
            notes.append(
                f"{display_name(algorithm)} on {task}: records at cost limit(s) {have} only, "
                f"not all of {', '.join(f'{x:g}' for x in task_limits[task])}; not averaged, "
                "left out"
            )
            continue
        out.append(_averaged_cell(task, algorithm, group))
    return out, task_limits, notes


def _averaged_cell(task: str, algorithm: str, group: list[Cell]) -> Cell:
    if len({c.protocol for c in group}) > 1:
        raise ReportError(
            f"{display_name(algorithm)} on {task}: its cost limits were evaluated under "
            "different protocols; they cannot be averaged"
        )
    common = sorted(set.intersection(*(set(c.seeds) for c in group)))
    every = set().union(*(set(c.seeds) | set(c.missing_seeds) for c in group))

    def per_seed(which: str) -> np.ndarray:
        return np.array(
            [np.mean([getattr(c, which)[c.seeds.index(seed)] for c in group]) for seed in common]
        )

    first = group[0]
    return Cell(
        task=task,
        algorithm=algorithm,
        cost_limit=AVERAGED_LIMIT,
        seeds=tuple(common),
        reward=per_seed("reward"),
        cost=per_seed("cost"),
        protocol=first.protocol,
        data_source=first.data_source,
        data_sha256=first.data_sha256,
        missing_seeds=tuple(sorted(every - set(common))),
        other_protocol=any(c.other_protocol for c in group),
        other_data=any(c.other_data for c in group),
        data_failed=_union_failed(group),
    )


def _union_failed(cells: list[Cell]) -> tuple[str, ...] | None:
    """The criteria failed at any of the cells' cost limits; None when any cell's are unknown."""
    if any(c.data_failed is None for c in cells):
        return None
    return tuple(sorted({name for c in cells for name in c.data_failed}))


def data_criteria_note(cells: list[Cell]) -> str | None:
    """Which tasks' data fails docs/datasets.md (so their rows say little), or is unchecked."""
    per_task: dict[str, list[Cell]] = {}
    for cell in cells:
        per_task.setdefault(cell.task, []).append(cell)
    failed = {t: _union_failed(group) for t, group in per_task.items()}
    failing = [f"{t} ({', '.join(f)})" for t, f in failed.items() if f]
    unknown = [t for t, f in failed.items() if f is None]
    parts = []
    if failing:
        parts.append(
            "Data that fails the docs/datasets.md criteria (see its dataset card), so these "
            f"tasks' scores say little about the methods: {', '.join(failing)}."
        )
    if unknown:
        parts.append(
            f"Not checked against those criteria (records older than the check): "
            f"{', '.join(unknown)}."
        )
    return " ".join(parts) or None


# --------------------------------------------------------------------------- captions


def _range_text(values: list[int]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def _limits_text(per_task: dict[str, tuple[float, ...]] | dict[str, set]) -> str:
    """The most common set of limits, then the tasks that differ: `10; CarRun: 10, 30`."""
    common = Counter(tuple(sorted(v)) for v in per_task.values()).most_common(1)[0][0]
    return ", ".join(f"{x:g}" for x in common) + "".join(
        f"; {t}: {', '.join(f'{x:g}' for x in sorted(v))}"
        for t, v in per_task.items()
        if tuple(sorted(v)) != common
    )


def describe(
    cells: list[Cell],
    profile: str,
    with_published: bool,
    averaged: dict[str, tuple[float, ...]] | None = None,
) -> tuple[str, list[str]]:
    """The caption (one paragraph) and the footnotes that apply to this table. `averaged`:
    each task's cost limits when the cells are averages over them (`average_over_limits`)."""
    protocols = Counter(c.protocol for c in cells)
    main = protocols.most_common(1)[0][0]
    seeds = max(c.n_seeds + len(c.missing_seeds) for c in cells)  # what the cells should have
    episodes = _range_text([c.episodes for c in cells])
    per_task: dict[str, set] = {}
    for cell in cells:
        per_task.setdefault(cell.task, set()).add(cell.cost_limit)
    if averaged:
        shown = {t: v for t, v in averaged.items() if t in per_task}
        limit_text = (
            f"{_limits_text(shown)}. Averaging: each cell is, per seed, the mean over the task's "
            "cost limits (as OSRL and CAPS report their scores), then mean ± std over seeds"
        )
    else:
        limit_text = (
            f"{_limits_text(per_task)}. Averaging: none over cost limits (one limit per row; "
            "OSRL and CAPS average theirs over three)"
        )
    sources = Counter(c.data_source for c in cells)
    data_text = ", ".join(f"{s} ({n} cell{'s' if n > 1 else ''})" for s, n in sources.most_common())
    if len(sources) == 1:
        data_text = f"{next(iter(sources))} datasets"
    caption = (
        f"Normalised reward (R↑) and normalised cost (C↓), profile {profile}: mean ± std over "
        f"{seeds} seeds, each seed's value its mean over {episodes} evaluation episodes. "
        f"Protocol: {protocol_label(main)}. Cost limit κ per task: {limit_text}. "
        f"Data: {data_text}. Safe means mean normalised cost ≤ 1; bold: the highest reward "
        "among safe methods; grey: unsafe."
    )
    scales = sorted({c.budget_scale for c in cells})
    if scales != [1.0]:
        caption += (
            f" Budget scale: step counts × {', '.join(f'{x:g}' for x in scales)} of the "
            "profile's budget set (`--budget-scale`)."
        )
    notes = []
    short = [c for c in cells if c.missing_seeds]
    if short:
        notes.append(
            f"(n=k): {len(short)} cell(s) have only k of {seeds} seeds (runs missing or not "
            "finished); their mean covers those seeds only."
        )
    for protocol in protocols:
        if protocol != main:
            notes.append(
                f"{MARK_PROTOCOL} evaluated under another protocol: {protocol_label(protocol)}."
            )
    if any(c.other_data for c in cells):
        notes.append(
            f"{MARK_DATA} trained on another dataset than the other methods on that task "
            f"({', '.join(sorted({f'{c.data_source}' for c in cells if c.other_data}))})."
        )
    criteria = data_criteria_note(cells)
    if criteria:
        notes.append(criteria)
    if with_published:
        notes.append(
            f"The {PUBLISHED_LABEL} rows: {SOURCE}; their protocol differs (DRCORL: one seed, "
            "online checkpoint selection, cost C/(κ+0.1)); "
            f"{MARK_DOUBTFUL} doubtful value, see results/published/PROVENANCE.md."
        )
    return caption, notes


# --------------------------------------------------------------------------- aggregates


def aggregate(cells: list[Cell], reps: int = stats.DEFAULT_REPS, seed: int = 0) -> pd.DataFrame:
    """Per method: IQM reward/cost with 95% CIs and P(DRCORL better) on the shared tasks."""
    # strata are (task, cost limit): a task reported at several limits counts once per limit
    by_method: dict[str, dict[tuple, Cell]] = {}
    for cell in cells:
        by_method.setdefault(cell.algorithm, {})[(cell.task, cell.cost_limit)] = cell
    reference = by_method.get(REFERENCE_ALGORITHM, {})
    rows = []
    for algorithm in algorithm_order(by_method):
        mine = by_method[algorithm]
        tasks = sorted(mine)
        row = {
            "algorithm": algorithm,
            "tasks": len(tasks),
            "reward": stats.bootstrap_iqm([mine[t].reward for t in tasks], reps, seed=seed),
            "cost": stats.bootstrap_iqm([mine[t].cost for t in tasks], reps, seed=seed),
            "poi_reward": None,
            "poi_cost": None,
            "shared_tasks": 0,
        }
        shared = sorted(set(tasks) & set(reference))
        if algorithm != REFERENCE_ALGORITHM and shared:
            row["shared_tasks"] = len(shared)
            row["poi_reward"] = stats.bootstrap_poi(
                [reference[t].reward for t in shared],
                [mine[t].reward for t in shared],
                reps,
                seed=seed,
            )
            # lower cost is better: P(cost_DRCORL < cost_X) = P(-cost_DRCORL > -cost_X)
            row["poi_cost"] = stats.bootstrap_poi(
                [-reference[t].cost for t in shared],
                [-mine[t].cost for t in shared],
                reps,
                seed=seed,
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _aggregate_frame(agg: pd.DataFrame, latex: bool) -> pd.DataFrame:
    ref = display_name(REFERENCE_ALGORITHM)
    head = (r"R$\uparrow$", r"C$\downarrow$") if latex else ("R↑", "C↓")
    dash = "--" if latex else "–"
    out = pd.DataFrame(
        {
            "Tasks": agg["tasks"].astype(str),
            f"IQM {head[0]} [95% CI]": [fmt_interval(i, latex) for i in agg["reward"]],
            f"IQM {head[1]} [95% CI]": [fmt_interval(i, latex) for i in agg["cost"]],
            f"P({ref} higher {head[0][0]}) [95% CI]": [
                fmt_interval(i, latex) if i is not None else dash for i in agg["poi_reward"]
            ],
            f"P({ref} lower {head[1][0]}) [95% CI]": [
                fmt_interval(i, latex) if i is not None else dash for i in agg["poi_cost"]
            ],
        }
    )
    out.index = [display_name(a) for a in agg["algorithm"]]
    if latex:
        out.columns = [c.replace("%", r"\%") for c in out.columns]
    return out


def aggregate_caption(agg: pd.DataFrame, reps: int) -> str:
    has_ref = REFERENCE_ALGORITHM in set(agg["algorithm"])
    text = (
        "Aggregates across tasks (each at its table cost limit): interquartile mean (IQM) of all "
        "seeds of all tasks, with 95% stratified-bootstrap percentile intervals "
        f"({reps} resamples of seeds within tasks, RNG seed 0; numpy/scipy, as rliable computes "
        "them)."
    )
    if has_ref:
        text += (
            f" P({display_name(REFERENCE_ALGORITHM)} higher R): probability that a "
            f"{display_name(REFERENCE_ALGORITHM)} run has a higher normalised reward than a run "
            "of the method, averaged over the tasks both have (Mann-Whitney, ties count one "
            "half); P(lower C) likewise for the cost. Tasks differ between methods when a "
            "method lacks records; compare IQMs only over equal task sets."
        )
    return text


# --------------------------------------------------------------------------- rendering


def _entry_md(text: str, marks: str, entry: Entry) -> str:
    text = f"{text}{marks}"
    if entry.bold:
        return f"**{text}**"
    if entry.grey:
        return f"_{text}_"
    return text


def render_markdown(
    rows: list[Row], methods: list[str], caption: str, notes: list[str], agg_md: str
) -> str:
    header = ["Task"]
    for algorithm in methods:
        header += [f"{display_name(algorithm)} R↑", f"{display_name(algorithm)} C↓"]
    lines = [
        caption + " Unsafe cells are in italics here (grey in the LaTeX table).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join([":---"] + [":---:"] * (len(header) - 1)) + "|",
    ]
    for row in rows:
        cells = [row.label if not row.published else f"↳ {PUBLISHED_LABEL}"]
        for algorithm in methods:
            entry = row.entries.get(algorithm)
            if entry is None:
                cells += ["–", "–"]
                continue
            cells.append(_entry_md(entry.reward, entry.reward_marks, entry))
            cells.append(_entry_md(entry.cost, entry.cost_marks, entry))
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + [f"- {n}" for n in notes] + ["", agg_md]
    return "\n".join(lines).rstrip() + "\n"


def _cell_style(entry: Entry | None) -> str:
    if entry is None:
        return ""
    if entry.bold:
        return "textbf: --rwrap;"
    if entry.grey:
        return "color: {gray};"
    return ""


def _wrap_table(tabular: str, caption: str, label: str, star: bool) -> str:
    env = "table*" if star else "table"
    # shrink to the line width only when wider (\width is the natural width inside \resizebox)
    return (
        f"\\begin{{{env}}}[t]\n\\centering\n\\caption{{{caption}}}\n\\label{{{label}}}\n"
        "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n"
        f"{tabular.rstrip()}%\n}}\n\\end{{{env}}}\n"
    )


def _add_cmidrules(tabular: str, groups: int) -> str:
    """A \\cmidrule under each method's header (booktabs style)."""
    rules = "".join(f"\\cmidrule(lr){{{2 + 2 * i}-{3 + 2 * i}}}" for i in range(groups))
    head, sep, rest = tabular.partition("\\\\\n")
    return f"{head}{sep}{rules}\n{rest}"


def render_latex(
    rows: list[Row],
    methods: list[str],
    caption: str,
    notes: list[str],
    agg: pd.DataFrame,
    profile: str,
    reps: int,
) -> str:
    columns = pd.MultiIndex.from_tuples(
        [
            (escape_latex(display_name(a)), h)
            for a in methods
            for h in (r"R$\uparrow$", r"C$\downarrow$")
        ],
        names=["Task", ""],
    )
    values, styles, index = [], [], []
    for row in rows:
        index.append(
            r"\quad\textit{" + PUBLISHED_LABEL + "}" if row.published else escape_latex(row.label)
        )
        vals, stys = [], []
        for algorithm in methods:
            entry = row.entries.get(algorithm)
            if entry is None:
                vals += ["--", "--"]
            else:
                vals += [
                    entry.reward + escape_latex(entry.reward_marks),
                    entry.cost + escape_latex(entry.cost_marks),
                ]
            stys += [_cell_style(entry)] * 2
        values.append(vals)
        styles.append(stys)
    # Styler.apply needs a unique index: number the rows, then show the labels
    frame = pd.DataFrame(values, columns=columns)
    style_frame = pd.DataFrame(styles, columns=columns)
    styler = frame.style.apply(lambda _: style_frame, axis=None).relabel_index(
        [label.replace("{", "{{").replace("}", "}}") for label in index]  # str.format escapes
    )
    tabular = styler.to_latex(
        hrules=True, column_format="l" + "cc" * len(methods), multicol_align="c"
    )
    tabular = _add_cmidrules(tabular, len(methods))
    full_caption = escape_latex(" ".join([caption, *notes]))
    main = _wrap_table(tabular, full_caption, f"tab:results-{profile}", star=True)

    agg_frame = _aggregate_frame(agg, latex=True)
    agg_frame.index = [escape_latex(i) for i in agg_frame.index]
    agg_tabular = agg_frame.style.to_latex(
        hrules=True, column_format="l" + "c" * agg_frame.shape[1]
    )
    second = _wrap_table(
        agg_tabular,
        escape_latex(aggregate_caption(agg, reps)),
        f"tab:aggregates-{profile}",
        star=True,
    )
    preamble = (
        f"% Generated by `python -m benchmark table --profile {profile}` from the run records.\n"
        "% Needs \\usepackage{booktabs}, \\usepackage{xcolor} and \\usepackage{graphicx}.\n"
    )
    return preamble + main + "\n" + second


def aggregate_markdown(agg: pd.DataFrame, reps: int) -> str:
    frame = _aggregate_frame(agg, latex=False)
    header = ["Method", *frame.columns]
    lines = [
        aggregate_caption(agg, reps),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join([":---"] + [":---:"] * (len(header) - 1)) + "|",
    ]
    for name, row in frame.iterrows():
        lines.append("| " + " | ".join([str(name), *row.astype(str)]) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- entry points


@dataclass
class TableReport:
    cells: list[Cell]
    notes: list[str]
    markdown: str
    latex: str
    cells_frame: pd.DataFrame
    aggregates: pd.DataFrame


def _cells_frame(
    cells: list[Cell], averaged: dict[str, tuple[float, ...]] | None = None
) -> pd.DataFrame:
    averaged = averaged or {}
    return pd.DataFrame(
        [
            {
                "task": c.task,
                "algorithm": c.algorithm,
                "cost_limit": float("nan") if c.task in averaged else c.cost_limit,
                "cost_limits_averaged": ";".join(f"{x:g}" for x in averaged.get(c.task, ())),
                "n_seeds": c.n_seeds,
                "seeds": " ".join(map(str, c.seeds)),
                "missing_seeds": " ".join(map(str, c.missing_seeds)),
                "reward_mean": c.reward_mean,
                "reward_std": c.reward_std,
                "cost_mean": c.cost_mean,
                "cost_std": c.cost_std,
                "safe": c.safe,
                "protocol": protocol_label(c.protocol),
                "data_source": c.data_source,
                "data_sha256": c.data_sha256,
            }
            for c in cells
        ]
    )


def make_table(
    results_dir: Path,
    profile: str,
    with_published: bool = True,
    reps: int = stats.DEFAULT_REPS,
    skip_invalid: bool = False,
) -> TableReport:
    """Build every output of `table` in memory (no files written)."""
    cells, notes, _ = report_cells(
        results_dir, profile, table_limits=True, skip_invalid=skip_invalid
    )
    if not cells:
        raise ReportError(
            f"profile {profile!r} has records, but none at a task's table cost limit; "
            "see `python -m benchmark figure-cost-limits` for other limits"
        )
    averaged = None
    if profile_settings(profile).average_cost_limits:
        cells, averaged, left_out = average_over_limits(cells)
        notes = notes + left_out
        if not cells:
            raise ReportError(f"profile {profile!r}: no method has records at all its limits")
    published = published_table() if with_published else None
    rows_md, methods = build_rows(cells, published, latex=False)
    rows_tex, _ = build_rows(cells, published, latex=True)
    caption, footnotes = describe(cells, profile, any(r.published for r in rows_md), averaged)
    footnotes = footnotes + notes
    agg = aggregate(cells, reps=reps)
    markdown = render_markdown(rows_md, methods, caption, footnotes, aggregate_markdown(agg, reps))
    latex = render_latex(rows_tex, methods, caption, footnotes, agg, profile, reps)
    return TableReport(cells, footnotes, markdown, latex, _cells_frame(cells, averaged), agg)


def write_table(report: TableReport, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {
        "table.tex": report.latex,
        "table.md": report.markdown,
        "table.csv": report.cells_frame.to_csv(index=False),
    }
    paths = []
    for name, text in outputs.items():
        path = out_dir / name
        atomic_write_text(path, text)  # a reader never sees half a table
        paths.append(path)
    return paths


def cli_table(args) -> int:
    from benchmark.paths import report_out_dir, results_dir
    from benchmark.profiles import profile_name

    profile = profile_name(args.profile)
    results = Path(args.results) if args.results else results_dir()
    report = make_table(
        results,
        profile,
        with_published=not args.no_published,
        skip_invalid=args.skip_invalid,
    )
    paths = write_table(report, report_out_dir(args.out, args.results, profile))
    print(report.markdown)
    for path in paths:
        print(f"wrote {path}")
    return 0
