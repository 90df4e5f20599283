"""One run: resolve the config, train the stages, evaluate, write the record(s).

The runner owns every loop. It seeds python/numpy/torch, samples each stage's minibatches with
its own generator, checkpoints atomically every N steps (and every T seconds, and at the next
step boundary after a preemption signal), resumes from the last checkpoint, reuses the
artifacts of stages that do not depend on the cost limit, evaluates the final iterate on fixed
seeds, and writes each record atomically as the very last step. Cost-conditioned algorithms are
trained once and evaluated at each of their cost limits, one record per limit.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import os
import platform
import random
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark import results as results_mod
from benchmark.data import load_dataset
from benchmark.data.dataset import Dataset
from benchmark.errors import ConfigError
from benchmark.evaluate import EVAL_SEED_BASE, PROTOCOLS, evaluate
from benchmark.interface import TrainContext
from benchmark.paths import results_dir as default_results_dir
from benchmark.profiles import Profile, load_profile, resolve_config
from benchmark.registry import AlgorithmEntry, load
from benchmark.tasks import TaskSpec, get_task

PACKAGES = (
    "torch",
    "numpy",
    "gymnasium",
    "mujoco",
    "safety-gymnasium",
    "bullet-safety-gym",
    "dsrl",
    "osrl-lib",
    "submitit",
    "h5py",
)
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


@dataclass(frozen=True)
class RunSpec:
    """What to run. `cost_limit` None means the profile's limit(s) for the task."""

    algorithm: str
    task: str
    seed: int = 0
    cost_limit: float | None = None
    profile: str = "demo"
    overrides: dict[str, Any] = field(default_factory=dict)
    data: str | None = None
    """Data source (`auto`, `toy`, `dsrl`, `generated`); None means the profile's."""
    data_path: str | None = None
    device: str | None = None


@dataclass
class RunPlan:
    """A resolved run: its identity, and the ids of the records it will write."""

    spec: RunSpec
    profile: Profile
    entry: AlgorithmEntry
    task: TaskSpec
    config: dict[str, Any]
    dataset: Dataset
    train_cost_limit: float
    eval_cost_limits: tuple[float, ...]
    train_id: str
    record_ids: dict[float, str]

    @property
    def protocol(self) -> str:
        return self.profile.protocol

    def work_dir(self, results: Path) -> Path:
        return Path(results) / "work" / self.profile.name / self.train_id

    def record_paths(self, results: Path) -> list[Path]:
        return [
            results_mod.record_path(results, self.profile.name, rid)
            for rid in self.record_ids.values()
        ]

    def is_done(self, results: Path) -> bool:
        return all(results_mod.load_record(p) is not None for p in self.record_paths(results))

    def label(self) -> str:
        limits = "/".join(f"{k:g}" for k in self.eval_cost_limits)
        return f"{self.entry.name} {self.task.name} kappa={limits} seed={self.spec.seed}"


def stable_hash(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_run(spec: RunSpec, dataset_cache: dict | None = None) -> RunPlan:
    """Resolve everything that decides a run's identity (loads the dataset for its sha256)."""
    profile = load_profile(spec.profile)
    task = get_task(spec.task)
    entry = load(spec.algorithm)
    if not 0 <= spec.seed < EVAL_SEED_BASE:
        raise ConfigError(f"seed must be in [0, {EVAL_SEED_BASE}), got {spec.seed}")
    config = resolve_config(entry.name, entry.config_cls, task.name, profile, spec.overrides)
    limits = (
        (spec.cost_limit,)
        if spec.cost_limit is not None
        else profile.limits_for(task, entry.name)
    )
    if any(k <= 0 for k in limits):
        raise ConfigError(f"cost limits must be positive, got {list(limits)}")
    dataset = _cached_dataset(task, spec.data or profile.data, spec.data_path, dataset_cache)
    identity = {
        "algorithm": entry.name,
        "task": task.name,
        "seed": spec.seed,
        "config": config,
        "dataset_sha256": dataset.sha256,
        "protocol": profile.protocol,
    }
    if entry.cost_conditioned:
        identity["cost_limits"] = sorted(limits)
        train_limit = max(limits)
    else:
        if len(limits) != 1:
            raise ConfigError(
                f"{entry.name} trains at one cost limit, and profile {profile.name} has "
                f"{list(limits)} for {task.name}: pass --cost-limit"
            )
        identity["cost_limit"] = limits[0]
        train_limit = limits[0]
    train_id = stable_hash(identity)
    evaluation = {"episodes": profile.eval_episodes, "normalisation": profile.protocol}
    record_ids = {
        k: stable_hash({**identity, "eval_cost_limit": k, "evaluation": evaluation}) for k in limits
    }
    return RunPlan(
        spec,
        profile,
        entry,
        task,
        config,
        dataset,
        train_limit,
        tuple(limits),
        train_id,
        record_ids,
    )


def _cached_dataset(task: TaskSpec, source: str, path: str | None, cache: dict | None) -> Dataset:
    key = (task.name, source, path)
    if cache is not None and key in cache:
        return cache[key]
    dataset = load_dataset(task, source=source, path=path)
    if cache is not None:
        cache[key] = dataset
    return dataset


# ----------------------------------------------------------------------------- device, seeds


def pick_device(requested: str | None) -> torch.device:
    if requested:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"--device {requested}: CUDA is not available on this machine")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(sampler: np.random.Generator) -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "sampler": sampler.bit_generator.state,
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, sampler: np.random.Generator) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    sampler.bit_generator.state = state["sampler"]
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- preemption


class PreemptionGuard:
    """Defers preemption signals to the next step boundary, where a consistent checkpoint is
    written; then hands the signal to whoever handled it before (submitit requeues the job;
    a plain process exits with 128 + signum)."""

    def __init__(self) -> None:
        self.pending: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> PreemptionGuard:
        with contextlib.suppress(ValueError):  # not the main thread: no signal handling
            for sig in PREEMPTION_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._defer)
        return self

    def _defer(self, signum: int, frame: Any) -> None:
        self.pending = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def deliver(self, log: logging.Logger) -> None:
        """After the checkpoint: pass the pending signal on to the previous handler."""
        signum, self.pending = self.pending, None
        if signum is None:
            return
        previous = self._previous.get(signum, signal.SIG_DFL)
        log.warning("signal %s: checkpoint written, handing over", signal.Signals(signum).name)
        if signum == signal.SIGTERM:
            # scancel, `scontrol requeue` or a local kill: stop now rather than train on until
            # SIGKILL (submitit would only log and ignore it); Slurm requeues on its own
            raise SystemExit(128 + signum)
        if callable(previous):
            previous(signum, None)  # submitit's USR2 handler: checkpoint() then requeue and exit
        elif previous == signal.SIG_DFL:
            raise SystemExit(128 + signum)


# ----------------------------------------------------------------------------- training


@dataclass
class Progress:
    stage_index: int = 0
    step: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    log_bytes: int = 0
    resumed_from: dict | None = None
    artifact: str | None = None


class Trainer:
    """Drives one algorithm through its stages with checkpoints; owns the work folder."""

    def __init__(self, plan: RunPlan, results: Path, log: logging.Logger, device: torch.device):
        self.plan = plan
        self.results = Path(results)
        self.log = log
        self.device = device
        self.work = plan.work_dir(results)
        self.work.mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = self.work / "checkpoint.pt"
        self.log_path = self.work / "train_log.csv"
        self.sampler = np.random.default_rng(plan.spec.seed)
        self.env_used = False
        self.algorithm = None
        self.progress = Progress()
        self._last_checkpoint = time.monotonic()

    def _make_env(self, num_envs: int):
        from benchmark.envs import make_vector_env

        self.env_used = True
        return make_vector_env(self.plan.task, num_envs)

    def build(self) -> None:
        plan = self.plan
        seed_everything(plan.spec.seed)
        context = TrainContext(
            task=plan.task,
            dataset=plan.dataset,
            cost_limit=plan.train_cost_limit,
            seed=plan.spec.seed,
            device=self.device,
            protocol=plan.protocol,
            cost_limits=plan.eval_cost_limits,
            make_env=self._make_env if PROTOCOLS[plan.protocol][2] else None,
        )
        config = plan.entry.config_cls(**plan.config)
        self.algorithm = plan.entry.cls(config, context)
        if not self._resume():
            self._reuse_artifact()

    def _resume(self) -> bool:
        if not self.checkpoint_path.exists():
            return False
        state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=False)
        if state.get("train_id") != self.plan.train_id:
            self.log.warning("ignoring a checkpoint of another run in %s", self.work)
            return False
        self.algorithm.load_state_dict(state["algorithm"])
        set_rng_state(state["rng"], self.sampler)
        self.progress = Progress(**state["progress"])
        stage = self._stage_name(self.progress.stage_index)
        self.progress.resumed_from = {"stage": stage, "step": self.progress.step}
        self.log.info("resumed from checkpoint at %s step %d", stage, self.progress.step)
        self.env_used = state.get("env_used", False)
        self._truncate_log(self.progress.log_bytes)
        return True

    def _stage_name(self, index: int) -> str:
        stages = self.algorithm.stages
        return stages[index].name if index < len(stages) else "done"

    def _artifact_path(self) -> Path | None:
        shared = [s.name for s in self.algorithm.stages if s.shared_across_cost_limits]
        if not shared:
            return None
        plan = self.plan
        key = stable_hash(
            {
                "algorithm": plan.entry.name,
                "task": plan.task.name,
                "seed": plan.spec.seed,
                "config": plan.config,
                "dataset_sha256": plan.dataset.sha256,
                "stages": shared,
            }
        )
        return self.results / "artifacts" / plan.entry.name / f"{key}.pt"

    def _reuse_artifact(self) -> None:
        path = self._artifact_path()
        if path is None or not path.exists():
            return
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.algorithm.load_state_dict(state["algorithm"])
        set_rng_state(state["rng"], self.sampler)
        self.progress.stage_index = state["stage_index"]
        self.progress.stage_seconds = dict(state["stage_seconds"])
        self.progress.artifact = path.stem
        self.log.info("reused shared stages from artifact %s", path.name)

    def _save(self, path: Path, payload: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(payload, tmp)
        os.replace(tmp, path)

    def checkpoint(self) -> None:
        self._save(
            self.checkpoint_path,
            {
                "train_id": self.plan.train_id,
                "algorithm": self.algorithm.state_dict(),
                "rng": rng_state(self.sampler),
                "progress": {k: v for k, v in vars(self.progress).items() if k != "resumed_from"},
                "env_used": self.env_used,
            },
        )
        self._last_checkpoint = time.monotonic()
        _write_status(
            self.work,
            "running",
            step=self.progress.step,
            stage=self._stage_name(self.progress.stage_index),
        )

    def _save_artifact(self) -> None:
        path = self._artifact_path()
        if path is None or path.exists():
            return
        self._save(
            path,
            {
                "algorithm": self.algorithm.state_dict(),
                "rng": rng_state(self.sampler),
                "stage_index": self.progress.stage_index,
                "stage_seconds": self.progress.stage_seconds,
            },
        )
        self.log.info("saved shared stages as artifact %s", path.name)

    def _truncate_log(self, size: int) -> None:
        if self.log_path.exists():
            with open(self.log_path, "r+b") as handle:
                handle.truncate(size)

    def _append_log(self, rows: list[tuple]) -> None:
        new = not self.log_path.exists() or self.log_path.stat().st_size == 0
        with open(self.log_path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["stage", "step", "seconds", "metric", "value"])
            writer.writerows(rows)
        self.progress.log_bytes = self.log_path.stat().st_size

    def _checkpoint_due(self, guard: PreemptionGuard) -> bool:
        profile = self.plan.profile
        return (
            guard.pending is not None
            or self.progress.step % max(profile.checkpoint_every, 1) == 0
            or time.monotonic() - self._last_checkpoint > profile.checkpoint_seconds
        )

    def train(self, guard: PreemptionGuard, show_progress: bool = True) -> None:
        from tqdm.auto import tqdm

        stages = self.algorithm.stages
        while self.progress.stage_index < len(stages):
            stage = stages[self.progress.stage_index]
            source = self.algorithm.batch_source(stage.name)
            started = time.monotonic() - self.progress.stage_seconds.get(stage.name, 0.0)
            bar = tqdm(
                total=stage.steps,
                initial=self.progress.step,
                disable=not show_progress,
                desc=f"{self.plan.entry.name}/{stage.name}",
                leave=False,
                mininterval=2.0,
                file=sys.stderr,
            )
            pending_rows: list[tuple] = []
            while self.progress.step < stage.steps:
                batch = _to_torch(source.sample(self.sampler, stage.batch_size), self.device)
                metrics = self.algorithm.update(stage.name, batch)
                self.progress.step += 1
                bar.update(1)
                if self.progress.step % self.plan.profile.log_every == 0:
                    elapsed = round(time.monotonic() - started, 3)
                    pending_rows += [
                        (stage.name, self.progress.step, elapsed, k, float(v))
                        for k, v in metrics.items()
                    ]
                if self._checkpoint_due(guard):
                    self.progress.stage_seconds[stage.name] = time.monotonic() - started
                    self._append_log(pending_rows)
                    pending_rows = []
                    self.checkpoint()
                    guard.deliver(self.log)
            bar.close()
            self._append_log(pending_rows)
            self.progress.stage_seconds[stage.name] = time.monotonic() - started
            self.progress.stage_index += 1
            self.progress.step = 0
            next_shared = (
                self.progress.stage_index < len(stages)
                and stages[self.progress.stage_index].shared_across_cost_limits
            )
            if stage.shared_across_cost_limits and not next_shared:
                self._save_artifact()
            self.checkpoint()
            guard.deliver(self.log)


def _to_torch(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in batch.items():
        array = np.asarray(value)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        out[key] = torch.as_tensor(array, device=device)
    return out


# ----------------------------------------------------------------------------- records


SNAPSHOT_INFO = "SNAPSHOT.json"


def git_state(root: Path | None = None) -> dict:
    """Commit and dirtiness of the code that runs; inside a sweep's code snapshot, those of
    the checkout the snapshot was taken from."""
    root = root or Path(__file__).resolve().parents[1]
    info = root / SNAPSHOT_INFO
    if info.exists():
        return {**json.loads(info.read_text()), "path": str(root)}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = ["git", "status", "--porcelain", "--untracked-files=no"]
        dirty = subprocess.run(status, cwd=root, capture_output=True, text=True, timeout=10).stdout
        return {"git_commit": commit, "dirty": bool(dirty.strip()), "path": str(root)}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "dirty": False, "path": str(root)}


def _packages() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _hardware(device: torch.device) -> dict:
    info = {
        "device": str(device),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "hostname": platform.node(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _dataset_block(plan: RunPlan, cost_limit: float) -> dict:
    from benchmark.data.card import dataset_card

    card = dataset_card(plan.dataset, plan.task, cost_limit)
    keep = (
        "n_transitions",
        "n_trajectories",
        "best_safe_return_normalised",
        "fraction_safe",
        "return_range",
        "cost_range",
    )
    return {
        "source": plan.dataset.source,
        "path": plan.dataset.path,
        "sha256": plan.dataset.sha256,
        "card": {k: card[k] for k in keep if k in card},
    }


def build_record(
    plan: RunPlan,
    trainer: Trainer,
    cost_limit: float,
    metrics: dict,
    timing: dict,
    device: torch.device,
) -> dict:
    label, _, _ = PROTOCOLS[plan.protocol]
    return {
        "schema_version": results_mod.SCHEMA_VERSION,
        "id": plan.record_ids[cost_limit],
        "train_id": plan.train_id,
        "algorithm": plan.entry.name,
        "task": plan.task.name,
        "cost_limit": float(cost_limit),
        "seed": plan.spec.seed,
        "profile": plan.profile.name,
        "protocol": {
            "name": plan.protocol,
            "cost_normalisation": label,
            "eval_episodes": plan.profile.eval_episodes,
            "online": trainer.env_used,
            "final_iterate": True,
        },
        "config": plan.config,
        "dataset": _dataset_block(plan, cost_limit),
        "code": git_state(),
        "packages": _packages(),
        "hardware": _hardware(device),
        "timing": timing,
        "metrics": metrics,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _write_status(work: Path, state: str, **extra: Any) -> None:
    payload = {
        "state": state,
        "pid": os.getpid(),
        "host": platform.node(),
        "updated": time.time(),
        **extra,
    }
    results_mod.atomic_write_text(work / "status.json", json.dumps(payload))


def _run_logger(work: Path) -> logging.Logger:
    log = logging.getLogger(f"benchmark.run.{work.name}")
    log.setLevel(logging.INFO)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    work.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(work / "run.log")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(file_handler)
    return log


def execute(
    spec: RunSpec,
    results_dir: Path | None = None,
    show_progress: bool = False,
    dataset_cache: dict | None = None,
) -> list[dict]:
    """Train (or resume) and evaluate one run; write and return its record(s).

    Finished runs are not repeated: when every record of the run exists and validates, they
    are returned as they are.
    """
    results = Path(results_dir) if results_dir is not None else default_results_dir()
    plan = plan_run(spec, dataset_cache)
    if plan.is_done(results):
        return [results_mod.load_record(p) for p in plan.record_paths(results)]
    return execute_plan(plan, results, show_progress)


def execute_plan(plan: RunPlan, results: Path, show_progress: bool = False) -> list[dict]:
    device = pick_device(plan.spec.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    work = plan.work_dir(results)
    log = _run_logger(work)
    log.info("run %s: %s on %s", plan.train_id, plan.label(), device)
    results_mod.atomic_write_text(
        work / "plan.json",
        json.dumps(
            {
                "train_id": plan.train_id,
                "algorithm": plan.entry.name,
                "task": plan.task.name,
                "seed": plan.spec.seed,
                "cost_limits": list(plan.eval_cost_limits),
                "record_ids": {str(k): v for k, v in plan.record_ids.items()},
                "config": plan.config,
            },
            indent=1,
        ),
    )
    _write_status(work, "running")
    started = time.monotonic()
    try:
        trainer = Trainer(plan, results, log, device)
        with PreemptionGuard() as guard:
            trainer.build()
            trainer.train(guard, show_progress=show_progress)
        records = _evaluate_all(plan, trainer, device, started, results)
    except BaseException as error:
        if not isinstance(error, SystemExit):
            log.error("failed: %s\n%s", error, traceback.format_exc())
            _write_status(
                work, "failed", error=f"{type(error).__name__}: {error}", log=str(work / "run.log")
            )
        raise
    _write_status(work, "done")
    log.info("done in %.1f s", time.monotonic() - started)
    return records


def _evaluate_all(
    plan: RunPlan, trainer: Trainer, device: torch.device, started: float, results: Path
) -> list[dict]:
    from benchmark.envs import make_vector_env

    env = make_vector_env(plan.task, plan.profile.num_eval_envs)
    evaluated = []
    try:
        for cost_limit in plan.eval_cost_limits:
            t0 = time.monotonic()
            seed_everything(EVAL_SEED_BASE + plan.spec.seed)
            policy = trainer.algorithm.policy(cost_limit, env.num_envs)
            metrics = evaluate(
                policy, env, plan.task, cost_limit, plan.protocol, plan.profile.eval_episodes
            )
            evaluated.append((cost_limit, metrics, time.monotonic() - t0))
    finally:
        env.close()
    records = []
    for cost_limit, metrics, eval_seconds in evaluated:
        timing = {
            "stages": dict(trainer.progress.stage_seconds),
            "evaluate": eval_seconds,
            "total": time.monotonic() - started,
            "resumed_from": trainer.progress.resumed_from,
            "artifact": trainer.progress.artifact,
        }
        record = build_record(plan, trainer, cost_limit, metrics, timing, device)
        records.append(record)
    for record in records:  # all evaluated first: a record on disk means a finished run
        results_mod.write_record(results, record)
    return records


def cli_run(args) -> int:
    from benchmark.profiles import parse_overrides

    spec = RunSpec(
        algorithm=args.algorithm,
        task=args.task,
        seed=args.seed,
        cost_limit=args.cost_limit,
        profile=args.profile,
        overrides=parse_overrides(args.overrides),
        data=None if args.data == "auto" else args.data,
        data_path=args.data_path,
        device=args.device,
    )
    results = Path(args.results) if args.results else default_results_dir()
    for r in execute(spec, results, show_progress=True):
        m = r["metrics"]
        path = results_mod.record_path(results, r["profile"], r["id"])
        print(
            f"{r['algorithm']} {r['task']} kappa={r['cost_limit']:g} seed={r['seed']}: "
            f"reward {m['normalised_reward']['mean']:.3f} cost {m['normalised_cost']['mean']:.3f}"
            f" ({r['protocol']['name']}, {r['protocol']['eval_episodes']} episodes) -> {path}"
        )
    return 0
