"""Sweeps: expand a profile into runs, skip finished ones, submit the rest through submitit.

Local sweeps pack the runs into at most `max_parallel` submitit local jobs (one run per core,
one torch thread each). Slurm sweeps submit job arrays, split below the cluster's
MaxArraySize. Jobs run from a snapshot of the code taken at submission (so a requeued job runs
what was submitted) and resume from their checkpoints when requeued. Datasets are loaded (and
so validated) once here, before anything is submitted.

`status` counts done / running / failed / queued / missing from files alone: records, each
run's `status.json` heartbeat, and the submitit logs listed in `submissions.jsonl`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import platform
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.atomic import atomic_write_text
from benchmark.errors import BenchmarkError, ConfigError
from benchmark.paths import REPO_ROOT, results_flag
from benchmark.paths import results_dir as default_results_dir
from benchmark.profiles import Profile, load_profile, parse_overrides
from benchmark.runner.execution import execute
from benchmark.runner.plan import RunPlan, RunSpec, plan_run
from benchmark.runner.provenance import SNAPSHOT_INFO, git_state
from benchmark.runner.trainer import check_device_name, write_status
from benchmark.slurm_options import SlurmOptions
from benchmark.tasks import get_task

SNAPSHOT_PACKAGES = ("benchmark", "algorithms", "baselines")
LOCAL_TIMEOUT_MIN = 7 * 24 * 60  # local runs are never killed for time


def _run_cells(profile: Profile):
    """(algorithm, task, seed, limit or None) of every run of the profile, unplanned."""
    from benchmark.registry import load

    for algorithm in profile.algorithms:
        conditioned = load(algorithm).cost_conditioned
        for task_name in profile.tasks:
            limits = profile.limits_for(get_task(task_name), algorithm)
            for seed in profile.seeds:
                for limit in [None] if conditioned else list(limits):
                    yield algorithm, task_name, seed, limit


def overrides_by_algorithm(
    algorithms: tuple[str, ...], overrides: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The rule for a sweep's `--set`: an option applies to every algorithm of the sweep whose
    Config has it and to no other; an option none of them has is an error."""
    from dataclasses import fields

    from benchmark.registry import load

    keys = {a: {f.name for f in fields(load(a).config_cls)} for a in algorithms}
    unknown = [k for k in overrides if not any(k in names for names in keys.values())]
    if unknown:
        raise ConfigError(
            f"--set {', '.join(unknown)}: no algorithm of this sweep ({', '.join(algorithms)}) "
            "has that option"
        )
    return {a: {k: v for k, v in overrides.items() if k in keys[a]} for a in algorithms}


def describe_overrides(algorithms: tuple[str, ...], overrides: dict[str, Any]) -> list[str]:
    """One line per `--set` option that only some of the sweep's algorithms have."""
    per_algorithm = overrides_by_algorithm(algorithms, overrides)
    lines = []
    for key in overrides:
        having = [a for a in algorithms if key in per_algorithm[a]]
        if len(having) < len(algorithms):
            others = [a for a in algorithms if a not in having]
            lines.append(
                f"--set {key}: applies to {', '.join(having)}; not to {', '.join(others)} "
                "(their Config has no such option)"
            )
    return lines


def expand(
    profile: Profile,
    overrides: dict[str, Any],
    dataset_cache: dict,
    log: tuple[str, ...] = (),
    device: str | None = None,
    budget_scale: float | None = None,
) -> list[RunPlan]:
    """Every run of the profile: algorithms x tasks x seeds x cost limits (one run per
    (task, seed) for cost-conditioned algorithms). Each `--set` option goes to the algorithms
    whose Config has it (`overrides_by_algorithm`)."""

    per_algorithm = overrides_by_algorithm(profile.algorithms, overrides)
    scales = (budget_scale,) if budget_scale is not None else profile.budget_scales or (None,)
    plans = []
    for (algorithm, task_name, seed, limit), scale in itertools.product(
        _run_cells(profile), scales
    ):
        spec = RunSpec(
            algorithm=algorithm,
            task=task_name,
            seed=seed,
            cost_limit=limit,
            profile=profile.ref,
            overrides=per_algorithm[algorithm],
            log=log,
            device=device,
            budget_scale=scale,
        )
        plans.append(plan_run(spec, dataset_cache))
    return plans


def _is_requeue(error: Exception) -> bool:
    from submitit.core.utils import UncompletedJobError

    return isinstance(error, UncompletedJobError)


class SweepJob:
    """What a submitit job runs: one or more runs in turn, each skipped if already done.

    A failing run does not stop the others; the job fails at the end if any run failed.
    On preemption or timeout submitit calls `checkpoint`, and the requeued job resumes every
    run from its on-disk checkpoint.

    With `claims` (local sweeps), every worker gets every group of runs and takes the next
    group nobody has claimed yet (an exclusive file create in that folder): the workers stay
    busy until the queue is empty, however uneven the runs' lengths, instead of one worker
    finishing a fixed share early while the other still has minutes of work.
    """

    def __init__(self, specs: list[RunSpec] | list[list[RunSpec]], results: str, claims=None):
        self.groups = [g if isinstance(g, list) else [g] for g in specs]
        self.results = results
        self.claims = claims

    @property
    def specs(self) -> list[RunSpec]:
        return [spec for group in self.groups for spec in group]

    def _claim(self, index: int) -> bool:
        if self.claims is None:
            return True
        folder = Path(self.claims)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(folder / f"{index}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def __call__(self) -> list[str]:
        failures, done = [], []
        datasets: dict = {}  # one load per dataset for all the runs of this job
        for index, group in enumerate(self.groups):
            if not self._claim(index):
                continue
            failures += self._run_group(group, done, datasets)
        if failures:
            raise RuntimeError(f"{len(failures)} run(s) failed: " + "; ".join(failures))
        return done

    def _run_group(self, group: list[RunSpec], done: list[str], datasets: dict) -> list[str]:
        failures = []
        for spec in group:
            try:
                records = execute(spec, Path(self.results), dataset_cache=datasets)
                done.extend(r["id"] for r in records)
            except Exception as error:
                if _is_requeue(error):  # submitit is requeueing this job: let it
                    raise
                # the rest go on; the run's status.json holds the details
                failures.append(f"{spec.algorithm}/{spec.task}/seed{spec.seed}: {error}")
                _note_failure(spec, Path(self.results), error, datasets)
        return failures

    def checkpoint(self, *args: Any, **kwargs: Any):
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def one_line(error: BaseException) -> str:
    """The error as `status` shows it: its first line, at most 300 characters."""
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def _note_failure(spec: RunSpec, results: Path, error: BaseException, datasets: dict) -> None:
    """A run that failed before it wrote its own status (e.g. `--device cuda` on a node without
    CUDA) gets one, so `status` and the sweep count it and show its cause in one line."""
    try:
        plan = plan_run(spec, datasets)
    except Exception:  # the plan itself failed: only the job's log can tell (`_job_outcome`)
        return
    work = plan.work_dir(results)
    with contextlib.suppress(OSError, ValueError):
        if json.loads((work / "status.json").read_text()).get("state") == "failed":
            return  # the run wrote its own, with its log
    with contextlib.suppress(OSError):
        work.mkdir(parents=True, exist_ok=True)
        write_status(work, "failed", error=one_line(error), log="")


# ----------------------------------------------------------------------------- snapshot


def _code_files(root: Path) -> list[Path]:
    files = []
    for package in SNAPSHOT_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files.append(path)
    return files


def snapshot_code(results: Path, root: Path = REPO_ROOT) -> Path:
    """Copy the suite's packages into `<results>/snapshots/<content hash>/` (reused when the
    code has not changed) and return that folder; jobs import from it."""
    files = _code_files(root)
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    target = Path(results) / "snapshots" / digest.hexdigest()[:12]
    if target.exists():
        return target
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for path in files:
        dest = tmp / path.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
    # records made from the snapshot still name the commit it was taken from
    atomic_write_text(tmp / SNAPSHOT_INFO, json.dumps({**git_state(root), "source": str(root)}))
    try:
        os.replace(tmp, target)
    except OSError:  # another sweep made the same snapshot first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# ----------------------------------------------------------------------------- executors


def submitit_folder(results: Path, profile: str) -> Path:
    return Path(results) / "submitit" / profile


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def submit_local(plans: list[RunPlan], results: Path, folder: Path, max_parallel: int):
    import submitit

    executor = submitit.AutoExecutor(folder=folder / "%j", cluster="local")
    executor.update_parameters(timeout_min=LOCAL_TIMEOUT_MIN)
    groups = group_runs(plans)
    workers = max(1, min(max_parallel, len(groups)))
    claims = str(folder / f"claims-{time.time_ns()}")
    specs = [[p.spec for p in group] for group in groups]
    jobs = [executor.submit(SweepJob(specs, str(results), claims)) for _ in range(workers)]
    return jobs, [plans] * workers


def group_runs(plans: list[RunPlan]) -> list[list[RunPlan]]:
    """Runs of one (algorithm, task, seed) in one group, in order, so the first trains the
    stages they share and the others reuse them; groups in the profile's order."""
    groups: dict[tuple, list[RunPlan]] = {}
    for plan in plans:
        groups.setdefault((plan.entry.name, plan.task.name, plan.spec.seed), []).append(plan)
    return list(groups.values())


def submit_slurm(plans: list[RunPlan], results: Path, folder: Path, options: SlurmOptions):
    import submitit

    executor = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm")
    executor.update_parameters(**options.executor_parameters())
    jobs = []
    for chunk in _chunks(plans, options.max_array_size):
        with executor.batch():
            for plan in chunk:
                jobs.append(executor.submit(SweepJob([plan.spec], str(results))))
    return jobs


def _record_submission(folder: Path, executor: str, jobs: list, plans_per_job: list[list]):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "submissions.jsonl", "a") as handle:
        for job, plans in zip(jobs, plans_per_job):
            entry = {
                "time": time.time(),
                "executor": executor,
                "job_id": str(job.job_id),
                "stdout": str(job.paths.stdout),
                "stderr": str(job.paths.stderr),
                "result": str(job.paths.result_pickle),
                "host": platform.node(),
                "train_ids": [p.train_id for p in plans],
            }
            handle.write(json.dumps(entry) + "\n")


# ----------------------------------------------------------------------------- status


@dataclass
class RunStatus:
    plan: RunPlan
    state: str
    """done, corrupt, running, failed, queued or missing."""
    detail: str = ""
    log: str = ""


def _latest_submissions(folder: Path) -> dict[str, dict]:
    """train_id -> the latest submission entry that covers it."""
    path = folder / "submissions.jsonl"
    latest: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                entry = json.loads(line)
                for train_id in entry["train_ids"]:
                    latest[train_id] = entry
    return latest


def _job_outcome(entry: dict) -> tuple[str, str]:
    """('failed', why) when the submitit files show the job ended badly, else ('', '')."""
    stderr = Path(entry["stderr"])
    if stderr.exists():
        text = stderr.read_text(errors="replace")[-20000:]
        # a requeued or preempted job is not over: Slurm starts it again (same log, appended)
        text = "\n".join(
            line
            for line in text.splitlines()
            if "DUE TO JOB REQUEUE" not in line and "DUE TO PREEMPTION" not in line
        )
        for marker in ("CANCELLED", "DUE TO TIME LIMIT", "OUT OF MEMORY"):
            if marker in text:
                return "failed", f"job {entry['job_id']}: {marker.lower()}"
        if "Traceback" in text:
            return "failed", f"job {entry['job_id']}: {_last_exception(text)}"
    result = Path(entry["result"])
    if result.exists():
        import pickle

        with contextlib.suppress(Exception):
            outcome = pickle.loads(result.read_bytes())
            if outcome[0] == "error":
                return "failed", f"job {entry['job_id']} raised"
    return "", ""


def _last_exception(text: str) -> str:
    """The last `SomeError: message` line of a traceback, without the module path."""
    for line in reversed(text.splitlines()):
        match = re.match(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt)):\s*(.*)$", line)
        if match:
            return f"{match.group(1).rsplit('.', 1)[-1]}: {match.group(2)}"[:300]
    return "traceback"


def _local_job_gone(entry: dict) -> bool:
    """A local submitit job (its id is its process id) on this host whose process is gone
    without a result: it will never start the runs it was given."""
    if entry.get("executor") != "local" or entry.get("host") != platform.node():
        return False
    if Path(entry["result"]).exists():
        return False
    return _pid_gone(entry["job_id"])


def _pid_gone(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError):
        return False
    return False


def _process_gone(status: dict) -> bool:
    """A run that says it is running on this host but whose process no longer exists."""
    if status.get("host") != platform.node() or "pid" not in status:
        return False  # another node: only its heartbeat and the job logs can tell
    return _pid_gone(status["pid"])


def _corrupt_record(plan: RunPlan, results: Path) -> tuple[str, str] | None:
    """(path, reason) of a record file of `plan` that exists but cannot be read or validated."""
    from benchmark.errors import RecordError
    from benchmark.results import validate_record

    for path in plan.record_paths(results):
        if not path.exists():
            continue
        try:
            validate_record(json.loads(path.read_text()), where=str(path))
        except (OSError, ValueError, RecordError) as error:
            return str(path), " ".join(str(error).split())[:200] or type(error).__name__
    return None


def run_status(plan: RunPlan, results: Path, submissions: dict[str, dict]) -> RunStatus:
    if plan.is_done(results):
        return RunStatus(plan, "done")
    corrupt = _corrupt_record(plan, results)
    if corrupt is not None:
        return RunStatus(plan, "corrupt", corrupt[1], corrupt[0])
    work = plan.work_dir(results)
    entry = submissions.get(plan.train_id)
    job_log = entry["stderr"] if entry else ""
    status_path = work / "status.json"
    if status_path.exists():
        with contextlib.suppress(json.JSONDecodeError):
            status = json.loads(status_path.read_text())
            if status["state"] == "failed":
                log = status.get("log") or job_log
                return RunStatus(plan, "failed", status.get("error", ""), log)
            if status["state"] == "running":
                failed, why = _job_outcome(entry) if entry else ("", "")
                if failed and entry and entry["time"] <= status["updated"]:
                    return RunStatus(plan, "failed", why, job_log or str(work / "run.log"))
                if _process_gone(status):
                    why = f"process {status['pid']} ended without a record (killed?)"
                    return RunStatus(plan, "failed", why, str(work / "run.log"))
                return RunStatus(plan, "running", f"{status.get('stage', '')}", str(work))
    if entry:
        failed, why = _job_outcome(entry)
        if failed:
            return RunStatus(plan, "failed", why, job_log)
        if _local_job_gone(entry):
            why = f"job gone: process {entry['job_id']} ended before this run started"
            return RunStatus(plan, "failed", why, job_log)
        if not Path(entry["result"]).exists():
            return RunStatus(plan, "queued", f"job {entry['job_id']}", job_log)
    return RunStatus(plan, "missing")


def table_plans(profile: Profile, plans: list[RunPlan]) -> list[RunPlan]:
    """The runs the profile's table shows: every cost-conditioned run (one model serves all
    its limits) and the others at the table's cost limits; the rest of a profile (its other
    limits) is for the cost-limit figure."""
    return [
        p
        for p in plans
        if p.entry.cost_conditioned
        or set(p.eval_cost_limits) <= set(profile.table_limits_for(p.task))
    ]


def profile_status(
    profile: Profile,
    results: Path,
    overrides: dict | None = None,
    plans: list[RunPlan] | None = None,
):
    """Each run's state; `plans` (default: every run of the profile) narrows it."""
    plans = expand(profile, overrides or {}, {}) if plans is None else plans
    submissions = _latest_submissions(submitit_folder(results, profile.name))
    return [run_status(plan, results, submissions) for plan in plans]


def _print_status(statuses: list[RunStatus]) -> dict[str, int]:
    counts = {s: 0 for s in ("done", "running", "queued", "failed", "corrupt", "missing")}
    for status in statuses:
        counts[status.state] += 1
    print("  ".join(f"{k}: {v}" for k, v in counts.items()) + f"  (of {len(statuses)} runs)")
    for status in statuses:
        if status.state == "failed":
            print(f"  FAILED {status.plan.label()}: {status.detail}\n    log: {status.log}")
        if status.state == "corrupt":
            print(
                f"  CORRUPT {status.plan.label()}: {status.detail}\n    record: {status.log} "
                "(delete it and run the sweep again)"
            )
    return counts


# ----------------------------------------------------------------------------- CLI


def stray_invalid_files(profile: Profile, results: Path, statuses: list[RunStatus]) -> list:
    """(path, reason) of invalid files in the profile's runs folder that no run of its plan
    names: `table` refuses them too, so `status` must not pass over them."""
    from benchmark.results import read_records

    listed = {s.log for s in statuses if s.state == "corrupt"}
    return [
        (str(path), reason)
        for path, reason in read_records(results, profile.name).invalid
        if str(path) not in listed
    ]


def cli_status(args) -> int:
    results = Path(args.results) if args.results else default_results_dir()
    profile = load_profile(args.profile)
    statuses = profile_status(profile, results)
    counts = _print_status(statuses)
    stray = stray_invalid_files(profile, results, statuses)
    for path, reason in stray:
        print(
            f"  CORRUPT file of no planned run: {path}: {' '.join(reason.split())[:200]}\n"
            "    (table refuses the folder while it is there: delete or move it)"
        )
    return 1 if counts["failed"] or counts["corrupt"] or stray else 0


def _budget_text(config: dict) -> str:
    skip = ("warmup", "decay", "cosine")  # schedule lengths, not training budgets
    keys = [
        k for k in config if k.endswith(("steps", "_iterations")) and not any(w in k for w in skip)
    ]
    return ", ".join(f"{k}={config[k]:,}" for k in keys if isinstance(config[k], int))


def _describe(plans: list[RunPlan], todo: list[RunPlan], every: int | None = None) -> None:
    """What a sweep will do; `every`: the profile's number of runs when `plans` is narrowed."""
    where = "in the profile" if every in (None, len(plans)) else "selected"
    print(f"{len(plans)} runs {where}, {len(plans) - len(todo)} done, {len(todo)} to run")
    budgets: dict[str, set[str]] = {}
    for plan in plans:
        budgets.setdefault(plan.entry.name, set()).add(_budget_text(plan.config))
    for name, texts in budgets.items():
        print(f"  budget {name}: {' | '.join(sorted(texts))}")
    for plan in todo:
        print(f"  {plan.train_id}  {plan.label()}")


def local_workers(requested: int | None, profile: Profile, device: str | None) -> int:
    """How many local workers: --max-parallel, else the profile's `local.max_parallel`, else
    one per CPU core for CPU runs and ONE for runs that train on CUDA (a GPU shared by many
    workers runs each slower and can run out of memory; --max-parallel N shares it)."""
    chosen = requested or profile.local.get("max_parallel")
    if chosen:
        return int(chosen)
    if runs_on_cuda(device):
        print(
            "local sweep on CUDA: 1 worker, runs one after another on the GPU "
            "(--max-parallel N to share it)"
        )
        return 1
    return os.cpu_count() or 1


def runs_on_cuda(device: str | None) -> bool:
    """Whether the sweep's runs would train on CUDA on this machine (--device, else auto)."""
    if device:
        return device.startswith("cuda")
    import torch

    return torch.cuda.is_available()


def cli_sweep(args) -> int:
    results = (Path(args.results) if args.results else default_results_dir()).resolve()
    profile = load_profile(args.profile)
    overrides = parse_overrides(args.overrides)
    check_device_name(args.device)  # its availability is checked where each run trains
    every = None
    if args.task:  # before planning: the other tasks' datasets need not exist
        task = get_task(args.task).name
        if task not in profile.tasks:
            listed = ", ".join(profile.tasks)
            raise ConfigError(f"--task {args.task}: profile {profile.name} has {listed}")
        every = sum(1 for _ in _run_cells(profile))
        profile = dataclasses.replace(profile, tasks=(task,))
    for line in describe_overrides(profile.algorithms, overrides):
        print(line)
    plans = expand(profile, overrides, {}, tuple(args.log), args.device, args.budget_scale)
    if args.task:
        print(f"--task {task}: the {len(plans)} of the profile's {every} runs on it")
    every = every or len(plans)
    if args.table_only:
        selected = len(plans)
        plans = table_plans(profile, plans)
        print(f"--table-only: the {len(plans)} of these {selected} runs the table shows")
    todo = [p for p in plans if not p.is_done(results)]
    _describe(plans, todo, every)
    folder = submitit_folder(results, profile.name)
    if args.executor == "slurm":
        options = SlurmOptions.from_profile_and_args(profile, args)
        print(
            f"slurm: {json.dumps(options.executor_parameters())}, "
            f"max array size {options.max_array_size}"
        )
    if args.dry_run or not todo:
        return 0
    snapshot = snapshot_code(results)
    print(f"code snapshot: {snapshot}")
    with contextlib.chdir(snapshot):  # jobs start in, and import from, the snapshot
        if args.executor == "local":
            max_parallel = local_workers(args.max_parallel, profile, args.device)
            jobs, per_job = submit_local(todo, results, folder, int(max_parallel or 1))
        else:
            jobs = submit_slurm(todo, results, folder, options)
            per_job = [[p] for p in todo]
    _record_submission(folder, args.executor, jobs, per_job)
    print(f"submitted {len(todo)} runs as {len(jobs)} {args.executor} job(s); logs under {folder}")
    if not args.wait:
        flag = results_flag(args.results)
        print(f"follow with: python -m benchmark status --profile {args.profile}{flag}")
        return 0
    return _wait(jobs, profile, results, plans, todo)


def _wait(
    jobs: list, profile: Profile, results: Path, plans: list[RunPlan], todo: list[RunPlan]
) -> int:
    from benchmark.progress import SweepProgress, wait_with_progress

    errors = wait_with_progress(jobs, SweepProgress(todo, results), len(plans) - len(todo))
    for job, error in errors:  # reported below with each failed run's log path
        print(f"job {job.job_id} failed: {str(error).splitlines()[-1][:300]}")
    failed = len(errors)
    counts = _print_status(profile_status(profile, results, plans=plans))
    if failed or counts["failed"]:
        raise BenchmarkError(f"{counts['failed']} run(s) failed; see the logs listed above")
    return 0
