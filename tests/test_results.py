from __future__ import annotations

import copy
import json

import pytest

from benchmark.errors import RecordError
from benchmark.results import (
    SCHEMA_VERSION,
    atomic_write_text,
    load_records,
    read_records,
    validate_record,
    write_record,
)


def make_record(**changes) -> dict:
    metric = {"mean": 0.5, "std": 0.1, "per_episode": [0.4, 0.6]}
    record = {
        "schema_version": SCHEMA_VERSION,
        "id": "abc123",
        "algorithm": "bc_safe",
        "task": "ToyVelocity",
        "cost_limit": 10.0,
        "seed": 0,
        "profile": "demo",
        "protocol": {
            "name": "honest",
            "cost_normalisation": "C/kappa",
            "eval_episodes": 2,
            "online": False,
        },
        "config": {"steps": 10},
        "dataset": {"source": "toy", "path": None, "sha256": "f" * 64, "card": {}},
        "code": {"git_commit": "x", "dirty": False},
        "packages": {},
        "hardware": {"device": "cpu"},
        "timing": {"total": 1.0},
        "metrics": {
            k: copy.deepcopy(metric)
            for k in ("normalised_reward", "normalised_cost", "return", "cost")
        },
        "created": "2026-11-21T00:00:00+00:00",
    }
    record.update(changes)
    return record


def test_valid_record_round_trips(tmp_path):
    path = write_record(tmp_path, make_record())
    assert path == tmp_path / "runs" / "demo" / "abc123.json"
    loaded = read_records(tmp_path, "demo")
    assert loaded.invalid == [] and loaded.records[0]["id"] == "abc123"
    frame, invalid = load_records(tmp_path, "demo")
    assert invalid == []
    assert frame.loc[0, "reward"] == 0.5 and frame.loc[0, "data_source"] == "toy"


@pytest.mark.parametrize(
    "broken",
    [
        {"seed": "zero"},
        {"metrics": {}},
        {"protocol": {"name": "honest"}},
        {"schema_version": 99},
    ],
)
def test_invalid_record_is_rejected(broken):
    with pytest.raises(RecordError):
        validate_record(make_record(**broken))


def test_non_finite_metric_is_rejected():
    record = make_record()
    record["metrics"]["normalised_cost"]["mean"] = float("nan")
    with pytest.raises(RecordError, match="non-finite"):
        validate_record(record)


def test_invalid_files_are_reported_not_used(tmp_path):
    write_record(tmp_path, make_record())
    folder = tmp_path / "runs" / "demo"
    (folder / "truncated.json").write_text('{"id": "x", ')
    bad = make_record(id="bad")
    del bad["metrics"]
    (folder / "bad.json").write_text(json.dumps(bad))
    loaded = read_records(tmp_path, "demo")
    assert [r["id"] for r in loaded.records] == ["abc123"]
    reasons = {path.name: why for path, why in loaded.invalid}
    assert "not valid JSON" in reasons["truncated.json"]
    assert "metrics" in reasons["bad.json"]


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "x.json"
    atomic_write_text(target, "old")

    with pytest.raises(AttributeError):
        atomic_write_text(target, 123)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_record_on_a_full_disk_leaves_nothing_and_keeps_umask_permissions(tmp_path, monkeypatch):
    import errno

    from benchmark import atomic

    record = make_record()
    path = write_record(tmp_path, record)
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask(), "group-readable under umask 022"

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        write_record(tmp_path, make_record(id="def456"))
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def _umask() -> int:
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    return mask
