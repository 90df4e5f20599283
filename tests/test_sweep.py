"""Sweeps through submitit's local executor: skipping, kill/restart, failures, requeue."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest
import torch

from benchmark.cli import main
from benchmark.profiles import load_profile
from benchmark.results import read_records
from benchmark.sweep import SlurmOptions, SweepJob, profile_status, snapshot_code


def write_profile(folder: Path, name: str, body: str) -> str:
    path = folder / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nbudgets: smoke\ntasks: [ToyVelocity]\n"
        f"eval_episodes: 2\nnum_eval_envs: 2\n{body}"
    )
    return str(path)


def sweep(profile: str, results: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "benchmark",
        "sweep",
        "--profile",
        profile,
        "--executor",
        "local",
        "--results",
        str(results),
        *extra,
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_dry_run_prints_the_plan_and_submits_nothing(tmp_path, capsys):
    profile = write_profile(
        tmp_path, "plan", "algorithms: [bc_safe, caps]\nseeds: [0, 1]\ncost_limits: [10, 20]\n"
    )
    assert main(["sweep", "--profile", profile, "--dry-run", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    # bc_safe: 2 seeds x 2 limits; caps (cost-conditioned): one run per seed
    assert "6 runs in the profile, 0 done, 6 to run" in out
    assert not (tmp_path / "submitit").exists()


def test_table_only_and_task_narrow_the_sweep_to_the_runs_shown(tmp_path, capsys):
    profile = write_profile(
        tmp_path,
        "narrow",
        "algorithms: [bc_safe, caps]\nseeds: [0, 1]\ntasks: [ToyVelocity, ToyPointGoal]\n"
        "cost_limits: {ToyVelocity: [10, 20, 30], default: drcorl}\n"
        "table_cost_limits: {ToyVelocity: 20, default: drcorl}\n",
    )
    base = ["sweep", "--profile", profile, "--dry-run", "--results", str(tmp_path)]
    assert main(base) == 0
    # bc_safe: 2 seeds x (3 + 1) limits; caps: one run per task and seed
    assert "12 runs in the profile, 0 done, 12 to run" in capsys.readouterr().out
    assert main([*base, "--table-only"]) == 0
    out = capsys.readouterr().out
    # bc_safe at the table's limits only (kappa 20 on ToyVelocity); caps unchanged
    assert "the 8 of these 12 runs the table shows" in out
    assert "bc_safe ToyVelocity kappa=20 seed=0" in out
    assert "bc_safe ToyVelocity kappa=10 seed=0" not in out
    assert main([*base, "--task", "ToyVelocity", "--table-only"]) == 0
    out = capsys.readouterr().out
    assert "the 8 of the profile's 12 runs on it" in out and "the 4 of these 8" in out
    assert main([*base, "--task", "CarRun"]) == 2
    assert "profile narrow has ToyVelocity, ToyPointGoal" in capsys.readouterr().err


def test_task_plans_only_that_task_so_other_tasks_need_no_data(tmp_path, capsys):
    # CarGoal1 has no dataset here (no DSRL file, nothing generated): planning it would fail
    profile = write_profile(
        tmp_path, "partial", "algorithms: [bc_safe]\ntasks: [ToyVelocity, CarGoal1]\n"
    )
    args = ["sweep", "--profile", profile, "--dry-run", "--results", str(tmp_path)]
    assert main([*args, "--task", "ToyVelocity"]) == 0
    assert "the 1 of the profile's 2 runs on it" in capsys.readouterr().out


def test_sweep_device_names_are_checked_at_submission_and_reach_every_run(tmp_path, capsys):
    from benchmark.sweep import expand

    profile = write_profile(tmp_path, "device", "algorithms: [bc_safe]\n")
    rc = main(["sweep", "--profile", profile, "--dry-run", "--device", "gpu0"])
    assert rc == 2 and "--device gpu0: use cpu, cuda or cuda:N" in capsys.readouterr().err
    # CUDA is not checked here: the runs train on another machine, which checks it
    rc = main(["sweep", "--profile", profile, "--dry-run", "--device", "cuda"])
    assert rc == 0
    plans = expand(load_profile(profile), {}, {}, device="cuda:1")
    assert plans and {p.spec.device for p in plans} == {"cuda:1"}


@pytest.mark.slow
def test_sweep_killed_with_sigkill_finishes_every_run_exactly_once(tmp_path):
    profile = write_profile(
        tmp_path,
        "kill",
        "algorithms: [bc_safe]\nseeds: [0, 1, 2]\n"
        "checkpoint_every: 100\nalgorithm_config:\n"
        "  bc_safe: {steps: 1500, batch_size: 64}\n",
    )
    results = tmp_path / "results"
    command = [
        sys.executable,
        "-m",
        "benchmark",
        "sweep",
        "--profile",
        profile,
        "--executor",
        "local",
        "--wait",
        "--max-parallel",
        "2",
        "--results",
        str(results),
    ]
    process = subprocess.Popen(
        command,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.time() + 120
    checkpoints: list[Path] = []
    while time.time() < deadline and not checkpoints:
        checkpoints = list((results / "work").glob("kill/*/checkpoint.pt"))
        time.sleep(0.2)
    assert checkpoints, "a run checkpointed before the kill"
    time.sleep(1.0)
    os.killpg(process.pid, signal.SIGKILL)  # the sweep and every job it started
    process.wait()
    before = {r["id"] for r in read_records(results, "kill").records}
    assert len(before) < 3, "killed mid-sweep"
    # Where each unfinished run stood at the kill: a run killed before its first real
    # checkpoint (or right after one at step 0) legitimately resumes from 0, so the test
    # compares each resume with what was on disk rather than with a timing guess.
    at_kill = {}
    for path in (results / "work").glob("kill/*/checkpoint.pt"):
        state = torch.load(path, weights_only=False)
        at_kill[state["train_id"]] = state["progress"]["step"]
    assert at_kill, "a checkpoint survived the kill"

    done = sweep(profile, results, "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    records = read_records(results, "kill")
    assert records.invalid == []
    assert len(records.records) == 3 and len({r["id"] for r in records.records}) == 3
    for record in records.records:
        if record["id"] in before:
            continue  # finished before the kill
        resumed = record["timing"]["resumed_from"]
        if record["train_id"] in at_kill:
            assert resumed is not None and resumed["step"] == at_kill[record["train_id"]]
        else:
            assert resumed is None, "no checkpoint at the kill: a fresh start"
    assert "3 runs in the profile, 3 done, 0 to run" in sweep(profile, results).stdout


@pytest.mark.slow
def test_failed_run_is_reported_with_its_log_and_the_rest_go_on(tmp_path):
    profile = write_profile(
        tmp_path,
        "fail",
        # a valid config that fails when the run builds: online switching under `honest`
        "algorithms: [coptidice, drcorl]\nalgorithm_config:\n  drcorl: {switching: online}\n",
    )
    results = tmp_path / "results"
    first = sweep(profile, results, "--wait", "--max-parallel", "1")
    assert first.returncode == 2 and "1 run(s) failed" in first.stderr
    assert [r["algorithm"] for r in read_records(results, "fail").records] == ["coptidice"]
    status = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmark",
            "status",
            "--profile",
            profile,
            "--results",
            str(results),
        ],
        capture_output=True,
        text=True,
    )
    assert status.returncode == 1
    assert "done: 1" in status.stdout and "failed: 1" in status.stdout
    log_line = next(line for line in status.stdout.splitlines() if "log:" in line)
    assert Path(log_line.split("log:")[1].strip()).exists()
    again = sweep(profile, results, "--dry-run")
    assert "2 runs in the profile, 1 done, 1 to run" in again.stdout


@pytest.mark.slow
def test_timeout_signal_requeues_a_checkpointing_run_which_completes(tmp_path):
    import submitit

    from benchmark.runner import RunSpec

    results = tmp_path / "results"
    profile = write_profile(
        tmp_path,
        "requeue",
        "algorithms: [bc_safe]\ncheckpoint_every: 100\n"
        "algorithm_config:\n  bc_safe: {steps: 3000, batch_size: 256}\n",
    )
    # The timeout warning (SIGUSR2) is sent by hand once the run has checkpointed, not by a
    # short time limit: on a loaded machine start-up alone can outlast a limit of seconds,
    # and submitit's local controller restarts a job at most six times.
    executor = submitit.LocalExecutor(folder=tmp_path / "submitit", max_num_timeout=3)
    executor.update_parameters(timeout_min=10)
    run = RunSpec(algorithm="bc_safe", task="ToyVelocity", cost_limit=10.0, profile=profile)
    job = executor.submit(SweepJob([run], str(results)))
    status = _wait_for_training(results / "work" / "requeue", job)
    os.kill(status["pid"], signal.SIGUSR2)
    [record_id] = job.result()
    [record] = read_records(results, "requeue").records
    assert record["id"] == record_id
    assert record["timing"]["resumed_from"]["step"] >= status["step"] > 0
    log = next((results / "work" / "requeue").iterdir()) / "run.log"
    assert "checkpoint written, handing over" in log.read_text()


def _wait_for_training(work: Path, job, timeout_s: float = 300.0) -> dict:
    """The status of the job's run once it has written a checkpoint mid-training."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for path in work.glob("*/status.json"):
            with contextlib.suppress(OSError, ValueError):
                status = json.loads(path.read_text())
                if status.get("state") == "running" and status.get("step", 0) > 0:
                    return status
        assert not job.done(), f"the job ended before it trained: {job.stderr()}"
        time.sleep(0.2)
    raise AssertionError("the run wrote no checkpoint within 5 minutes")


def test_status_counts_from_files(tmp_path):
    from benchmark.runner import RunSpec, execute

    profile_path = write_profile(
        tmp_path,
        "count",
        "algorithms: [bc_safe]\nseeds: [0, 1, 2]\nalgorithm_config:\n  bc_safe: {steps: 20}\n",
    )
    results = tmp_path / "results"
    execute(
        RunSpec(
            algorithm="bc_safe", task="ToyVelocity", seed=0, cost_limit=10.0, profile=profile_path
        ),
        results,
    )
    with pytest.raises(ValueError):
        execute(
            RunSpec(
                algorithm="bc_safe",
                task="ToyVelocity",
                seed=1,
                cost_limit=10.0,
                profile=profile_path,
                overrides={"actor_lr": -1.0},
            ),
            results,
        )
    states = sorted(s.state for s in profile_status(load_profile(profile_path), results))
    # seed 1's failed run had another config (another id): it does not belong to the profile
    assert states == ["done", "missing", "missing"]

    # a run whose process died without a record (SIGKILL) is failed, not running forever
    plans = {s.plan.spec.seed: s.plan for s in profile_status(load_profile(profile_path), results)}
    work = plans[2].work_dir(results)
    work.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    (work / "status.json").write_text(
        json.dumps(
            {"state": "running", "pid": int(dead), "host": platform.node(), "updated": time.time()}
        )
    )
    by_seed = {s.plan.spec.seed: s for s in profile_status(load_profile(profile_path), results)}
    assert by_seed[2].state == "failed" and "ended without a record" in by_seed[2].detail

    # an empty or truncated record file is CORRUPT (with its path), and status exits 1
    [record_path] = by_seed[0].plan.record_paths(results)
    record_path.write_text(record_path.read_text()[:40])
    by_seed = {s.plan.spec.seed: s for s in profile_status(load_profile(profile_path), results)}
    assert by_seed[0].state == "corrupt" and by_seed[0].log == str(record_path)
    status = subprocess.run(
        [sys.executable, "-m", "benchmark", "status", "--profile", profile_path]
        + ["--results", str(results)],
        capture_output=True,
        text=True,
    )
    assert status.returncode == 1, status.stderr
    assert "corrupt: 1" in status.stdout and f"record: {record_path}" in status.stdout


def test_snapshot_is_content_addressed_and_records_the_commit(tmp_path):
    first = snapshot_code(tmp_path)
    assert snapshot_code(tmp_path) == first
    assert (first / "benchmark" / "runner" / "plan.py").exists()
    assert (first / "benchmark" / "configs" / "profiles" / "smoke.yaml").exists()
    info = json.loads((first / "SNAPSHOT.json").read_text())
    assert {"git_commit", "dirty", "source"} <= set(info)


def test_slurm_options_merge_profile_and_command_line():
    profile = load_profile("paper")
    args = Namespace(
        partition="gpu",
        time_min=None,
        gpus_per_node=None,
        cpus_per_task=8,
        mem_gb=None,
        array_parallelism=16,
        max_array_size=None,
        sbatch_extra=["qos=high", "--constraint=a100"],
    )
    options = SlurmOptions.from_profile_and_args(profile, args)
    params = options.executor_parameters()
    assert params["slurm_partition"] == "gpu" and params["cpus_per_task"] == 8
    assert params["gpus_per_node"] == 1 and params["timeout_min"] == 2880
    assert params["slurm_array_parallelism"] == 16
    assert params["slurm_additional_parameters"] == {"qos": "high", "constraint": "a100"}


def test_runs_sharing_stages_are_grouped_and_workers_claim_groups(tmp_path):
    from benchmark.sweep import SweepJob, expand, group_runs

    profile = write_profile(
        tmp_path, "pack", "algorithms: [bc_safe]\nseeds: [0, 1, 2]\ncost_limits: [10, 20]\n"
    )
    plans = expand(load_profile(profile), {}, {})
    groups = group_runs(plans)
    assert [len(g) for g in groups] == [2, 2, 2]
    assert all(len({p.spec.seed for p in g}) == 1 for g in groups), "a seed's runs together"
    specs = [[p.spec for p in g] for g in groups]
    first = SweepJob(specs, str(tmp_path / "r"), claims=str(tmp_path / "claims"))
    second = SweepJob(specs, str(tmp_path / "r"), claims=str(tmp_path / "claims"))
    taken = [i for i in range(3) if (first if i % 2 == 0 else second)._claim(i)]
    assert taken == [0, 1, 2]
    assert not first._claim(1) and not second._claim(0), "a claimed group is nobody else's"


def test_slurm_options_are_declared_once():
    """Profile keys, sweep flags and the options dataclass are one list."""
    import dataclasses

    from benchmark.cli import build_parser
    from benchmark.profiles import SLURM_KEYS
    from benchmark.slurm_options import SlurmOptions

    names = {f.name for f in dataclasses.fields(SlurmOptions)}
    assert names == SLURM_KEYS
    sweep = build_parser()._subparsers._group_actions[0].choices["sweep"]
    destinations = {action.dest for action in sweep._actions}
    assert names <= destinations
    args = sweep.parse_args(["--profile", "smoke", "--time", "5", "--sbatch", "qos=low"])
    assert args.time_min == 5 and args.sbatch_extra == ["qos=low"] and args.partition is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_sweep_whose_runs_all_fail_counts_them_and_status_gives_each_cause(tmp_path):
    """--device cuda on a CPU machine: every run fails before it trains; the sweep's last
    line counts them and `status` shows the one-line cause, not just "traceback"."""
    profile = write_profile(tmp_path, "nocuda", "algorithms: [bc_safe, coptidice]\n")
    results = tmp_path / "results"
    done = sweep(profile, results, "--wait", "--device", "cuda", "--max-parallel", "1")
    assert done.returncode == 2
    assert "sweep finished: 0 done, 2 failed" in done.stderr + done.stdout
    status = main_output(["status", "--profile", profile, "--results", str(results)])
    assert "failed: 2" in status
    failed = [line for line in status.splitlines() if "FAILED" in line]
    assert len(failed) == 2
    assert all("CUDA is not available on this machine" in line for line in failed)


def main_output(argv: list[str]) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "benchmark", *argv], capture_output=True, text=True, timeout=300
    )
    return run.stdout + run.stderr


def test_a_dead_local_job_is_failed_not_queued_and_stray_files_are_listed(tmp_path):
    """A local job killed before its runs started leaves them `failed (job gone)`; an invalid
    file in the runs folder that no run names is listed by status, as table refuses it."""
    from benchmark.sweep import expand, submitit_folder

    profile_path = write_profile(tmp_path, "gone", "algorithms: [bc_safe]\n")
    profile = load_profile(profile_path)
    results = tmp_path / "results"
    [plan] = expand(profile, {}, {})
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    folder = submitit_folder(results, profile.name)
    folder.mkdir(parents=True)
    entry = {
        "time": time.time(),
        "executor": "local",
        "job_id": dead,
        "stdout": str(folder / "none.out"),
        "stderr": str(folder / "none.err"),
        "result": str(folder / "none.pkl"),
        "host": platform.node(),
        "train_ids": [plan.train_id],
    }
    (folder / "submissions.jsonl").write_text(json.dumps(entry) + "\n")
    [status] = profile_status(profile, results)
    assert status.state == "failed" and "job gone" in status.detail

    runs = results / "runs" / profile.name
    runs.mkdir(parents=True)
    (runs / "stray.json").write_text("{")
    out = subprocess.run(
        [sys.executable, "-m", "benchmark", "status", "--profile", profile_path]
        + ["--results", str(results)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and "stray.json" in out.stdout


def test_suggested_commands_keep_the_users_results_folder(tmp_path):
    results = tmp_path / "elsewhere"
    out = main_output(["table", "--profile", "smoke", "--results", str(results)])
    assert f"--results {results}" in out


def test_a_set_option_goes_to_the_algorithms_that_have_it(tmp_path, capsys):
    """The stated rule: `--set` applies to the sweep's algorithms whose Config has the option
    (and says which do not); an option none of them has is refused."""
    from benchmark.sweep import expand

    profile = write_profile(tmp_path, "mixed", "algorithms: [bc_safe, drcorl]\n")
    rc = main(["sweep", "--profile", profile, "--dry-run", "--set", "adapt_iterations=5"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "--set adapt_iterations: applies to drcorl; not to bc_safe" in out
    plans = expand(load_profile(profile), {"adapt_iterations": 5}, {})
    by_algorithm = {p.entry.name: p for p in plans}
    assert by_algorithm["drcorl"].config["adapt_iterations"] == 5
    assert "adapt_iterations" not in by_algorithm["bc_safe"].config
    rc = main(["sweep", "--profile", profile, "--dry-run", "--set", "no_such_key=1"])
    assert rc == 2 and "no algorithm of this sweep" in capsys.readouterr().err


def test_a_local_sweep_on_cuda_defaults_to_one_worker(tmp_path, capsys):
    from benchmark.sweep import local_workers

    profile = load_profile(write_profile(tmp_path, "gpu1", "algorithms: [bc_safe]\n"))
    assert local_workers(None, profile, "cuda") == 1
    assert "1 worker" in capsys.readouterr().out
    assert local_workers(None, profile, "cuda:0") == 1
    assert local_workers(None, profile, "cpu") == (os.cpu_count() or 1)
    assert local_workers(3, profile, "cuda") == 3
