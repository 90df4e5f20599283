"""The contract every registered algorithm passes (smoke profile, ToyVelocity)."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest
import torch

from benchmark.data import load_dataset
from benchmark.interface import Algorithm, Policy, TrainContext, UnknownStageError, to_torch
from benchmark.profiles import load_profile, resolve_config
from benchmark.registry import ALGORITHMS, load
from benchmark.runner.trainer import rng_state, seed_everything, set_rng_state
from benchmark.tasks import get_task

TASK = "ToyVelocity"
METRIC_KEY = re.compile(r"[a-z0-9_]+/[A-Za-z0-9_]+")  # OSRL keeps names like loss/D_kl


def _build(name: str, seed: int = 0, init_seed: int | None = None):
    """`init_seed` (default: `seed`) seeds the global RNGs the networks are initialised from."""
    entry = load(name)
    task = get_task(TASK)
    config = resolve_config(name, entry.config_cls, TASK, load_profile("smoke"), {})
    seed_everything(seed if init_seed is None else init_seed)
    context = TrainContext(
        task=task,
        dataset=load_dataset(task),
        cost_limit=task.drcorl_cost_limit,
        seed=seed,
        device=torch.device("cpu"),
        cost_limits=(task.drcorl_cost_limit,),
    )
    return entry, entry.cls(entry.config_cls(**config), context)


def _train_a_little(algorithm, steps: int = 3) -> list[dict]:
    rng = np.random.default_rng(0)
    logs = []
    for stage in algorithm.stages:
        source = algorithm.batch_source(stage.name)
        for _ in range(min(steps, stage.steps)):
            batch = to_torch(source.sample(rng, min(stage.batch_size, 64)), torch.device("cpu"))
            logs.append(algorithm.update(stage.name, batch))
    return logs


def _actions(algorithm, obs: np.ndarray) -> np.ndarray:
    policy = algorithm.policy(get_task(TASK).drcorl_cost_limit, obs.shape[0])
    assert isinstance(policy, Policy)
    policy.reset(obs, np.ones(obs.shape[0], dtype=bool))
    return np.asarray(policy.act(obs))


@pytest.fixture(params=sorted(ALGORITHMS))
def algorithm_name(request):
    return request.param


def test_algorithm_contract(algorithm_name):
    entry, algorithm = _build(algorithm_name)
    assert isinstance(algorithm, Algorithm)
    assert algorithm.stages, "an algorithm has at least one stage"
    names = [s.name for s in algorithm.stages]
    assert len(set(names)) == len(names), "stage names are unique"
    shared = [s.shared_across_cost_limits for s in algorithm.stages]
    assert shared == sorted(shared, reverse=True), "shared stages come first"
    for stage in algorithm.stages:
        assert stage.steps > 0 and stage.batch_size > 0

    for log in _train_a_little(algorithm):
        assert all(isinstance(v, float) and math.isfinite(v) for v in log.values()), log
        assert all(METRIC_KEY.fullmatch(k) for k in log), f"metric keys are group/name: {log}"

    task = get_task(TASK)
    obs = load_dataset(task).observations[:7]
    first = _actions(algorithm, obs)
    assert first.shape == (7, task.act_dim)
    assert np.all(np.abs(first) <= 1.0 + 1e-6), "actions lie in [-1, 1]"
    assert np.allclose(first, _actions(algorithm, obs)), "evaluation actions are deterministic"

    buffer = io.BytesIO()
    torch.save(algorithm.state_dict(), buffer)
    buffer.seek(0)
    _, fresh = _build(algorithm_name, seed=1)
    fresh.load_state_dict(torch.load(buffer, weights_only=False))
    assert np.allclose(first, _actions(fresh, obs), atol=1e-6), "state_dict round trip"


def test_config_documents_every_field(algorithm_name):
    """Every Config field has a docstring line under it (checked in the source)."""
    import dataclasses
    import inspect

    entry = load(algorithm_name)
    source = inspect.getsource(entry.config_cls).splitlines()
    for field in dataclasses.fields(entry.config_cls):
        index = next(
            i for i, line in enumerate(source) if line.strip().startswith(f"{field.name}:")
        )
        following = next(
            line.strip() for line in source[index + 1 :] if not line.strip().startswith("#")
        )
        assert following.startswith(('"""', "'''", 'r"""')), f"{field.name} lacks a docstring"


# ----------------------------------------------------------------------------- resume


def _schedule(algorithm, steps_per_stage: int = 3) -> list[tuple[str, dict]]:
    """The (stage, batch) sequence of a short training, sampled once so two runs see the same."""
    rng = np.random.default_rng(0)
    schedule = []
    for stage in algorithm.stages:
        source = algorithm.batch_source(stage.name)
        for _ in range(min(steps_per_stage, stage.steps)):
            sampled = source.sample(rng, min(stage.batch_size, 64))
            schedule.append((stage.name, to_torch(sampled, torch.device("cpu"))))
    return schedule


def _assert_same(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), f"{where} differs"
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert set(a) == set(b), f"{where}: keys differ"
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), f"{where} differs"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_resume_matches_an_uninterrupted_run(algorithm_name):
    """Train k steps, save, load into a fresh instance, train k more: every tensor of the state
    equals that of a run that was never interrupted (the runner restores its RNGs as here)."""
    _, uninterrupted = _build(algorithm_name)
    schedule = _schedule(uninterrupted)
    half = len(schedule) // 2
    for stage, batch in schedule[:half]:
        uninterrupted.update(stage, batch)
    buffer = io.BytesIO()
    torch.save(uninterrupted.state_dict(), buffer)
    rng = rng_state(np.random.default_rng(0))
    for stage, batch in schedule[half:]:
        uninterrupted.update(stage, batch)

    # the same run (seed), another initialisation: the checkpoint must hold everything
    _, resumed = _build(algorithm_name, init_seed=1)
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer, weights_only=False))
    set_rng_state(rng, np.random.default_rng(0))
    for stage, batch in schedule[half:]:
        resumed.update(stage, batch)
    _assert_same(uninterrupted.state_dict(), resumed.state_dict(), algorithm_name)


# ----------------------------------------------------------------------------- stages, batches


def test_an_unknown_stage_raises_the_one_error(algorithm_name):
    _, algorithm = _build(algorithm_name)
    stage = algorithm.stages[0]
    batch = to_torch(algorithm.batch_source(stage.name).sample(np.random.default_rng(0), 8), "cpu")
    with pytest.raises(UnknownStageError, match="no_such_stage"):
        algorithm.batch_source("no_such_stage")
    with pytest.raises(UnknownStageError, match="no_such_stage"):
        algorithm.update("no_such_stage", batch)


class _ReadingBatch(dict):
    """A batch that remembers which columns `update` read."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def items(self):
        self.read.update(self.keys())
        return super().items()

    def values(self):
        self.read.update(self.keys())
        return super().values()


def test_batch_source_yields_the_columns_update_reads(algorithm_name):
    _, algorithm = _build(algorithm_name)
    rng = np.random.default_rng(0)
    for stage in algorithm.stages:
        sampled = algorithm.batch_source(stage.name).sample(rng, min(stage.batch_size, 16))
        batch = _ReadingBatch(to_torch(sampled, torch.device("cpu")))
        algorithm.update(stage.name, batch)  # a column update needs but the source lacks: KeyError
        assert batch.read, f"{stage.name}: update read no column of its batch"
        assert batch.read <= set(sampled), f"{stage.name}: read {batch.read - set(sampled)}"


def test_a_cost_conditioned_policy_serves_two_limits(algorithm_name):
    entry, algorithm = _build(algorithm_name)
    if not entry.cost_conditioned:
        pytest.skip("trains one policy per cost limit")
    _train_a_little(algorithm)
    task = get_task(TASK)
    obs = load_dataset(task).observations[:5]
    low, high = algorithm.policy(5.0, 5), algorithm.policy(40.0, 5)
    for policy in (low, high, low):  # the second limit's policy leaves the first one intact
        policy.reset(obs, np.ones(5, dtype=bool))
        actions = np.asarray(policy.act(obs))
        assert actions.shape == (5, task.act_dim) and np.all(np.abs(actions) <= 1.0 + 1e-6)
        policy.observe(np.zeros(5), np.ones(5), np.zeros(5, dtype=bool))
        assert np.all(np.isfinite(policy.act(obs)))


def test_every_algorithm_has_smoke_and_demo_budgets(algorithm_name):
    import yaml

    from benchmark.profiles import CONFIG_DIR

    spec = yaml.safe_load((CONFIG_DIR / "algorithms" / f"{algorithm_name}.yaml").read_text())
    budgets = spec.get("budgets") or {}
    assert {"smoke", "demo"} <= set(budgets), f"{algorithm_name}: budgets {sorted(budgets)}"
