"""The one atomic-write helper: all or nothing, group-readable, no litter."""

from __future__ import annotations

import errno
import os

import pytest

from benchmark.atomic import atomic_path, atomic_write_text, remove_stale_temporaries


def test_a_write_replaces_the_file_with_umask_permissions(tmp_path):
    target = tmp_path / "sub" / "record.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    mask = os.umask(0o022)
    os.umask(mask)
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600
    assert [p.name for p in target.parent.iterdir()] == ["record.json"]


def test_an_error_mid_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "status.json"
    atomic_write_text(target, "old")
    with pytest.raises(OSError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    (tmp_path / ".checkpoint.pt.abc123.tmp").write_text("x")
    (tmp_path / ".checkpoint.pt.def.part").write_text("x")
    (tmp_path / "checkpoint.pt").write_text("keep")
    (tmp_path / ".other.json.x.tmp").write_text("another file's")
    removed = remove_stale_temporaries(tmp_path, "checkpoint.pt")
    assert sorted(p.name for p in removed) == [
        ".checkpoint.pt.abc123.tmp",
        ".checkpoint.pt.def.part",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.x.tmp", "checkpoint.pt"]
