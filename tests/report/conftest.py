"""Synthetic run records in the shape `benchmark/results.py` writes, and a fixed golden set.

The helpers are handed to tests as fixtures (`make_record`, `write_record`, `write_golden`,
`protocol`, `report_script`): the suite runs pytest with --import-mode=importlib, so test
files cannot import helpers from this folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

PROTOCOL = {"name": "honest", "cost_normalisation": "C/kappa", "eval_episodes": 20, "online": False}

# (task, algorithm, cost limit) -> (per-seed normalised rewards, per-seed normalised costs)
GOLDEN: dict[tuple[str, str, float], tuple[list[float], list[float]]] = {
    # CarGoal1: DRCORL is the best safe method (bold), CPQ is unsafe (grey)
    ("CarGoal1", "bc_safe", 10.0): ([0.40, 0.42, 0.44], [0.5, 0.6, 0.7]),
    ("CarGoal1", "cpq", 10.0): ([0.80, 0.90, 1.00], [1.5, 2.0, 2.5]),
    ("CarGoal1", "drcorl", 10.0): ([0.70, 0.75, 0.80], [0.2, 0.3, 0.4]),
    # HalfCheetahVelocity: BC-Safe unsafe (published safe: a flip), CPQ safe (published
    # unsafe: a flip), CPQ and DRCORL tie at 0.65 (both bold)
    ("HalfCheetahVelocity", "bc_safe", 10.0): ([0.90, 0.95, 1.00], [1.2, 1.4, 1.6]),
    ("HalfCheetahVelocity", "cpq", 10.0): ([0.60, 0.65, 0.70], [0.1, 0.2, 0.3]),
    ("HalfCheetahVelocity", "drcorl", 10.0): ([0.64, 0.65, 0.66], [0.5, 0.5, 0.5]),
    # other limits: ignored by the table, used by the figure
    ("HalfCheetahVelocity", "drcorl", 20.0): ([0.80, 0.82, 0.84], [0.7, 0.9, 1.1]),
    ("HalfCheetahVelocity", "drcorl", 30.0): ([0.85, 0.88, 0.91], [0.4, 0.6, 0.8]),
    ("HalfCheetahVelocity", "cpq", 20.0): ([0.30, 0.35, 0.40], [0.2, 0.3, 0.4]),
    # ToyVelocity: not published; every method unsafe (nothing bold)
    ("ToyVelocity", "bc_safe", 10.0): ([0.50, 0.50, 0.50], [3.0, 3.0, 3.0]),
    ("ToyVelocity", "drcorl", 10.0): ([0.20, 0.30, 0.40], [1.05, 1.10, 1.15]),
}


def _make_record(
    algorithm: str,
    task: str,
    cost_limit: float,
    seed: int,
    reward: float,
    cost: float,
    profile: str = "golden",
    protocol: dict | None = None,
    source: str = "toy",
    sha256: str | None = None,
    config: dict | None = None,
    episodes: int = 20,
) -> dict:
    protocol = dict(PROTOCOL if protocol is None else protocol)
    sha256 = sha256 or hashlib.sha256(f"{source}:{task}".encode()).hexdigest()
    config = config or {"steps": 100}
    key = json.dumps([algorithm, task, cost_limit, seed, protocol, sha256, config], sort_keys=True)
    run_id = hashlib.sha256(key.encode()).hexdigest()[:16]

    def metric(value: float) -> dict:
        return {"mean": value, "std": 0.0, "per_episode": [value] * episodes}

    return {
        "schema_version": 1,
        "id": run_id,
        "algorithm": algorithm,
        "task": task,
        "cost_limit": cost_limit,
        "seed": seed,
        "profile": profile,
        "protocol": protocol,
        "config": config,
        "dataset": {
            "source": source,
            "path": None,
            "sha256": sha256,
            "card": {},
            "failed_criteria": [],
        },
        "code": {"git_commit": "0" * 40, "dirty": False},
        "packages": {},
        "hardware": {"device": "cpu"},
        "timing": {"total": 1.0},
        "metrics": {
            "normalised_reward": metric(reward),
            "normalised_cost": metric(cost),
            "return": metric(reward * 100),
            "cost": metric(cost * cost_limit),
        },
        "created": "2026-11-21T06:00:00Z",
    }


def _write_record(results: Path, record: dict) -> Path:
    folder = results / "runs" / record["profile"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record['id']}.json"
    path.write_text(json.dumps(record))
    return path


def _write_golden(results: Path, profile: str = "golden", skip=()) -> Path:
    for (task, algorithm, limit), (rewards, costs) in GOLDEN.items():
        for seed, (reward, cost) in enumerate(zip(rewards, costs)):
            if (task, algorithm, limit, seed) in skip:
                continue
            _write_record(
                results, _make_record(algorithm, task, limit, seed, reward, cost, profile)
            )
    return results


@pytest.fixture
def make_record():
    return _make_record


@pytest.fixture
def write_record():
    return _write_record


@pytest.fixture
def write_golden():
    return _write_golden


@pytest.fixture
def protocol() -> dict:
    return dict(PROTOCOL)


@pytest.fixture
def golden_results(tmp_path: Path) -> Path:
    return _write_golden(tmp_path / "results")


@pytest.fixture
def reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "reports"
    monkeypatch.setenv("BENCHMARK_REPORTS_DIR", str(out))
    return out


@pytest.fixture(scope="session")
def report_script():
    """Import one of the reports' own scripts (`reports/<folder>/summarise.py`) as a module."""

    def load(folder: str, name: str = "summarise.py"):
        path = Path(__file__).resolve().parents[2] / "reports" / folder / name
        spec = importlib.util.spec_from_file_location(f"{folder}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
