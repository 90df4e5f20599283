"""DRCORL's critics: per-sample cost targets, and the authors' batch-mean bug behind a flag."""

from __future__ import annotations

import numpy as np
import torch

from .conftest import build, toy_dataset, train


def _costly_vs_free_gap(bug: bool) -> float:
    """Train the IQL cost critic where a > 0 costs 1 and a <= 0 is free (one-step episodes);
    return mean Qc(s, +0.7) - Qc(s, -0.7) over fresh states."""
    rng = np.random.default_rng(0)
    n = 5000
    obs = rng.uniform(-1, 1, size=(n, 3)).astype(np.float32)
    actions = rng.uniform(-1, 1, size=(n, 1)).astype(np.float32)
    costs = (actions[:, 0] > 0).astype(np.float32)
    data = toy_dataset(obs, actions, np.zeros(n), costs)
    algo = build(
        data,
        critic_steps=600,
        critic_batch_size=128,
        critic_hidden=64,
        critic_pretrain_lr=1e-3,
        cost_critic_batch_mean_bug=bug,
    )
    train(algo, stages=("critic",))
    states = torch.as_tensor(rng.uniform(-1, 1, size=(256, 3)), dtype=torch.float32)
    with torch.no_grad():
        q = algo.cost_critic.q.mean
        costly = q(states, torch.full((256, 1), 0.7)).mean().item()
        free = q(states, torch.full((256, 1), -0.7)).mean().item()
    return costly - free


def test_cost_critic_separates_a_costly_from_a_free_action():
    assert _costly_vs_free_gap(bug=False) > 0.7


def test_batch_mean_bug_erases_the_per_sample_cost():
    gap = _costly_vs_free_gap(bug=True)
    assert abs(gap) < 0.15, "with the bug every Qc regresses onto the batch-mean cost"
