"""Training one run: seeds, the stage loop, checkpoints, preemption, artifacts, the CSV log,
and the runner's two services to an algorithm (training-time rollouts and candidates).

The runner owns every loop. It seeds python/numpy/torch, samples each stage's minibatches with
its own generator, checkpoints atomically every N steps (and every T seconds, and at the next
step boundary after a preemption signal), resumes from the last checkpoint, and reuses the
artifacts of stages that do not depend on the cost limit.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import errno
import json
import logging
import os
import platform
import random
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.atomic import atomic_path, atomic_write_text
from benchmark.errors import ConfigError, StorageError
from benchmark.evaluate import TrainingRollouts
from benchmark.interface import StatelessPolicy, TrainContext, to_torch
from benchmark.protocols import get_protocol
from benchmark.runner.plan import RunPlan

PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


# ----------------------------------------------------------------------------- device, seeds


def check_device_name(requested: str | None) -> torch.device | None:
    """The device `requested` names (None for auto), whether or not this machine has it."""
    if not requested:
        return None
    try:
        device = torch.device(requested)
    except RuntimeError:
        device = None
    # torch parses more names (mps, xpu, meta, ...) than the suite runs on
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {requested}: use cpu, cuda or cuda:N")
    return device


def pick_device(requested: str | None) -> torch.device:
    device = check_device_name(requested)
    if device is not None:
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"--device {requested}: CUDA is not available on this machine")
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {requested}: this machine has {torch.cuda.device_count()} GPU(s)"
            )
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


FUSABLE_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW)


def fuse_cpu_adam(algorithm: Any, device: torch.device) -> int:
    """Switch every Adam/AdamW the algorithm holds to torch's fused CPU kernel; the count.

    The same update rule as the per-tensor loop torch defaults to on the CPU, in one kernel
    per step instead of a dozen small ops per parameter: at the toy and sim sizes, where a step
    is mostly per-op overhead, osrl-lib's methods train 20-40% faster (`make bench`, section
    `demo`). The results agree with the default loop to rounding, not bit for bit. The
    optimizers are found by walking the algorithm's attributes (osrl-lib builds its own), so
    no algorithm file needs to know."""
    if device.type != "cpu":
        return 0
    seen: set[int] = set()
    count = 0

    def visit(obj: Any, depth: int) -> None:
        nonlocal count
        if id(obj) in seen or depth > 4 or isinstance(obj, (torch.Tensor, np.ndarray)):
            return
        seen.add(id(obj))
        if isinstance(obj, FUSABLE_OPTIMIZERS):
            for group in obj.param_groups:
                group["fused"], group["foreach"] = True, False
            count += 1
            return
        children = (
            obj.values() if isinstance(obj, dict)
            else obj if isinstance(obj, (list, tuple))
            else vars(obj).values() if hasattr(obj, "__dict__") and not isinstance(obj, type)
            else ()
        )  # fmt: skip
        for child in children:
            visit(child, depth + 1)

    visit(algorithm, 0)
    return count


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


# ----------------------------------------------------------------------------- files


@contextlib.contextmanager
def disk_full_is_an_error(path: Path) -> Iterator[None]:
    """A full disk (or quota) while writing `path` becomes one readable `StorageError`."""
    try:
        yield
    except OSError as error:
        if error.errno not in DISK_FULL:
            raise
        raise StorageError(
            f"no space left on the device while writing {path}: free some space (or point "
            f"--results at another disk) and run again; the run resumes from its last checkpoint"
        ) from error


def write_status(work: Path, state: str, **extra: Any) -> None:
    payload = {
        "state": state,
        "pid": os.getpid(),
        "host": platform.node(),
        "updated": time.time(),
        **extra,
    }
    path = work / "status.json"
    with disk_full_is_an_error(path):
        atomic_write_text(path, json.dumps(payload))


def save_torch(path: Path, payload: dict) -> None:
    with disk_full_is_an_error(path), atomic_path(path) as tmp:
        torch.save(payload, tmp)


def cpu_copy(state: Any) -> Any:
    """A deep copy of a state dict with every tensor on the CPU (kept off the GPU's memory)."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: cpu_copy(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(cpu_copy(v) for v in state)
    return copy.deepcopy(state)


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
    diagnostics: list[dict] = field(default_factory=list)
    diagnostic_env_steps: int = 0


DIAGNOSTIC_SEED_BASE = 3_000_000
"""Reset seeds of the diagnostic episodes: this + i, the same at every point, apart from the
evaluation (1e6 + i) and DRCORL's online (2e6 + ...) seeds."""


def diagnostic_points(steps: int, count: int) -> set[int]:
    """The 1-based steps of a stage after which a diagnostic evaluation runs: `count` evenly
    spaced, the last at the stage's end."""
    return {max(1, round(steps * j / count)) for j in range(1, count + 1)} if count else set()


@contextlib.contextmanager
def global_rng_untouched() -> Iterator[None]:
    """Restores python's, numpy's and torch's global generators afterwards, so whatever runs
    inside (environments, a policy) leaves the training's randomness as it was."""
    states = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


@dataclass
class Candidate:
    """A policy the algorithm offered during training, snapshotted by the runner."""

    state: dict
    """The algorithm's `state_dict()` when it was offered (a CPU deep copy)."""
    info: dict[str, float]
    """What the algorithm said about it (e.g. its online episode's return and cost)."""
    offered_at: dict
    """{"stage": name, "step": the update (1-based) during which it was offered}."""


class Trainer:
    """Drives one algorithm through its stages with checkpoints; owns the work folder.

    `build()` constructs the algorithm and writes nothing (a bad config fails there, before
    any folder exists); `restore()` resumes from a checkpoint or a shared-stage artifact;
    `train()` runs the remaining steps; `close()` releases the training-time envs."""

    def __init__(self, plan: RunPlan, results: Path, log: logging.Logger, device: torch.device):
        self.plan = plan
        self.results = Path(results)
        self.log = log
        self.device = device
        self.work = plan.work_dir(results)
        self.checkpoint_path = self.work / "checkpoint.pt"
        self.log_path = self.work / "train_log.csv"
        self.sampler = np.random.default_rng(plan.spec.seed)
        self.protocol = get_protocol(plan.protocol)
        self.algorithm = None
        self.context: TrainContext | None = None
        self.progress = Progress()
        self.candidate: Candidate | None = None
        self._rollouts: TrainingRollouts | None = None
        self._online_steps_before = 0  # counted by earlier attempts (from the checkpoint)
        self._last_checkpoint = time.monotonic()
        self._live: list | None = None  # opt-in TensorBoard / W&B views of the CSV log
        self.cpu_started = time.process_time()

    # ------------------------------------------------------------------ services to the algorithm

    def _rollout(self, act_fn, seeds) -> Any:
        if self._rollouts is None:
            from benchmark.envs import make_vector_env

            task = self.plan.task
            self._rollouts = TrainingRollouts(
                partial(make_vector_env, task), task.horizon, self.plan.profile.num_eval_envs
            )
        return self._rollouts(StatelessPolicy(act_fn), list(seeds))

    def _offer_candidate(self, info: dict[str, float]) -> None:
        stage = self._stage_name(self.progress.stage_index)
        self.candidate = Candidate(
            state=cpu_copy(self.algorithm.state_dict()),
            info={k: float(v) for k, v in info.items()},
            offered_at={"stage": stage, "step": self.progress.step + 1},
        )

    @property
    def online_env_steps(self) -> int:
        now = self._rollouts.env_steps if self._rollouts is not None else 0
        return self._online_steps_before + now

    def _diagnose(self, stage: str) -> None:
        """A diagnostic evaluation of the current policy (profile `diagnostic_evals`): the
        episodes' normalised reward and cost beside what the algorithm's optional
        `diagnostic_readout()` says (DRCORL: its cost estimates). Runs on its own envs and
        seeds, with the global generators restored after, and returns nothing to the
        algorithm, so the trained weights are those of a run without it."""
        from benchmark.envs import make_vector_env

        plan, profile = self.plan, self.plan.profile
        seeds = [DIAGNOSTIC_SEED_BASE + i for i in range(profile.diagnostic_episodes)]
        width = min(len(seeds), profile.num_eval_envs)
        started = time.monotonic()
        with global_rng_untouched(), torch.no_grad():
            rollouts = TrainingRollouts(
                partial(make_vector_env, plan.task), plan.task.horizon, width
            )
            try:
                policy = self.algorithm.policy(plan.train_cost_limit, width)
                episodes = rollouts(policy, seeds)
            finally:
                rollouts.close()
            readout = getattr(self.algorithm, "diagnostic_readout", None)
            extra = readout() if callable(readout) else {}
        epsilon = self.protocol.epsilon_for(plan.entry.name)
        metrics = episodes.metrics(plan.task, plan.train_cost_limit, epsilon)
        self.progress.diagnostic_env_steps += rollouts.env_steps
        self.progress.diagnostics.append(
            {
                "stage": stage,
                "step": self.progress.step,
                "normalised_reward": metrics["normalised_reward"]["mean"],
                "normalised_cost": metrics["normalised_cost"]["mean"],
                "cost": metrics["cost"]["mean"],
                "episodes": len(seeds),
                "seconds": round(time.monotonic() - started, 3),
                **{k: float(v) for k, v in extra.items()},
            }
        )

    def make_context(self) -> TrainContext:
        plan = self.plan
        name = plan.entry.name
        protocol = self.protocol
        return TrainContext(
            task=plan.task,
            dataset=plan.dataset,
            cost_limit=plan.train_cost_limit,
            seed=plan.spec.seed,
            device=self.device,
            protocol=protocol.name,
            cost_limits=plan.eval_cost_limits,
            normalise_cost=lambda cost, limit: float(protocol.normalise_cost(cost, limit, name)),
            rollout=self._rollout if protocol.online_allowed else None,
            offer_candidate=self._offer_candidate,
        )

    def new_algorithm(self):
        """A fresh instance of the run's algorithm (same config and context)."""
        config = self.plan.entry.config_cls(**self.plan.config)
        return self.plan.entry.cls(config, self.context)

    # ------------------------------------------------------------------ lifecycle

    def build(self) -> None:
        seed_everything(self.plan.spec.seed)
        self.context = self.make_context()
        self.algorithm = self.new_algorithm()
        fuse_cpu_adam(self.algorithm, self.device)

    def restore(self) -> None:
        """Resume from this run's checkpoint, else reuse the shared stages' artifact."""
        if not self._resume():
            self._reuse_artifact()

    def close(self) -> None:
        for live in self._live or []:
            live.close()
        self._live = None
        if self._rollouts is not None:
            self._online_steps_before = self.online_env_steps
            self._rollouts.close()
            self._rollouts = None

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
        self._online_steps_before = int(state.get("online_env_steps", 0))
        self.candidate = Candidate(**state["candidate"]) if state.get("candidate") else None
        self._truncate_log(self.progress.log_bytes)
        return True

    def _stage_name(self, index: int) -> str:
        stages = self.algorithm.stages
        return stages[index].name if index < len(stages) else "done"

    def _artifact_path(self, index: int) -> Path | None:
        """The artifact after shared stage `index` (0-based), keyed by what stages 0..index
        read; None when that stage is not shared."""
        stages = self.algorithm.stages[: index + 1]
        if not stages or not all(s.shared_across_cost_limits for s in stages):
            return None
        reads = [s.reads for s in stages]
        union = None if any(r is None for r in reads) else set().union(*reads)
        return self.plan.artifact_path(self.results, [s.name for s in stages], union)

    def _reuse_artifact(self) -> None:
        """Load the deepest shared stage's artifact that exists (none: train from scratch)."""
        for index in reversed(range(len(self.algorithm.stages))):
            path = self._artifact_path(index)
            if path is not None and path.exists():
                break
        else:
            return
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.algorithm.load_state_dict(state["algorithm"])
        set_rng_state(state["rng"], self.sampler)
        self.progress.stage_index = state["stage_index"]
        self.progress.stage_seconds = dict(state["stage_seconds"])
        self.progress.artifact = path.stem
        self._online_steps_before = int(state.get("online_env_steps", 0))
        self.candidate = Candidate(**state["candidate"]) if state.get("candidate") else None
        self.log.info("reused shared stages from artifact %s", path.name)

    def _candidate_payload(self) -> dict | None:
        return vars(self.candidate) if self.candidate is not None else None

    def checkpoint(self) -> None:
        save_torch(
            self.checkpoint_path,
            {
                "train_id": self.plan.train_id,
                "algorithm": self.algorithm.state_dict(),
                "rng": rng_state(self.sampler),
                "progress": {k: v for k, v in vars(self.progress).items() if k != "resumed_from"},
                "online_env_steps": self.online_env_steps,
                "candidate": self._candidate_payload(),
            },
        )
        self._last_checkpoint = time.monotonic()
        write_status(
            self.work,
            "running",
            step=self.progress.step,
            stage=self._stage_name(self.progress.stage_index),
        )

    def _save_artifact(self, index: int) -> None:
        path = self._artifact_path(index)
        if path is None or path.exists():
            return
        save_torch(
            path,
            {
                "algorithm": self.algorithm.state_dict(),
                "rng": rng_state(self.sampler),
                "stage_index": self.progress.stage_index,
                "stage_seconds": self.progress.stage_seconds,
                "online_env_steps": self.online_env_steps,
                "candidate": self._candidate_payload(),
            },
        )
        self.log.info("saved shared stages as artifact %s", path.name)

    def _truncate_log(self, size: int) -> None:
        if self.log_path.exists():
            with open(self.log_path, "r+b") as handle:
                handle.truncate(size)

    def _append_log(self, rows: list[tuple]) -> None:
        new = not self.log_path.exists() or self.log_path.stat().st_size == 0
        with disk_full_is_an_error(self.log_path), open(self.log_path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["stage", "step", "seconds", "metric", "value"])
            writer.writerows(rows)
        self.progress.log_bytes = self.log_path.stat().st_size
        if self.plan.spec.log and self._live is None:
            from benchmark.runner.live_log import make_live_loggers

            name = self.plan.label()
            self._live = make_live_loggers(
                self.plan.spec.log, self.work, name, self.plan.train_id, self.plan.config
            )
        for live in self._live or []:
            live.write(rows)

    def _checkpoint_due(self, guard: PreemptionGuard) -> bool:
        profile = self.plan.profile
        return (
            guard.pending is not None
            or self.progress.step % max(profile.checkpoint_every, 1) == 0
            or time.monotonic() - self._last_checkpoint > profile.checkpoint_seconds
        )

    def train(self, guard: PreemptionGuard, show_progress: bool = True) -> None:
        from tqdm.auto import tqdm

        self.work.mkdir(parents=True, exist_ok=True)
        stages = self.algorithm.stages
        while self.progress.stage_index < len(stages):
            stage = stages[self.progress.stage_index]
            source = self.algorithm.batch_source(stage.name)
            last = self.progress.stage_index == len(stages) - 1
            diagnose_at = diagnostic_points(stage.steps, self.plan.profile.diagnostic_evals)
            diagnose_at = diagnose_at if last else set()
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
            try:
                while self.progress.step < stage.steps:
                    batch = to_torch(source.sample(self.sampler, stage.batch_size), self.device)
                    metrics = self.algorithm.update(stage.name, batch)
                    self.progress.step += 1
                    bar.update(1)
                    if self.progress.step in diagnose_at:
                        self._diagnose(stage.name)
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
            finally:
                bar.close()  # also on an error: the one-line message then starts its line
            self._append_log(pending_rows)
            self.progress.stage_seconds[stage.name] = time.monotonic() - started
            self.progress.stage_index += 1
            self.progress.step = 0
            if stage.shared_across_cost_limits:
                self._save_artifact(self.progress.stage_index - 1)
            self.checkpoint()
            guard.deliver(self.log)
