"""What `sweep --wait` prints while runs go by: runs done / total, an ETA, and what is training.

Everything is read from files the runs write anyway (a record when a run is finished, the
work folder's `status.json` with stage and step at each checkpoint), so it works the same for
local workers and Slurm jobs. On a terminal the line is redrawn in place; in a log file (CI,
`nohup`) a new line is written at most every `log_interval` seconds. Per-step progress bars
stay in each run's own log, so several workers never interleave bars on one terminal.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO


class PlanLike(Protocol):
    train_id: str

    def is_done(self, results: Path) -> bool: ...

    def work_dir(self, results: Path) -> Path: ...

    def label(self) -> str: ...


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _status(work: Path) -> dict[str, Any]:
    try:
        return json.loads((work / "status.json").read_text())
    except (OSError, ValueError):
        return {}


@dataclass
class SweepProgress:
    """Polls the run files of one sweep and renders its progress line."""

    plans: list[PlanLike]
    results: Path
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    log_interval: float = 30.0
    started: float = field(default_factory=time.monotonic)
    _last_print: float = -1e9
    _finished: set[str] = field(default_factory=set)
    _failed: dict[str, str] = field(default_factory=dict)
    _running: dict[str, dict] = field(default_factory=dict)

    def poll(self) -> None:
        """Read each unfinished run's files once: its record, else its status file."""
        self._running = {}
        for plan in self.plans:
            if plan.train_id in self._finished:
                continue
            if plan.is_done(self.results):
                self._finished.add(plan.train_id)
                self._failed.pop(plan.train_id, None)
                continue
            status = _status(plan.work_dir(self.results))
            if status.get("state") == "failed":
                self._failed[plan.train_id] = str(plan.work_dir(self.results) / "run.log")
            elif status.get("state") == "running":
                self._running[plan.train_id] = status

    def running(self) -> list[str]:
        """`label [stage step]` of every run whose status said, at the last poll, it trains."""
        out = []
        for plan in self.plans:
            status = self._running.get(plan.train_id)
            if status is None:
                continue
            stage = status.get("stage")
            where = f" [{stage} {status.get('step', 0)}]" if stage else ""
            if stage == "done":  # every stage trained: the run is being evaluated
                where = " [evaluating]"
            out.append(f"{plan.label()}{where}")
        return out

    def line(self) -> str:
        total, done, failed = len(self.plans), len(self._finished), len(self._failed)
        elapsed = time.monotonic() - self.started
        left = total - done - failed
        eta = f"ETA {_duration(elapsed / done * left)}" if done and left else "ETA ?"
        if not left:
            eta = "finished"
        parts = [f"runs {done}/{total} done"]
        if failed:
            parts.append(f"{failed} failed")
        parts += [f"{_duration(elapsed)} elapsed", eta]
        running = self.running()
        if running:
            parts.append("training: " + "; ".join(running))
        return " · ".join(parts)

    def show(self, force: bool = False) -> None:
        self.poll()
        now = time.monotonic()
        tty = self.stream.isatty()
        if not (force or tty or now - self._last_print >= self.log_interval):
            return
        text = self.line()
        if tty:
            self.stream.write("\r\033[K" + text[:200])
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._last_print = now

    def summary(self, skipped: int = 0) -> str:
        """The one line printed at the end: done, failed (with their logs), skipped."""
        self.poll()
        done = len(self._finished)
        text = f"sweep finished: {done} done, {len(self._failed)} failed, {skipped} skipped"
        text += f" (already done) in {_duration(time.monotonic() - self.started)}"
        if self._failed:
            text += "; failed run logs: " + ", ".join(sorted(self._failed.values()))
        return text


def wait_with_progress(
    jobs: list, progress: SweepProgress, skipped: int, poll_seconds: float = 2.0
) -> list[tuple[Any, BaseException]]:
    """Wait for submitit jobs while showing progress; return the (job, error) of failed jobs."""
    while not all(job.done() for job in jobs):
        progress.show()
        time.sleep(poll_seconds)
    progress.show(force=True)
    if progress.stream.isatty():
        progress.stream.write("\n")
    errors = []
    for job in jobs:
        try:
            job.result()
        except Exception as error:  # reported by the caller with its log path
            errors.append((job, error))
    print(progress.summary(skipped), file=progress.stream, flush=True)
    return errors
