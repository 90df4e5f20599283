from __future__ import annotations

import numpy as np
import pytest

from benchmark.envs import make_vector_env
from benchmark.errors import ConfigError
from benchmark.evaluate import (
    EVAL_SEED_BASE,
    TrainingRollouts,
    evaluate,
    evaluation_seeds,
    run_episodes,
)
from benchmark.interface import StatelessPolicy
from benchmark.protocols import PROTOCOLS, get_protocol, normalise_cost
from benchmark.tasks import get_task


def test_cost_normalisation_per_protocol_and_method():
    costs = np.array([0.0, 10.0, 25.0])
    honest, paper = get_protocol("honest"), get_protocol("paper")
    for algorithm in ("drcorl", "bc_safe", "caps"):
        assert np.allclose(honest.normalise_cost(costs, 10.0, algorithm), [0.0, 1.0, 2.5])
        assert honest.cost_normalisation(algorithm) == "C/kappa"
    # under `paper` only DRCORL's own code divided by kappa + 0.1; the baselines' code by kappa
    assert np.allclose(paper.normalise_cost(costs, 10.0, "drcorl"), costs / 10.1)
    assert paper.cost_normalisation("drcorl") == "C/(kappa+0.1)"
    for baseline in ("bc_safe", "cpq", "cdt", "caps", "ccac"):
        assert np.allclose(paper.normalise_cost(costs, 10.0, baseline), costs / 10.0)
        assert paper.cost_normalisation(baseline) == "C/kappa"
    # DSRL's convention for a zero target: (C + 1) / (kappa + 1)
    assert np.allclose(normalise_cost(costs, 0.0), costs + 1.0)


def test_protocols_are_named_and_say_whether_training_may_interact():
    assert set(PROTOCOLS) == {"honest", "paper"}
    assert not PROTOCOLS["honest"].online_allowed and PROTOCOLS["honest"].selection == "final"
    assert PROTOCOLS["paper"].online_allowed
    with pytest.raises(ConfigError, match="unknown protocol"):
        get_protocol("nosuch")


def test_training_rollouts_count_steps_reuse_envs_and_close_them():
    task = get_task("ToyVelocity")
    built, closed = [], []

    def make_env(n):
        env = make_vector_env(task, n)
        built.append(n)
        original = env.close
        env.close = lambda: (closed.append(n), original())
        return env

    rollouts = TrainingRollouts(make_env, task.horizon, max_envs=3)
    policy = _noisy_policy(task.act_dim)
    one = rollouts(policy, [5])
    many = rollouts(policy, [5, 6, 7, 8])
    last = rollouts(policy, [9])
    assert built == [1, 3], "one env per width, reused"
    assert rollouts.env_steps == one.env_steps + many.env_steps + last.env_steps > 0
    assert many.env_steps == int(many.lengths.sum()) and len(many.lengths) == 4
    assert one.costs[0] == many.costs[0], "an episode depends on its seed only"
    rollouts.close()
    assert sorted(closed) == [1, 3]


def test_evaluation_seeds_are_fixed_and_disjoint_from_training_seeds():
    assert evaluation_seeds(3) == [EVAL_SEED_BASE, EVAL_SEED_BASE + 1, EVAL_SEED_BASE + 2]
    assert min(evaluation_seeds(20)) >= EVAL_SEED_BASE


def _noisy_policy(act_dim: int):
    # depends on the observation only, so episodes are comparable across batchings
    return StatelessPolicy(
        lambda obs: np.tanh(np.sin(obs.sum(axis=1, keepdims=True) * 3.0)) * np.ones((1, act_dim))
    )


@pytest.mark.parametrize("task_name", ["ToyVelocity", "ToyPointGoal"])
def test_sequential_and_vectorised_evaluation_agree(task_name):
    task = get_task(task_name)
    seeds = evaluation_seeds(7)
    one = run_episodes(_noisy_policy(task.act_dim), make_vector_env(task, 1), seeds, task.horizon)
    many = run_episodes(_noisy_policy(task.act_dim), make_vector_env(task, 3), seeds, task.horizon)
    assert np.allclose(one.returns, many.returns)
    assert np.allclose(one.costs, many.costs)
    assert np.array_equal(one.lengths, many.lengths)
    assert np.all(one.lengths <= task.horizon)


class _BudgetPolicy:
    """Records what the evaluator tells a cost-conditioned policy."""

    def __init__(self, act_dim: int):
        self.act_dim = act_dim
        self.resets: list[np.ndarray] = []
        self.cost_seen = None
        self.done_count = 0

    def reset(self, obs, mask):
        self.resets.append(mask.copy())
        self.cost_seen = np.zeros(len(mask))

    def act(self, obs):
        return np.ones((obs.shape[0], self.act_dim))

    def observe(self, reward, cost, done):
        self.cost_seen += cost
        self.done_count += int(done.sum())


def test_stateful_policy_sees_resets_costs_and_episode_ends():
    task = get_task("ToyVelocity")
    policy = _BudgetPolicy(task.act_dim)
    env = make_vector_env(task, 4)
    results = run_episodes(policy, env, evaluation_seeds(6), task.horizon)
    assert len(policy.resets) == 2  # waves of 4 and 2
    assert policy.resets[1].tolist() == [True, True, False, False]  # padding is masked out
    assert policy.done_count == 6
    assert np.allclose(policy.cost_seen[:2], results.costs[4:])


def test_metrics_hold_raw_and_normalised_values():
    task = get_task("ToyVelocity")
    metrics = evaluate(_noisy_policy(task.act_dim), make_vector_env(task, 5), task, 10.0, 0.0, 5)
    assert len(metrics["return"]["per_episode"]) == 5
    raw = np.array(metrics["return"]["per_episode"])
    assert np.allclose(metrics["normalised_reward"]["per_episode"], task.normalise_reward(raw))
    costs = np.array(metrics["cost"]["per_episode"])
    assert np.allclose(metrics["normalised_cost"]["per_episode"], costs / 10.0)
