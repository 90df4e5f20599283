"""Helpers for the DRCORL tests: a small algorithm on a given dataset, driven stage by stage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from algorithms.drcorl import DRCORL, Config
from benchmark.data.dataset import Dataset, from_arrays
from benchmark.interface import TrainContext, to_torch
from benchmark.protocols import get_protocol
from benchmark.tasks import get_task

SMALL = {
    "score_hidden": 32,
    "score_blocks": 1,
    "score_fourier_dim": 16,
    "score_cond_dim": 16,
    "critic_hidden": 32,
    "policy_hidden": 32,
    "behavior_batch_size": 64,
    "critic_batch_size": 64,
    "policy_batch_size": 32,
    "behavior_steps": 3,
    "critic_steps": 3,
    "extract_steps": 3,
    "adapt_iterations": 6,
    "warmup_iterations": 1,
    "cost_estimate_states": 64,
    "pe_init_steps": 3,
    "pe_batch_size": 32,
}


def toy_dataset(obs, actions, rewards, costs, done=None) -> Dataset:
    """One-step transitions (next_obs = obs) of the given arrays, for task ToyVelocity."""
    n = len(obs)
    done = np.ones(n, dtype=bool) if done is None else done
    return from_arrays(
        "ToyVelocity",
        {
            "observations": obs,
            "next_observations": obs,
            "actions": actions,
            "rewards": rewards,
            "costs": costs,
            "terminals": done,
            "timeouts": np.zeros(n, dtype=bool),
        },
        source="toy",
    )


def build(
    dataset: Dataset,
    seed: int = 0,
    cost_limit: float = 10.0,
    protocol="honest",
    rollout=None,
    offer_candidate=None,
    **config,
) -> DRCORL:
    torch.manual_seed(seed)
    ctx = TrainContext(
        task=get_task("ToyVelocity"),
        dataset=dataset,
        cost_limit=cost_limit,
        seed=seed,
        device=torch.device("cpu"),
        protocol=protocol,
        normalise_cost=lambda c, k: float(get_protocol(protocol).normalise_cost(c, k, "drcorl")),
        rollout=rollout,
        **({"offer_candidate": offer_candidate} if offer_candidate is not None else {}),
    )
    return DRCORL(Config(**{**SMALL, **config}), ctx)


def train(algo: DRCORL, stages=None, seed: int = 0) -> dict[str, list[dict]]:
    """Run the named stages (default: all) for their configured steps, as the runner does."""
    rng = np.random.default_rng(seed)
    logs = {}
    for stage in algo.stages:
        if stages is not None and stage.name not in stages:
            continue
        source = algo.batch_source(stage.name)
        logs[stage.name] = [
            algo.update(stage.name, to_torch(source.sample(rng, stage.batch_size), algo.device))
            for _ in range(stage.steps)
        ]
    return logs


@pytest.fixture
def toy_velocity():
    from benchmark.data import load_dataset

    return load_dataset(get_task("ToyVelocity"))
