"""Sweeps on a real (throw-away, single-node) Slurm cluster, through the suite's own CLI.

Every test goes through `python -m benchmark sweep --executor slurm` and `status` (in process,
via `benchmark.cli.main`), never raw submitit. The cluster comes from `conftest.py`. Runs are
BC-Safe on ToyVelocity with the smoke settings, from profile files written into tmp_path, so
that a test controls how many runs there are and how long they train.

Waits poll files with a deadline (a hang guard, not a timing assertion: the cluster shares a
loaded machine). Times worth knowing (array latency, requeue to resume) are printed.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from benchmark.cli import main

pytestmark = pytest.mark.slurm

WAIT_S = 300.0
"""Hang guard for one wait; generous because the machine may be shared by other work."""


# ----------------------------------------------------------------------------- helpers


def write_profile(
    folder: Path,
    name: str,
    seeds: int,
    steps: int = 20,
    checkpoint_every: int = 20,
    slurm: dict | None = None,
    config: dict | None = None,
) -> Path:
    """A profile of `seeds` BC-Safe runs on ToyVelocity with the smoke settings (`config`
    overrides BC-Safe's)."""
    data = {
        "name": name,
        "description": "Slurm integration test",
        "tasks": ["ToyVelocity"],
        "algorithms": ["bc_safe"],
        "seeds": list(range(seeds)),
        "cost_limits": "drcorl",
        "eval_episodes": 2,
        "num_eval_envs": 2,
        "checkpoint_every": checkpoint_every,
        "checkpoint_seconds": 30,
        "log_every": 10,
        "budgets": "smoke",
        "algorithm_config": {"bc_safe": {"steps": steps, **(config or {})}},
        "slurm": {"time_min": 10, "cpus_per_task": 1, "mem_gb": 0.5, **(slurm or {})},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def cli(*argv: object) -> tuple[int, str]:
    """`python -m benchmark ARGV` in this process; its exit code and what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue()


def sweep(profile: Path, results: Path, *extra: object) -> str:
    rc, out = cli(
        "sweep", "--profile", profile, "--executor", "slurm", "--results", results, *extra
    )
    assert rc == 0, out
    return out


def status(profile: Path, results: Path) -> tuple[int, dict[str, int], str]:
    rc, out = cli("status", "--profile", profile, "--results", results)
    first = next(line for line in out.splitlines() if line.startswith("done:"))
    counts = {k: int(v) for k, v in re.findall(r"(\w+): (\d+)", first)}
    return rc, counts, out


def submissions(results: Path, name: str) -> list[dict]:
    path = results / "submitit" / name / "submissions.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def records(results: Path, name: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results / "runs" / name).glob("*.json"))]


def work_dir(results: Path, name: str, train_id: str) -> Path:
    return results / "work" / name / train_id


def run_status(results: Path, name: str, train_id: str) -> dict:
    path = work_dir(results, name, train_id) / "status.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def slurm(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=check)


def diagnostics(results: Path) -> str:
    """What a failed wait shows: the queue, every run's status.json and record, and the tail
    of the job and run logs of the test."""
    parts = [slurm("squeue", "-t", "all", check=False).stdout]
    for path in sorted(results.glob("work/*/*/status.json")):
        parts.append(f"{path.parent.name}: {path.read_text(errors='replace')}")
    parts.append(f"records: {sorted(p.name for p in results.glob('runs/*/*.json'))}")
    for log in sorted(results.rglob("*_log.err"))[-6:]:
        parts.append(f"--- {log}\n{log.read_text(errors='replace')[-1500:]}")
    for log in sorted(results.rglob("run.log"))[-4:]:
        parts.append(f"--- {log}\n{log.read_text(errors='replace')[-1500:]}")
    return "\n".join(parts)


def wait_for(
    what: str,
    predicate: Callable[[], object],
    results: Path,
    timeout: float = WAIT_S,
    every: float = 0.25,
):
    """Poll `predicate` until it returns something true (`every` seconds: a `status` call
    expands the whole profile, so those poll once a second to leave the CPUs to the jobs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(
        f"gave up after {timeout:.0f} s waiting for {what}\n{diagnostics(results)}"
    )


def array_ids(entries: list[dict]) -> dict[str, list[int]]:
    """Slurm job id -> its array task indices, from submitit job ids like `12_3` (a chunk of
    one run goes out as a plain job, `13`, which counts as one task here)."""
    arrays: dict[str, list[int]] = {}
    for entry in entries:
        array, _, index = entry["job_id"].partition("_")
        arrays.setdefault(array, []).append(int(index or 0))
    return {k: sorted(v) for k, v in arrays.items()}


def jobs_from(folder: Path, states: str = "all") -> list[str]:
    """Queued or running Slurm jobs submitted from under `folder` (a sweep submits from its
    code snapshot, inside the results folder), found even when no file names them."""
    fmt = ["-o", "%F|%Z"] + ([] if states == "all" else ["-t", states])
    out = slurm("squeue", "-h", *fmt, check=False).stdout
    lines = (line.partition("|") for line in out.splitlines())
    return sorted({job for job, _, workdir in lines if workdir.startswith(str(folder))})


def cancel_jobs(folder: Path) -> None:
    """Cancel every job submitted from under `folder`."""
    # a job whose run has written its record is still exiting: let it end as COMPLETED
    deadline = time.monotonic() + 10
    while jobs_from(folder, "R,CG") and time.monotonic() < deadline:
        time.sleep(0.25)
    leftovers = jobs_from(folder)
    if leftovers:
        slurm("scancel", *leftovers, check=False)


@pytest.fixture(autouse=True)
def cancel_leftovers(slurm_cluster, tmp_path):
    """Whatever a test submitted is cancelled when it ends, pass or fail."""
    yield
    cancel_jobs(tmp_path)


# ----------------------------------------------------------------------------- tests


@dataclass
class Submitted:
    """A sweep submitted once and shared by the tests that look at it."""

    name: str
    profile: Path
    results: Path
    runs: int
    array_size: int
    submitted_at: float
    output: str
    status_at_once: tuple[int, dict[str, int], str]


@pytest.fixture(scope="module")
def small_sweep(slurm_cluster, tmp_path_factory) -> Submitted:
    """One array more than the array limit allows: `size` runs, then 1 more."""
    size = min(4, slurm_cluster.max_array_size)
    folder = tmp_path_factory.mktemp("small")
    name = "slurm-small"
    profile = write_profile(folder, name, seeds=size + 1, slurm={"max_array_size": size})
    results = folder / "results"
    submitted_at = time.time()
    output = sweep(profile, results)
    yield Submitted(
        name, profile, results, size + 1, size, submitted_at, output, status(profile, results)
    )
    cancel_jobs(folder)


def test_small_sweep_runs_as_a_job_array_and_every_record_arrives(small_sweep):
    name, profile, results, n = (
        small_sweep.name,
        small_sweep.profile,
        small_sweep.results,
        small_sweep.runs,
    )
    assert f"submitted {n} runs" in small_sweep.output, small_sweep.output
    entries = submissions(results, name)
    assert len(entries) == n, entries
    arrays = array_ids(entries)
    assert list(range(small_sweep.array_size)) in arrays.values(), arrays  # one job array

    # `sweep` returned at once: right after it, status (from files) sees no finished run yet
    rc, counts, text = small_sweep.status_at_once
    assert counts["failed"] == counts["missing"] == 0 and sum(counts.values()) == n, text
    assert counts["done"] < n, text

    # status follows progress from files alone, up to every record
    seen: set[str] = set()

    def all_done() -> bool:
        _, counts, _ = status(profile, results)
        seen.update(k for k, v in counts.items() if v)
        return counts["done"] == n

    wait_for(f"{n} records", all_done, results, every=1.0)
    assert seen & {"queued", "running"}, seen
    recs = records(results, name)
    assert sorted(r["seed"] for r in recs) == list(range(n))
    assert all(r["profile"] == name and r["timing"]["resumed_from"] is None for r in recs)
    for entry in entries:  # each task ran under Slurm and left its submitit log
        assert Path(entry["stdout"]).exists(), entry
    took = time.time() - small_sweep.submitted_at
    print(f"\n{n} runs as Slurm arrays: every record {took:.1f} s after `sweep` began")


def test_sweep_larger_than_max_array_size_is_split(slurm_cluster, small_sweep):
    size, n = small_sweep.array_size, small_sweep.runs
    if slurm_cluster.max_array_size == size:  # the cluster itself refuses one array of n
        refused = slurm("sbatch", f"--array=0-{n - 1}", "--wrap", "true", check=False)
        assert refused.returncode != 0 and "array" in refused.stderr.lower(), refused.stderr
    arrays = array_ids(submissions(small_sweep.results, small_sweep.name))
    assert sorted(arrays.values()) == [[0], list(range(size))], arrays
    wait_for(
        f"{n} records",
        lambda: len(records(small_sweep.results, small_sweep.name)) == n,
        small_sweep.results,
    )


def test_requeued_job_resumes_from_its_checkpoint(slurm_cluster, tmp_path):
    # `scontrol requeue` kills the job (SIGTERM, then SIGKILL after KillWait) and queues it
    # again. The runner checkpoints at the next step after SIGTERM and exits; the run must
    # still be training when the requeue comes (6k steps at ~0.6 ms a step on a quiet core).
    name = "slurm-requeue"
    profile = write_profile(tmp_path, name, seeds=1, steps=6000, checkpoint_every=400)
    results = tmp_path / "results"
    sweep(profile, results)
    [entry] = submissions(results, name)
    [train_id] = entry["train_ids"]
    log = work_dir(results, name, train_id) / "run.log"

    wait_for(
        "a checkpoint at step > 0",
        lambda: run_status(results, name, train_id).get("step", 0) > 0,
        results,
    )
    requeued_at = time.time()
    slurm("scontrol", "requeue", entry["job_id"])

    def resumed() -> re.Match | None:
        match = re.search(r"resumed from checkpoint at (\w+) step (\d+)", log.read_text())
        if not match and records(results, name):
            raise AssertionError("the run finished before the requeue killed it: raise `steps`")
        return match

    match = wait_for("the run to resume", resumed, results)
    assert int(match.group(2)) > 0, match.group(0)
    line = next(x for x in log.read_text().splitlines() if "resumed from checkpoint" in x)
    stamp = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) + int(line[20:23]) / 1000
    print(f"\nrequeue -> resumed from checkpoint: {stamp - requeued_at:.1f} s ({match.group(0)})")
    # while the requeued job runs again, status must not call the run failed
    _, counts, text = status(profile, results)
    assert counts["failed"] == 0, text

    wait_for("the record", lambda: records(results, name), results)
    [record] = records(results, name)
    resumed_from = record["timing"]["resumed_from"]
    assert resumed_from == {"stage": match.group(1), "step": int(match.group(2))}, record["timing"]


def test_cancelled_and_failed_runs_are_reported_and_resubmitted(slurm_cluster, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("the failing run needs a node without CUDA")
    results = tmp_path / "results"
    # three runs, one of which is cancelled while it trains
    name = "slurm-cancel"
    profile = write_profile(tmp_path, name, seeds=3, steps=6000, checkpoint_every=200)
    sweep(profile, results)
    # and one run that raises in the job: CUDA is asked for, and whether a machine has it is
    # known only on the node the run lands on (this cluster's has none)
    bad = write_profile(tmp_path, "slurm-fail", seeds=1)
    sweep(bad, results, "--device", "cuda")

    # the victim: the first run seen training (step > 0), cancelled at once; 6000 steps leave
    # it seconds of training, so it cannot finish first
    entries = {e["train_ids"][0]: e for e in submissions(results, name)}

    def training() -> str | None:
        steps = {t: run_status(results, name, t).get("step", 0) for t in entries}
        return next((t for t, step in steps.items() if 0 < step < 3000), None)

    victim_id = wait_for("a run to be training", training, results)
    victim = entries[victim_id]
    slurm("scancel", victim["job_id"])

    wait_for("2 records", lambda: len(records(results, name)) >= 2, results)
    time.sleep(1.0)  # a third one now would be the victim's
    assert len(records(results, name)) == 2, diagnostics(results)

    def reported(profile_path: Path) -> Callable[[], tuple | None]:
        def check():
            rc, counts, text = status(profile_path, results)
            return (rc, counts, text) if counts["failed"] else None

        return check

    rc, counts, text = wait_for(
        "status to call the cancelled run failed", reported(profile), results, every=1.0
    )
    assert rc == 1 and counts["done"] == 2 and counts["failed"] == 1, text
    seed = json.loads((work_dir(results, name, victim_id) / "plan.json").read_text())["seed"]
    assert f"seed={seed}" in text and "cancel" in text.lower(), text
    log_path = Path(re.search(r"log: (\S+)", text).group(1))
    assert log_path.exists() and "CANCELLED" in log_path.read_text(), log_path

    rc, counts, text = wait_for(
        "status to call the raising run failed", reported(bad), results, every=1.0
    )
    assert rc == 1 and counts["failed"] == 1, text
    log_path = Path(re.search(r"log: (\S+)", text).group(1))
    assert log_path.exists() and "CUDA is not available" in log_path.read_text(), log_path

    # a second sweep resubmits only the missing run, which then completes
    before = len(submissions(results, name))
    out = sweep(profile, results)
    assert "3 runs in the profile, 2 done, 1 to run" in out, out
    new = submissions(results, name)[before:]
    assert [e["train_ids"] for e in new] == [[victim_id]], new
    wait_for("the third record", lambda: len(records(results, name)) == 3, results)
    rc, counts, text = status(profile, results)
    assert rc == 0 and counts["done"] == 3, text


def test_sbatch_options_from_cli_and_profile_reach_the_script(slurm_cluster, tmp_path):
    if "hold" not in slurm_cluster.partitions:
        pytest.skip("this cluster has no `hold` partition (tests/slurm/up.sh makes one)")
    name = "slurm-options"
    from_profile = {
        "partition": "hold",  # accepts jobs and never starts them
        "time_min": 7,
        "cpus_per_task": 2,
        "array_parallelism": 2,
        "sbatch_extra": {"comment": "from-profile"},
    }
    profile = write_profile(tmp_path, name, seeds=3, slurm=from_profile)
    results = tmp_path / "results"
    cli_options = ("--time", "9", "--gpus", "1", "--mem-gb", "1", "--sbatch", "nice=5")

    out = sweep(profile, results, "--dry-run", *cli_options)
    assert "hold" in out and not submissions(results, name), out  # --dry-run submits nothing

    sweep(profile, results, *cli_options)
    [script] = sorted((results / "submitit" / name).rglob("*_submission.sh"))
    lines = set(script.read_text().splitlines())
    expected = {
        "#SBATCH --partition=hold",  # profile
        "#SBATCH --cpus-per-task=2",  # profile
        "#SBATCH --array=0-2%2",  # 3 runs, profile's array parallelism
        "#SBATCH --comment=from-profile",  # profile's extra flag
        "#SBATCH --time=9",  # the CLI wins over the profile's 7
        "#SBATCH --gpus-per-node=1",  # CLI
        "#SBATCH --mem=1GB",  # CLI
        "#SBATCH --nice=5",  # CLI's extra flag
    }
    assert expected <= lines, sorted(expected - lines)
    # and Slurm took them: the array waits in `hold` with one GPU per task
    [array] = array_ids(submissions(results, name))
    queued = slurm("squeue", "-h", "-r", "-j", array, "-o", "%P %b %C %l").stdout.split("\n")
    assert sum(1 for q in queued if q.split() == ["hold", "gres:gpu:1", "2", "9:00"]) == 3, queued
