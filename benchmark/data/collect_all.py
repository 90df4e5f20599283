"""`make data-all`: collect the eleven DSRL tasks' datasets, a few at a time, resumably.

    python -m benchmark.data.collect_all [--jobs 2] [--seed 0] [--tasks table | PointGoal1 ...]

Each task runs as its own `python -m benchmark data collect TASK` process (one torch thread,
`OMP_NUM_THREADS=1`), so `--jobs` should not exceed the free cores. The order is
`COLLECTION_ORDER`: the three tasks first runs need, then navigation (most of the CPU time).
Finished tasks (their run folder has `done.json`) are skipped; interrupted ones resume from
their last checkpoint, so running the same command again resumes. Each task's output goes to
`<cache>/generated/logs/<Task>.log`, and its wall time to `<cache>/generated/logs/timings.csv`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmark.data.collect import COLLECTION_ORDER, generated_dir, run_dir
from benchmark.data.generated import recipe_revision, run_revision
from benchmark.errors import BenchmarkError
from benchmark.tasks import TaskSpec, expand_task_set, get_task


def pending_tasks(tasks: list[str], seed: int, root: Path) -> list[str]:
    """Tasks whose current recipe has no finished file yet, in the given order: no `done.json`,
    or one written for an earlier revision that filtered the same run."""
    return [t for t in tasks if not _finished(get_task(t), seed, root)]


def _finished(task: TaskSpec, seed: int, root: Path) -> bool:
    done = run_dir(task, seed, root) / "done.json"
    if not done.exists():
        return False
    # done.json from before revisions were written: the run folder's own revision made it
    written = json.loads(done.read_text()).get("revision", run_revision(task))
    return written == recipe_revision(task)


def _launch(task: str, seed: int, log_dir: Path) -> tuple[subprocess.Popen, object]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = open(log_dir / f"{task}.log", "a")  # noqa: SIM115  (closed when the job ends)
    command = [sys.executable, "-m", "benchmark", "data", "collect", task, "--seed", str(seed)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    return process, log


def _reap(process: subprocess.Popen) -> tuple[int, float] | None:
    """(exit code, CPU seconds) of a finished child, None while it runs. `os.wait4` gives the
    child's own CPU time, which with several jobs at once is how a 2-core time is estimated."""
    pid, status, usage = os.wait4(process.pid, os.WNOHANG)
    if pid == 0:
        return None
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime


def _record_timing(log_dir: Path, task: str, seed: int, wall: float, cpu: float, code: int):
    path = log_dir / "timings.csv"
    new = not path.exists()
    with open(path, "a") as timings:
        if new:
            timings.write("task,seed,wall_seconds,cpu_seconds,exit_code,finished_unix\n")
        timings.write(f"{task},{seed},{wall:.1f},{cpu:.1f},{code},{time.time():.0f}\n")


def run_all(tasks: list[str], jobs: int, seed: int) -> int:
    root = generated_dir()
    log_dir = root / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    queue = pending_tasks(tasks, seed, root)
    skipped = [t for t in tasks if t not in queue]
    if skipped:
        print(f"already collected (skipped): {', '.join(skipped)}")
    running: dict[str, tuple[subprocess.Popen, object, float]] = {}
    failed: list[str] = []
    start_all = time.monotonic()
    try:
        while queue or running:
            while queue and len(running) < jobs:
                task = queue.pop(0)
                process, log = _launch(task, seed, log_dir)
                running[task] = (process, log, time.monotonic())
                print(f"[start] {task} (log: {log_dir / f'{task}.log'})", flush=True)
            time.sleep(2.0)
            for task, (process, log, started) in list(running.items()):
                ended = _reap(process)
                if ended is None:
                    continue
                code, cpu = ended
                log.close()
                del running[task]
                minutes = (time.monotonic() - started) / 60
                _record_timing(log_dir, task, seed, minutes * 60, cpu, code)
                status = "done" if code == 0 else f"FAILED (exit {code})"
                print(
                    f"[{status}] {task} after {minutes:.1f} min ({cpu / 60:.1f} CPU-min)",
                    flush=True,
                )
                if code != 0:
                    failed.append(task)
    except KeyboardInterrupt:
        # The children got the same SIGINT; wait so their checkpoints stay consistent.
        for process, log, _ in running.values():
            process.wait()
            log.close()
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    hours = (time.monotonic() - start_all) / 3600
    print(f"finished in {hours:.2f} h; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="collections run at the same time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tasks", nargs="*", default=None, help="task names or sets (default: the table's 11)"
    )
    args = parser.parse_args(argv)
    try:
        tasks = list(expand_task_set(args.tasks)) if args.tasks else list(COLLECTION_ORDER)
        return run_all(tasks, max(args.jobs, 1), args.seed)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
