"""The policy-evaluation cost estimator (`cost_signal="policy_eval"`): held-out trajectories,
ensemble combination, and an estimate that tracks a known policy's evaluated cost."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from algorithms.drcorl.cost_eval import (
    CostEnsemble,
    combine,
    episode_cost_estimates,
    estimate_states,
    holdout_split,
    policy_eval_step,
)
from benchmark.envs import make_vector_env
from benchmark.evaluate import evaluation_seeds, run_episodes
from benchmark.interface import StatelessPolicy, TransitionSource, to_torch, transition_columns
from benchmark.tasks import get_task


def test_holdout_split_is_by_whole_trajectory_and_disjoint(toy_velocity):
    train, held = holdout_split(toy_velocity, 0.1, seed=3)
    assert held.num_episodes == round(0.1 * toy_velocity.num_episodes)
    assert train.num_episodes + held.num_episodes == toy_velocity.num_episodes
    assert len(train) + len(held) == len(toy_velocity)
    assert np.all(held.timeouts[held.episode_ends - 1] | held.terminals[held.episode_ends - 1])
    # No held-out state appears among the training states (continuous states: exact match).
    train_rows = {row.tobytes() for row in train.observations}
    assert not any(row.tobytes() in train_rows for row in held.observations[held.episode_starts])
    again, _ = holdout_split(toy_velocity, 0.1, seed=3)
    assert again.sha256 == train.sha256, "the split depends on the seed alone"
    assert holdout_split(toy_velocity, 0.0, seed=3) == (toy_velocity, None)


def test_combine_is_mean_plus_k_std():
    assert combine(np.array([10.0, 14.0]), 1.0) == (14.0, 12.0, 2.0)
    assert combine(np.array([7.0]), 2.0) == (7.0, 7.0, 0.0)


def _fit(policy_action: float, train, states, steps: int) -> np.ndarray:
    torch.manual_seed(0)
    ensemble = CostEnsemble(3, 1, hidden=64, layers=2, members=2)
    opt = torch.optim.Adam(ensemble.parameters(), lr=1e-3)
    source = TransitionSource(transition_columns(train))
    rng = np.random.default_rng(0)
    for _ in range(steps):
        batch = to_torch(source.sample(rng, 256), "cpu")
        next_act = torch.full((256, 1), policy_action)
        policy_eval_step(ensemble, opt, batch, next_act, 0.99, 0.05, max_cost=1.0)
    with torch.no_grad():
        q = ensemble(states, torch.full((len(states), 1), policy_action))
    return episode_cost_estimates(q, horizon=100, gamma=0.99)


@pytest.mark.slow
def test_estimate_tracks_a_scripted_policys_evaluated_cost(toy_velocity):
    """Full throttle on ToyVelocity costs ~87 per episode; the estimate, read on held-out
    trajectories' states, is within 20% of the suite's 20-episode evaluation (measured: +10%,
    the start-of-episode acceleration the stationary estimate does not see)."""
    task = get_task("ToyVelocity")
    train, held = holdout_split(toy_velocity, 0.2, seed=0)
    states = estimate_states(held, 512, "dataset", seed=0, device=torch.device("cpu"))
    env = make_vector_env(task, 10)
    policy = StatelessPolicy(lambda obs: np.ones((len(obs), 1), dtype=np.float32))
    evaluated = run_episodes(policy, env, evaluation_seeds(20), task.horizon).costs.mean()
    env.close()
    assert evaluated > 50, "a costly policy, so 20% is a meaningful band"
    estimate, _, _ = combine(_fit(1.0, train, states, steps=3000), 0.0)
    assert abs(estimate - evaluated) <= 0.2 * evaluated, (estimate, evaluated)
    # The same estimator sees a policy that never exceeds the speed limit as nearly free.
    idle, _, _ = combine(_fit(0.3, train, states, steps=1500), 0.0)
    assert idle < 0.1 * evaluated, idle
