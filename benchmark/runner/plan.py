"""A run's identity: what to run (`RunSpec`), everything that decides its result (`RunPlan`),
and the hashes that name its records, its work folder and its shared-stage artifacts.

The hashes cover meaning only (algorithm, task, seed, resolved config, dataset content,
protocol, cost limits, evaluation): never the device, paths, logging switches or the commit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark import results as results_mod
from benchmark.data import load_dataset
from benchmark.data.dataset import Dataset
from benchmark.errors import ConfigError
from benchmark.evaluate import EVAL_SEED_BASE
from benchmark.profiles import Profile, load_profile, resolve_config
from benchmark.protocols import get_protocol
from benchmark.registry import AlgorithmEntry, load
from benchmark.tasks import TaskSpec, get_task
from benchmark.validation import PositiveFloat, check_value


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
    log: tuple[str, ...] = ()
    """Live views of the training log (`tensorboard`, `wandb`); recorded nowhere, never hashed."""
    budget_scale: float | None = None
    """Step counts of the budget set times this; None means the profile's `budget_scale`."""


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
    budget_scale: float = 1.0

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
        scale = f" budget x{self.budget_scale:g}" if self.budget_scale != 1 else ""
        return f"{self.entry.name} {self.task.name} kappa={limits} seed={self.spec.seed}{scale}"

    def artifact_path(
        self, results: Path, stages: list[str], reads: set[str] | None = None
    ) -> Path | None:
        """Where the state after the cost-limit-independent `stages` (a prefix of the
        algorithm's) is kept, keyed by what they depend on: the options they `read` (None =
        the whole config), never the cost limit. Shared by every cost limit's run and by every
        variant that differs only in later stages' options."""
        if not stages:
            return None
        config = identity_config(self.entry.config_cls, self.config)
        if reads is not None:
            config = {k: v for k, v in config.items() if k in reads}
        key = stable_hash(
            {
                "algorithm": self.entry.name,
                "task": self.task.name,
                "seed": self.spec.seed,
                "config": config,
                "dataset_sha256": self.dataset.sha256,
                "stages": stages,
            }
        )
        return Path(results) / "artifacts" / self.entry.name / f"{key}.pt"


def identity_config(config_cls: type, config: dict[str, Any]) -> dict[str, Any]:
    """The config as the run id sees it: an option a Config lists in `ID_NEUTRAL_DEFAULTS`
    (added after records existed, its default being the earlier behaviour) is left out while
    it has that value, so adding an option does not orphan every finished run."""
    neutral = getattr(config_cls, "ID_NEUTRAL_DEFAULTS", {})
    return {k: v for k, v in config.items() if not (k in neutral and v == neutral[k])}


def stable_hash(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_run(spec: RunSpec, dataset_cache: dict | None = None) -> RunPlan:
    """Resolve everything that decides a run's identity (loads the dataset for its sha256).

    Writes nothing: every error a bad spec can cause is raised here, before a work folder
    exists."""
    profile = load_profile(spec.profile)
    task = get_task(spec.task)
    if task.cannot_run():  # before any advice about its data
        raise ConfigError(task.cannot_run())
    entry = load(spec.algorithm)
    if not 0 <= spec.seed < EVAL_SEED_BASE:
        raise ConfigError(f"seed must be in [0, {EVAL_SEED_BASE}), got {spec.seed}")
    scale = spec.budget_scale if spec.budget_scale is not None else profile.budget_scale
    scale = check_value(PositiveFloat, scale, "--budget-scale", "budget_scale")
    config = resolve_config(
        entry.name, entry.config_cls, task.name, profile, spec.overrides, budget_scale=scale
    )
    limits = (
        (spec.cost_limit,) if spec.cost_limit is not None else profile.limits_for(task, entry.name)
    )
    where = "--cost-limit" if spec.cost_limit is not None else f"profile {profile.name}"
    limits = tuple(check_value(PositiveFloat, k, where, "cost_limit") for k in limits)
    dataset = _cached_dataset(task, spec.data or profile.data, spec.data_path, dataset_cache)
    identity = {
        "algorithm": entry.name,
        "task": task.name,
        "seed": spec.seed,
        "config": identity_config(entry.config_cls, config),
        "dataset_sha256": dataset.sha256,
        "protocol": profile.protocol,
    }
    if scale != 1:
        identity["budget_scale"] = scale
    if profile.diagnostic_evals:
        # Never changes the trained weights, but a run without them cannot provide them.
        identity["diagnostics"] = [profile.diagnostic_evals, profile.diagnostic_episodes]
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
    evaluation = evaluation_identity(profile, entry.name)
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
        scale,
    )


def evaluation_identity(profile: Profile, algorithm: str) -> dict[str, Any]:
    """The part of a record's identity that says how it was evaluated.

    A protocol whose cost normalisation depends on the method (`paper`: C/(kappa+0.1) for
    DRCORL only) names the method's normalisation too. Protocols without an epsilon leave the
    key out, so honest records keep the ids they had before the key existed."""
    protocol = get_protocol(profile.protocol)
    evaluation: dict[str, Any] = {
        "episodes": profile.eval_episodes,
        "normalisation": protocol.name,
    }
    if protocol.kappa_epsilon:
        evaluation["cost_normalisation"] = protocol.cost_normalisation(algorithm)
    return evaluation


def _cached_dataset(task: TaskSpec, source: str, path: str | None, cache: dict | None) -> Dataset:
    key = (task.name, source, path)
    if cache is not None and key in cache:
        return cache[key]
    dataset = load_dataset(task, source=source, path=path)
    if cache is not None:
        cache[key] = dataset
    return dataset
