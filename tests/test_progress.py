"""The sweep's progress line: runs done/total, ETA, what trains now, and a summary."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

from benchmark.progress import SweepProgress, _duration, wait_with_progress


@dataclass
class FakePlan:
    train_id: str

    def is_done(self, results: Path) -> bool:
        return (results / f"{self.train_id}.done").exists()

    def work_dir(self, results: Path) -> Path:
        return results / "work" / self.train_id

    def label(self) -> str:
        return f"algo task seed={self.train_id}"


def _status(results: Path, rid: str, **payload) -> None:
    work = results / "work" / rid
    work.mkdir(parents=True, exist_ok=True)
    (work / "status.json").write_text(json.dumps(payload))


def test_line_counts_done_failed_and_shows_the_running_run(tmp_path):
    plans = [FakePlan(str(i)) for i in range(4)]
    progress = SweepProgress(plans, tmp_path, stream=io.StringIO(), started=0.0)
    (tmp_path / "0.done").write_text("")
    _status(tmp_path, "1", state="running", stage="train", step=40)
    _status(tmp_path, "2", state="failed")
    progress.poll()
    line = progress.line()
    assert line.startswith("runs 1/4 done · 1 failed")
    assert "ETA " in line and "ETA ?" not in line
    assert "training: algo task seed=1 [train 40]" in line
    summary = progress.summary(skipped=3)
    assert summary.startswith("sweep finished: 1 done, 1 failed, 3 skipped")
    assert str(tmp_path / "work" / "2" / "run.log") in summary


def test_a_log_file_gets_a_line_per_interval_not_per_poll(tmp_path):
    stream = io.StringIO()
    progress = SweepProgress([FakePlan("a")], tmp_path, stream=stream, log_interval=3600)
    progress.show()
    progress.show()
    assert stream.getvalue().count("\n") == 1
    assert "runs 0/1 done" in stream.getvalue()


class _Job:
    def __init__(self, error: Exception | None = None):
        self.error = error

    def done(self) -> bool:
        return True

    def result(self):
        if self.error:
            raise self.error


def test_wait_returns_failed_jobs_and_prints_the_summary(tmp_path):
    stream = io.StringIO()
    (tmp_path / "a.done").write_text("")
    progress = SweepProgress([FakePlan("a")], tmp_path, stream=stream)
    errors = wait_with_progress([_Job(), _Job(RuntimeError("boom"))], progress, skipped=0)
    assert [str(e) for _, e in errors] == ["boom"]
    assert "runs 1/1 done" in stream.getvalue()
    assert "sweep finished: 1 done, 0 failed, 0 skipped" in stream.getvalue()


def test_durations_read_like_a_clock():
    assert [_duration(s) for s in (5, 75, 3725)] == ["5s", "1m15s", "1h02m"]
