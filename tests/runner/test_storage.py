"""A full disk fails cleanly (one line, exit 2, no temporary files, status failed), and a later
run removes the temporaries a killed or failed writer left behind."""

from __future__ import annotations

import errno
import json

import pytest

from benchmark import atomic
from benchmark.cli import main
from benchmark.errors import StorageError
from benchmark.runner import RunSpec, execute, plan_run
from benchmark.runner import trainer as trainer_mod

ARGS = ["run", "--algorithm", "bc_safe", "--task", "ToyVelocity", "--profile", "smoke"]


def _spec() -> RunSpec:
    return RunSpec(
        algorithm="bc_safe",
        task="ToyVelocity",
        profile="smoke",
        cost_limit=10.0,
        overrides={"steps": 60},
    )


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _temporaries(root):
    return sorted(p.name for p in root.rglob(".*.tmp"))


def test_full_disk_at_a_checkpoint_is_one_line_exit_2_and_leaves_no_temporary(
    results_dir, monkeypatch, capsys
):
    real_save = trainer_mod.torch.save

    def save_half_then_fail(obj, path):
        real_save(obj, path)  # the bytes went to the temporary file, then the disk filled up
        _no_space()

    monkeypatch.setattr(trainer_mod.torch, "save", save_half_then_fail)
    code = main([*ARGS, "--cost-limit", "10", "--set", "steps=60", "--results", str(results_dir)])
    err = [line for line in capsys.readouterr().err.split("\r") if line.strip()]
    assert code == 2
    assert err[-1].startswith("error: no space left on the device") and err[-1].count("\n") == 1
    work = plan_run(_spec()).work_dir(results_dir)
    assert _temporaries(results_dir) == [] and not (work / "checkpoint.pt").exists()
    assert json.loads((work / "status.json").read_text())["state"] == "failed"
    assert not (results_dir / "runs").exists()


def test_full_disk_at_the_record_write_leaves_no_record_and_no_temporary(results_dir, monkeypatch):
    from benchmark import results as results_mod

    original = results_mod.atomic_write_text

    def record_write_fails(path, text):
        if path.suffix == ".json" and path.parent.name == "smoke" and "runs" in path.parts:
            monkeypatch.setattr(atomic.os, "fsync", _no_space)
        original(path, text)

    monkeypatch.setattr(results_mod, "atomic_write_text", record_write_fails)
    with pytest.raises(StorageError, match="no space"):
        execute(_spec(), results_dir)
    monkeypatch.undo()
    work = plan_run(_spec()).work_dir(results_dir)
    assert list((results_dir / "runs" / "smoke").iterdir()) == []
    assert _temporaries(results_dir) == []
    assert json.loads((work / "status.json").read_text())["state"] == "failed"


def test_a_later_run_removes_stale_temporaries(results_dir):
    work = plan_run(_spec()).work_dir(results_dir)
    work.mkdir(parents=True)
    stale = [work / ".checkpoint.pt.4242.tmp", work / ".status.json.abc.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    [record] = execute(_spec(), results_dir)
    assert not any(p.exists() for p in stale)
    assert _temporaries(results_dir) == []
    assert "removed stale temporary .checkpoint.pt.4242.tmp" in (work / "run.log").read_text()
    assert record["timing"]["resumed_from"] is None


def test_records_plan_and_status_get_the_umask_permissions(results_dir):
    """Not 0600: a results folder shared by a group on a cluster stays readable."""
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    [record] = execute(_spec(), results_dir)
    work = plan_run(_spec()).work_dir(results_dir)
    written = [work / "plan.json", work / "status.json", work / "checkpoint.pt"]
    written.append(results_dir / "runs" / "smoke" / f"{record['id']}.json")
    for path in written:
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path.name
