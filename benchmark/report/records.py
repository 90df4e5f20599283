"""Run records -> report cells: reading, grouping, and refusing what must not be averaged.

A *cell* is (task, algorithm, cost limit): the runs of one method on one task at one threshold, one
record per seed. Each seed contributes one value, its mean over evaluation episodes; the cell shows
the mean and spread over seeds.

What is refused and what is labelled (never silently averaged):

- **one cell mixing evaluation protocols** (protocol name, cost normalisation, number of episodes,
  online/offline) -> `ReportError`: such numbers mean different things and have no common mean;
- **one cell mixing datasets** (data source or dataset sha256) -> `ReportError`, same reason;
- **two records for the same seed in one cell** (different run ids: different configs) ->
  `ReportError`, since picking one would hide the other;
- **a cell with fewer seeds than the report's other cells** (or than the profile asks for) ->
  labelled (`Cell.missing_seeds`), because a sweep in progress is normal and the numbers are still
  right for the seeds they cover; the table marks the cell and the caption says so;
- **different protocols or data sources in different cells** of one report -> labelled per cell
  against the report's most common protocol / the task's most common source.

Reading and validating records is `benchmark.results`'; this module only groups them.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import ReportError, UnknownTaskError
from benchmark.registry import ALGORITHMS, display_name

SAFE_COST = 1.0
"""A cell is safe when its mean normalised cost is at most this (the DRCORL/DSRL convention)."""

# --------------------------------------------------------------------------- reading


def runs_dir(results_dir: Path, profile: str) -> Path:
    return Path(results_dir) / "runs" / profile


def load_records(
    results_dir: Path, profile: str, skip_invalid: bool = False
) -> tuple[pd.DataFrame, list[str]]:
    """Every valid record of a profile as a DataFrame, and the notes a report must print.

    Reading and validation are `benchmark.results`'. An unreadable or invalid record file is a
    ReportError that lists them all: a report must not lose a method's column without a word.
    With `skip_invalid` they are left out, and the returned note says which (for the caption).
    """
    from benchmark.paths import results_flag
    from benchmark.results import load_records as load_validated

    folder = runs_dir(results_dir, profile)
    flag = results_flag(results_dir)
    frame, invalid = load_validated(Path(results_dir), profile)
    listing = "; ".join(f"{path}: {reason}" for path, reason in invalid)
    if invalid and not skip_invalid:
        raise ReportError(
            f"{len(invalid)} CORRUPT run record(s) in {folder} ({listing}); delete or rerun "
            f"them (`python -m benchmark status --profile {profile}{flag}` lists them), or pass "
            f"--skip-invalid to report without them"
        )
    notes = []
    if invalid:
        names = ", ".join(Path(path).name for path, _ in invalid)
        notes.append(f"{len(invalid)} invalid record file(s) skipped (--skip-invalid): {names}.")
        print(f"warning: skipping invalid run record(s): {listing}", file=sys.stderr)
    if frame.empty:
        from benchmark.profiles import profile_path

        profile_path(profile)  # an unknown profile: say so, rather than suggest running it
        found = f" ({len(invalid)} invalid file(s), listed above)" if invalid else ""
        raise ReportError(
            f"no run records in {folder}{found}; run "
            + (f"`make table PROFILE={profile}` (or " if not flag else "")
            + f"`python -m benchmark sweep --profile {profile}{flag} --wait`"
            + (")" if not flag else "")
            + " first"
        )
    frame = frame.rename(columns={"dataset_sha256": "data_sha256"})
    frame["data_sha256"] = frame["data_sha256"].fillna("").astype(str)
    frame["cost_limit"] = frame["cost_limit"].astype(float)
    wrong = frame[frame["profile"] != profile]
    if not wrong.empty:
        raise ReportError(
            f"record {wrong['id'].iloc[0]} of profile {wrong['profile'].iloc[0]!r} is inside "
            f"{folder}; move it to its own profile folder"
        )
    return frame, notes


@dataclass(frozen=True)
class ProfileReportSettings:
    """What a profile's YAML says about reporting (read here: `benchmark.profiles` needs torch)."""

    seeds: tuple[int, ...] | None = None
    table_cost_limits: object = "drcorl"
    average_cost_limits: bool = False
    tasks: tuple[str, ...] = ()
    algorithms: tuple[str, ...] = ()


def profile_settings(profile: str) -> ProfileReportSettings:
    """`seeds` and `table_cost_limits` of a built-in profile; defaults for any other name."""
    from benchmark.errors import ConfigError
    from benchmark.profiles import load_profile

    try:
        loaded = load_profile(profile)
    except ConfigError:
        return ProfileReportSettings()
    return ProfileReportSettings(
        seeds=loaded.seeds,
        table_cost_limits=loaded.table_cost_limits,
        average_cost_limits=loaded.average_cost_limits,
        tasks=loaded.tasks,
        algorithms=loaded.algorithms,
    )


# --------------------------------------------------------------------------- names


def algorithm_order(names: Iterable[str]) -> list[str]:
    """Registry order (the paper's column order), unknown algorithms last, alphabetically."""
    names = set(names)
    known = [a for a in ALGORITHMS if a in names]
    return known + sorted(names - set(known))


def task_order(names: Iterable[str]) -> list[str]:
    """The task registry's order (the paper's row order), unknown tasks last."""
    from benchmark.tasks import ALL_TASKS

    names = set(names)
    known = [t for t in ALL_TASKS if t in names]
    return known + sorted(names - set(known))


def table_cost_limits(task: str, limits_present: Iterable[float], spec: object = "drcorl"):
    """The cost limit(s) a task is reported at in the table, as the profile says
    (`Profile.table_limits_for`; `spec` is a profile's `table_cost_limits` value: `drcorl`,
    `osrl`, numbers, or a mapping task -> one of those with an optional `default`)."""
    from benchmark.errors import ConfigError
    from benchmark.profiles import Profile
    from benchmark.tasks import get_task

    asked = Profile("report", "", "honest", "auto", (), (), (), "drcorl", table_cost_limits=spec)
    try:
        found = get_task(task)
    except UnknownTaskError:
        present = sorted(set(limits_present))
        if len(present) == 1:
            return (float(present[0]),)
        raise ReportError(
            f"task {task!r} is not in the task registry and has records at several cost limits "
            f"{present}; the table cannot tell which one to report"
        ) from None
    try:
        return asked.table_limits_for(found)
    except ConfigError as error:
        raise ReportError(f"bad table_cost_limits: {error}") from None


def protocol_label(protocol: tuple) -> str:
    name, normalisation, episodes, online = protocol
    mode = "online" if online else "offline"
    return f"{name} ({mode}, {episodes} episodes, cost {normalisation})"


# --------------------------------------------------------------------------- cells


@dataclass(frozen=True)
class Cell:
    """The runs of one algorithm on one task at one cost limit: one value per seed."""

    task: str
    algorithm: str
    cost_limit: float
    seeds: tuple[int, ...]
    reward: np.ndarray = field(repr=False)
    """Per seed: the mean normalised reward over that seed's evaluation episodes."""
    cost: np.ndarray = field(repr=False)
    protocol: tuple = ()
    """(name, cost normalisation, evaluation episodes, online)."""
    data_source: str = ""
    data_sha256: str = ""
    data_failed: tuple[str, ...] | None = ()
    """The docs/datasets.md criteria the cell's data fails at its cost limit (None: unknown)."""
    missing_seeds: tuple[int, ...] = ()
    budget_scale: float = 1.0
    """The step counts' multiple of the profile's budget set (`--budget-scale`)."""
    """Seeds other cells of the report (or the profile) have and this one lacks: labelled."""
    other_protocol: bool = False
    """True when this cell's protocol differs from the report's most common one: labelled."""
    other_data: bool = False
    """True when this cell's dataset differs from the task's most common one: labelled."""

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    @property
    def reward_mean(self) -> float:
        return float(np.mean(self.reward))

    @property
    def cost_mean(self) -> float:
        return float(np.mean(self.cost))

    @property
    def reward_std(self) -> float:
        """Sample std over seeds (ddof=1); NaN with one seed."""
        return _std(self.reward)

    @property
    def cost_std(self) -> float:
        return _std(self.cost)

    @property
    def reward_se(self) -> float:
        return self.reward_std / np.sqrt(self.n_seeds)

    @property
    def cost_se(self) -> float:
        return self.cost_std / np.sqrt(self.n_seeds)

    @property
    def safe(self) -> bool:
        return self.cost_mean <= SAFE_COST

    @property
    def episodes(self) -> int:
        return int(self.protocol[2]) if self.protocol else -1


def _std(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def _cell_name(task: str, algorithm: str, limit: float) -> str:
    return f"{display_name(algorithm)} on {task} at cost limit {limit:g}"


def _one_cell(key: tuple, group: pd.DataFrame) -> Cell:
    task, algorithm, limit = key
    name = _cell_name(task, algorithm, limit)
    protocols = sorted(
        set(
            zip(
                group["protocol"],
                group["cost_normalisation"],
                group["eval_episodes"],
                group["online"],
            )
        )
    )
    if len(protocols) > 1:
        labels = "; ".join(protocol_label(p) for p in protocols)
        raise ReportError(
            f"{name}: records mix evaluation protocols ({labels}); they cannot be averaged. "
            "Keep one protocol per profile (move or delete the other records)."
        )
    datasets = sorted(set(zip(group["data_source"], group["data_sha256"])))
    if len(datasets) > 1:
        labels = "; ".join(f"{s} sha256 {h[:12] or '?'}" for s, h in datasets)
        raise ReportError(
            f"{name}: records mix datasets ({labels}); they cannot be averaged. "
            "Rerun every seed on one dataset (move or delete the other records)."
        )
    scales = sorted(set(group["budget_scale"])) if "budget_scale" in group else [1.0]
    if len(scales) > 1:
        raise ReportError(
            f"{name}: records at budget scales {', '.join(f'x{s:g}' for s in scales)}; a table "
            "cell is one budget (draw the scales with `python -m benchmark figure-budget`)"
        )
    counts = group["seed"].value_counts()
    if (counts > 1).any():
        seed = int(counts[counts > 1].index[0])
        ids = ", ".join(group.loc[group["seed"] == seed, "id"].astype(str))
        raise ReportError(
            f"{name}: {int(counts[seed])} records for seed {seed} (ids {ids}), i.e. different "
            "configs; delete the stale ones (or use another profile for the variant)."
        )
    group = group.sort_values("seed")
    return Cell(
        task=task,
        algorithm=algorithm,
        cost_limit=float(limit),
        seeds=tuple(int(s) for s in group["seed"]),
        reward=group["reward"].to_numpy(float),
        cost=group["cost"].to_numpy(float),
        protocol=protocols[0],
        data_source=datasets[0][0],
        data_sha256=datasets[0][1],
        data_failed=_data_failed(group),
        budget_scale=float(scales[0]),
    )


def _data_failed(group) -> tuple[str, ...] | None:
    """The failed criteria of a cell's (single) dataset; None when no record says."""
    if "data_failed" not in group:
        return ()
    known = [v for v in group["data_failed"] if v is not None]
    return tuple(known[0]) if known else None


def build_cells(records: pd.DataFrame, expected_seeds: Iterable[int] | None = None) -> list[Cell]:
    """Group records into cells; refuse mixed cells; label short and off-protocol cells."""
    if records.empty:
        return []
    cells = [
        _one_cell(key, group)
        for key, group in records.groupby(["task", "algorithm", "cost_limit"], sort=True)
    ]
    expected = set(expected_seeds or ())
    for cell in cells:
        expected |= set(cell.seeds)
    main_protocol = Counter(c.protocol for c in cells).most_common(1)[0][0]
    task_data: dict[str, tuple] = {}
    for task in {c.task for c in cells}:
        counts = Counter((c.data_source, c.data_sha256) for c in cells if c.task == task)
        task_data[task] = counts.most_common(1)[0][0]
    out = []
    for cell in cells:
        out.append(
            replace(
                cell,
                missing_seeds=tuple(sorted(expected - set(cell.seeds))),
                other_protocol=cell.protocol != main_protocol,
                other_data=(cell.data_source, cell.data_sha256) != task_data[cell.task],
            )
        )
    return out


def select_table_limits(
    records: pd.DataFrame, spec: object = "drcorl"
) -> tuple[pd.DataFrame, list[str]]:
    """Keep each task's records at its table cost limit(s); say what was left out."""
    keep = []
    notes = []
    for task, group in records.groupby("task", sort=False):
        limits = table_cost_limits(task, group["cost_limit"], spec)
        chosen = group[np.isclose(group["cost_limit"].to_numpy()[:, None], limits).any(axis=1)]
        others = sorted(set(group["cost_limit"]) - set(chosen["cost_limit"]))
        if others:
            shown = ", ".join(f"{x:g}" for x in limits)
            notes.append(
                f"{task}: records at cost limits {', '.join(f'{x:g}' for x in others)} are not "
                f"in the table (it reports limit {shown}; see figure-cost-limits)"
            )
        keep.append(chosen)
    return pd.concat(keep) if keep else records.iloc[:0], notes


def report_cells(
    results_dir: Path, profile: str, *, table_limits: bool, skip_invalid: bool = False
) -> tuple[list[Cell], list[str], pd.DataFrame]:
    """Load a profile's records and build its cells (only the table's cost limits if asked)."""
    records, notes = load_records(results_dir, profile, skip_invalid)
    settings = profile_settings(profile)
    if table_limits:
        records, limit_notes = select_table_limits(records, settings.table_cost_limits)
        notes += limit_notes
    cells = build_cells(records, expected_seeds=settings.seeds)
    missing = missing_cells(cells, settings)
    if missing:
        notes.append(
            f"Not in this table (no record yet): {len(missing)} of the profile's "
            f"{len(settings.tasks) * len(settings.algorithms)} (task, method) cells: "
            + "; ".join(f"{display_name(a)} on {t}" for t, a in missing)
            + "."
        )
    return cells, notes, records


def missing_cells(cells: list[Cell], settings: ProfileReportSettings) -> list[tuple[str, str]]:
    """(task, algorithm) pairs of the profile that no cell covers."""
    have = {(c.task, c.algorithm) for c in cells}
    return [(t, a) for t in settings.tasks for a in settings.algorithms if (t, a) not in have]
