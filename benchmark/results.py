"""Run records: the schema, building a record, atomic writes, validation on load, and
records -> DataFrame.

A record on disk always means a finished run: it is written to a temporary file in the same
folder and `os.replace`d into place as the run's very last step (benchmark.atomic).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.atomic import atomic_write_text
from benchmark.errors import RecordError
from benchmark.protocols import get_protocol

if TYPE_CHECKING:  # the report reads records and must not import torch
    from benchmark.runner.plan import RunPlan


SCHEMA_VERSION = 1

# field -> type(s) it must have; nested dicts are checked by `_check_metrics` etc.
TOP_LEVEL_FIELDS: dict[str, type | tuple[type, ...]] = {
    "schema_version": int,
    "id": str,
    "algorithm": str,
    "task": str,
    "cost_limit": (int, float),
    "seed": int,
    "profile": str,
    "protocol": dict,
    "config": dict,
    "dataset": dict,
    "code": dict,
    "packages": dict,
    "hardware": dict,
    "timing": dict,
    "metrics": dict,
    "created": str,
}
OPTIONAL_FIELDS: dict[str, type | tuple[type, ...]] = {
    "train_id": str,
    "online_env_steps": int,
    "selected": dict,
    "algorithm_summary": dict,
}
"""Checked when present (records written before they existed lack them)."""
METRIC_NAMES = ("normalised_reward", "normalised_cost", "return", "cost")
SELECTED_FIELDS = ("online", "fixed_episodes", "offered_at")
PROTOCOL_FIELDS = ("name", "cost_normalisation", "eval_episodes", "online")
DATASET_FIELDS = ("source", "sha256")


def records_dir(results: Path, profile: str) -> Path:
    return Path(results) / "runs" / profile


def record_path(results: Path, profile: str, run_id: str) -> Path:
    return records_dir(results, profile) / f"{run_id}.json"


def write_record(results: Path, record: dict) -> Path:
    validate_record(record)
    path = record_path(results, record["profile"], record["id"])
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True))
    return path


def _check_metrics(metrics: dict, where: str) -> None:
    for name in METRIC_NAMES:
        block = metrics.get(name)
        if not isinstance(block, dict):
            raise RecordError(f"{where}: metrics.{name} missing")
        for key in ("mean", "std", "per_episode"):
            if key not in block:
                raise RecordError(f"{where}: metrics.{name}.{key} missing")
        values = [block["mean"], block["std"], *block["per_episode"]]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise RecordError(f"{where}: metrics.{name} holds a non-finite value")
        if not block["per_episode"]:
            raise RecordError(f"{where}: metrics.{name}.per_episode is empty")


def _check_algorithm_summary(summary: dict, where: str) -> None:
    """`algorithm_summary`: what the algorithm says about its own run (e.g. DRCORL's final
    cost estimate and branch fractions), flat names to finite numbers."""
    for key, value in summary.items():
        if not isinstance(key, str) or isinstance(value, bool):
            raise RecordError(f"{where}: algorithm_summary.{key} is not a number")
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RecordError(f"{where}: algorithm_summary.{key} is not a finite number")


def validate_record(record: Any, where: str = "record") -> dict:
    """Raise `RecordError` naming the first problem; return the record when valid."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: not a JSON object")
    for field, kind in TOP_LEVEL_FIELDS.items():
        if field not in record:
            raise RecordError(f"{where}: missing field {field!r}")
        if not isinstance(record[field], kind) or isinstance(record[field], bool):
            raise RecordError(f"{where}: field {field!r} has type {type(record[field]).__name__}")
    if record["schema_version"] != SCHEMA_VERSION:
        raise RecordError(f"{where}: schema_version {record['schema_version']} != {SCHEMA_VERSION}")
    for key in PROTOCOL_FIELDS:
        if key not in record["protocol"]:
            raise RecordError(f"{where}: protocol.{key} missing")
    for key in DATASET_FIELDS:
        if key not in record["dataset"]:
            raise RecordError(f"{where}: dataset.{key} missing")
    for field, kind in OPTIONAL_FIELDS.items():
        if field in record and (
            not isinstance(record[field], kind) or isinstance(record[field], bool)
        ):
            raise RecordError(f"{where}: field {field!r} has type {type(record[field]).__name__}")
    _check_metrics(record["metrics"], where)
    _check_algorithm_summary(record.get("algorithm_summary", {}), where)
    if "selected" in record:
        for key in SELECTED_FIELDS:
            if key not in record["selected"]:
                raise RecordError(f"{where}: selected.{key} missing")
        _check_metrics(record["selected"]["fixed_episodes"], f"{where} (selected)")
    return record


# ----------------------------------------------------------------------------- building


def _dataset_block(plan: RunPlan, cost_limit: float) -> dict:
    from benchmark.data.card import dataset_card, failed_criteria

    card = dataset_card(plan.dataset, plan.task, cost_limit)
    keep = (
        "n_transitions",
        "n_trajectories",
        "best_safe_return_normalised",
        "fraction_safe",
        "return_range",
        "cost_range",
    )
    return {
        "source": plan.dataset.source,
        "path": plan.dataset.path,
        "sha256": plan.dataset.sha256,
        # `sha256` is the hash of the arrays (the run's identity); this one is what
        # `sha256sum FILE` prints (None for data made in memory: toy, random)
        "file_sha256": getattr(plan.dataset, "file_sha256", None),
        "card": {k: card[k] for k in keep if k in card},
        # docs/datasets.md at this record's cost limit: [] means the data meets all four
        "failed_criteria": failed_criteria(card),
    }


def build_record(
    plan: RunPlan,
    cost_limit: float,
    metrics: dict,
    timing: dict,
    provenance: dict,
    online_env_steps: int = 0,
    selected: dict | None = None,
    algorithm_summary: dict[str, float] | None = None,
    diagnostics: tuple[list[dict], int] | None = None,
) -> dict:
    """The record of one evaluated cost limit of a finished run.

    `metrics` are the final iterate's on the fixed episodes; `selected` (when the algorithm
    offered a candidate) holds the candidate's own online score, its metrics on the same fixed
    episodes and when it was offered; `provenance` the code/packages/hardware blocks;
    `algorithm_summary` what the algorithm's optional `summary()` returned after training;
    `diagnostics` the (evaluations, their environment steps) of profile `diagnostic_evals`,
    kept apart from `online_env_steps` because they never reached the algorithm."""
    protocol = get_protocol(plan.protocol)
    record = {
        "schema_version": SCHEMA_VERSION,
        "id": plan.record_ids[cost_limit],
        "train_id": plan.train_id,
        "algorithm": plan.entry.name,
        "task": plan.task.name,
        "cost_limit": float(cost_limit),
        "seed": plan.spec.seed,
        "profile": plan.profile.name,
        "protocol": {
            "name": protocol.name,
            "cost_normalisation": protocol.cost_normalisation(plan.entry.name),
            "eval_episodes": plan.profile.eval_episodes,
            "online": online_env_steps > 0,
            "final_iterate": True,
        },
        "config": plan.config,
        "dataset": _dataset_block(plan, cost_limit),
        **provenance,
        "timing": timing,
        "metrics": metrics,
        "online_env_steps": int(online_env_steps),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if selected is not None:
        record["selected"] = selected
    if plan.budget_scale != 1:
        record["budget_scale"] = float(plan.budget_scale)
    if diagnostics and diagnostics[0]:
        record["diagnostics"] = [dict(d) for d in diagnostics[0]]
        record["diagnostic_env_steps"] = int(diagnostics[1])
    if algorithm_summary:
        record["algorithm_summary"] = {k: float(v) for k, v in algorithm_summary.items()}
    return record


@dataclass
class LoadedRecords:
    records: list[dict]
    invalid: list[tuple[Path, str]]
    """Files that failed to parse or validate, with the reason: reported, never used."""


def read_records(results: Path, profile: str | None = None) -> LoadedRecords:
    """All records of a profile (or of every profile), split into valid and invalid."""
    root = Path(results) / "runs"
    pattern = f"{profile}/*.json" if profile else "*/*.json"
    valid, invalid = [], []
    for path in sorted(root.glob(pattern)):
        try:
            record = json.loads(path.read_text())
            valid.append(validate_record(record, where=str(path)))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            invalid.append((path, f"not valid JSON: {error}"))
        except RecordError as error:
            invalid.append((path, str(error)))
    return LoadedRecords(valid, invalid)


def load_record(path: Path) -> dict | None:
    """The record at `path` if it exists and validates, else None."""
    try:
        return validate_record(json.loads(Path(path).read_text()), where=str(path))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecordError):
        return None


def records_frame(records: list[dict]):
    """One row per record: identity columns plus the headline metrics."""
    import pandas as pd

    rows = []
    for r in records:
        m = r["metrics"]
        rows.append(
            {
                "id": r["id"],
                "algorithm": r["algorithm"],
                "task": r["task"],
                "cost_limit": float(r["cost_limit"]),
                "seed": r["seed"],
                "profile": r["profile"],
                "protocol": r["protocol"]["name"],
                "cost_normalisation": r["protocol"]["cost_normalisation"],
                "eval_episodes": r["protocol"]["eval_episodes"],
                "online": r["protocol"]["online"],
                "data_source": r["dataset"]["source"],
                "dataset_sha256": r["dataset"]["sha256"],
                # None: a record from before the field (its data's criteria were not recorded)
                "data_failed": (
                    None
                    if "failed_criteria" not in r["dataset"]
                    else tuple(r["dataset"]["failed_criteria"])
                ),
                "reward": m["normalised_reward"]["mean"],
                "reward_std": m["normalised_reward"]["std"],
                "cost": m["normalised_cost"]["mean"],
                "cost_std": m["normalised_cost"]["std"],
                "return": m["return"]["mean"],
                "raw_cost": m["cost"]["mean"],
                "seconds": r["timing"].get("total", float("nan")),
                # records from before `cpu_seconds`: their wall time (one thread per run)
                "cpu_seconds": r["timing"].get("cpu_seconds", r["timing"].get("total")),
                "budget_scale": float(r.get("budget_scale", 1.0)),
            }
        )
    return pd.DataFrame(rows)


def load_records(results: Path, profile: str | None = None):
    """Records of a profile as a DataFrame, plus the list of invalid files (path, reason)."""
    loaded = read_records(results, profile)
    return records_frame(loaded.records), loaded.invalid
