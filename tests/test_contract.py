"""The contract every registered algorithm passes (smoke profile, ToyVelocity)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from benchmark.data import load_dataset
from benchmark.interface import Algorithm, Policy, TrainContext, to_torch
from benchmark.profiles import load_profile, resolve_config
from benchmark.registry import ALGORITHMS, load
from benchmark.runner.trainer import seed_everything
from benchmark.tasks import get_task

TASK = "ToyVelocity"


def _build(name: str, seed: int = 0):
    entry = load(name)
    task = get_task(TASK)
    config = resolve_config(name, entry.config_cls, TASK, load_profile("smoke"), {})
    seed_everything(seed)
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
