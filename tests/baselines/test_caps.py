"""CAPS(IQL): the per-step budget, the head switch, the per-head weights, exact resume, and
one learning test on ToyVelocity through the runner."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import nn

import baselines.caps as caps_module
from baselines.caps import (
    CAPS,
    CAPSPolicy,
    Config,
    head_weights,
    per_step_budget,
    switch_heads,
)
from benchmark.data.dataset import from_arrays
from benchmark.interface import TrainContext
from benchmark.tasks import get_task


def test_defaults_are_the_authors():
    cfg = Config()
    assert (cfg.num_heads, cfg.hidden_dim, cfg.batch_size, cfg.steps) == (2, 512, 512, 100_000)
    assert (cfg.iql_tau, cfg.iql_tau_cost, cfg.beta, cfg.beta_cost) == (0.7, 0.7, 3.0, 3.0)
    assert (cfg.actor_lr, cfg.q_lr, cfg.value_lr, cfg.exp_adv_max) == (3e-4, 3e-4, 3e-4, 100.0)
    assert (cfg.gamma, cfg.tau, cfg.reward_scale) == (0.99, 0.005, 0.1)


def test_per_step_budget_formula():
    remaining = np.array([40.0, 40.0, -3.0, 10.0])
    steps_done = np.array([0, 990, 5, 999])
    got = per_step_budget(remaining, steps_done, horizon=1000, gamma=0.99)
    expected = [
        40.0 * (1 - 0.99**1000) / 0.01 / 1000,
        40.0 * (1 - 0.99**10) / 0.01 / 10,
        0.0,  # an overspent budget is floored at zero
        10.0,  # one step left: the whole remaining budget
    ]
    assert np.allclose(got, expected)
    # without discounting the per-Q budget is the remaining budget itself
    assert np.allclose(per_step_budget(remaining[:2], steps_done[:2], 1000, 1.0), [40.0, 40.0])


def test_switch_heads_rules():
    q_r = torch.tensor([[5.0, 1.0], [5.0, 1.0], [5.0, 1.0], [1.0, 5.0]])
    est_cost = torch.tensor([[2.0, 0.1], [2.0, 0.1], [3.0, 4.0], [0.5, 0.4]])
    budget = torch.tensor([10.0, 1.0, 0.0, 1.0])
    heads = switch_heads(q_r, est_cost, budget)
    # both fit -> best reward; only the safe one fits -> it; none fits -> lowest cost;
    # both fit -> best reward even when it is the cheaper head
    assert heads.tolist() == [0, 1, 0, 1]


def test_head_weights_mix_reward_and_cost():
    exp_r, exp_c = torch.tensor([2.0]), torch.tensor([3.0])
    two = head_weights(exp_r, exp_c, 2)
    assert [w.item() for w in two] == [2.0, 3.0]
    three = head_weights(exp_r, exp_c, 3)
    assert [w.item() for w in three] == [2.0, 2.0 + 1.0 * 3.0, 3.0]


class _FixedHeads(nn.Module):
    """Head 0 drives fast (+0.9), head 1 slowly (-0.5), whatever the observation."""

    def forward(self, obs):
        heads = torch.tensor([[0.9], [-0.5]], dtype=obs.dtype)
        return heads.expand(obs.shape[0], 2, 1)


class _RewardQ(nn.Module):
    def forward(self, obs, act):
        return act.squeeze(-1)  # faster is better


class _NegCostQ(nn.Module):
    def forward(self, obs, act):
        est_cost = torch.where(act.squeeze(-1) > 0, 2.0, 0.1)
        return -est_cost  # the critic is trained on negated cost


def _hand_policy(cost_limit: float, num_envs: int) -> CAPSPolicy:
    return CAPSPolicy(
        _FixedHeads(), _RewardQ(), _NegCostQ(), cost_limit, num_envs,
        horizon=100, gamma=0.99, cost_scale=1.0, device=torch.device("cpu"),
    )  # fmt: skip


def test_policy_switches_to_the_safe_head_when_the_budget_runs_out():
    policy = _hand_policy(cost_limit=50.0, num_envs=2)
    obs = np.zeros((2, 3), dtype=np.float32)
    policy.reset(obs, np.ones(2, dtype=bool))
    actions = policy.act(obs)
    assert policy.last_heads.tolist() == [0, 0]  # budget ~31.7 per Q: the fast head fits
    assert np.allclose(actions[:, 0], 0.9)
    assert np.array_equal(actions, policy.act(obs)), "act does not change the budget"

    # env 0 spends 49.5 of its 50: 0.5 left over 99 steps is ~0.32 per Q, below 2 but above 0.1
    policy.observe(np.zeros(2), np.array([49.5, 0.0]), np.zeros(2, dtype=bool))
    actions = policy.act(obs)
    assert policy.last_heads.tolist() == [1, 0]
    assert np.allclose(actions[:, 0], [-0.5, 0.9])

    # overspent: no head fits, the lowest-cost head acts
    policy.observe(np.zeros(2), np.array([5.0, 0.0]), np.zeros(2, dtype=bool))
    policy.act(obs)
    assert policy.last_heads.tolist() == [1, 0]
    assert policy.remaining[0] < 0

    # a new episode in env 0 only restores its budget
    policy.reset(obs, np.array([True, False]))
    policy.act(obs)
    assert policy.last_heads.tolist() == [0, 0]
    assert policy.steps_done.tolist() == [0, 2]


def test_tighter_limit_switches_earlier():
    """The same cost stream: a smaller limit hands over to the safe head sooner."""
    obs = np.zeros((1, 3), dtype=np.float32)
    first_safe = {}
    for limit in (5.0, 20.0):
        policy = _hand_policy(limit, 1)
        policy.reset(obs, np.ones(1, dtype=bool))
        for t in range(100):
            policy.act(obs)
            if policy.last_heads[0] == 1:
                first_safe[limit] = t
                break
            policy.observe(np.zeros(1), np.ones(1), np.zeros(1, dtype=bool))
    assert first_safe[5.0] < first_safe[20.0]


# -- the algorithm on small synthetic data ---------------------------------------------------


def _synthetic_context(seed: int = 0) -> TrainContext:
    rng = np.random.default_rng(seed)
    episodes, horizon = 8, 20
    n = episodes * horizon
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    actions = rng.uniform(-1, 1, size=(n, 1)).astype(np.float32)
    timeouts = np.zeros(n, dtype=bool)
    timeouts[horizon - 1 :: horizon] = True
    arrays = {
        "observations": obs,
        "next_observations": np.roll(obs, -1, axis=0),
        "actions": actions,
        "rewards": actions[:, 0],
        "costs": (actions[:, 0] > 0.5).astype(np.float32),
        "terminals": np.zeros(n, dtype=bool),
        "timeouts": timeouts,
    }
    dataset = from_arrays("ToyVelocity", arrays, source="toy")
    return TrainContext(
        task=get_task("ToyVelocity"), dataset=dataset, cost_limit=20.0, seed=seed,
        device=torch.device("cpu"), cost_limits=(5.0, 10.0, 20.0),
    )  # fmt: skip


def _small() -> Config:
    return Config(steps=10, batch_size=16, hidden_dim=16, num_heads=3)


def _batches(algo: CAPS, count: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    source = algo.batch_source("train")
    return [
        {k: torch.as_tensor(v) for k, v in source.sample(rng, 16).items()} for _ in range(count)
    ]


def test_update_logs_finite_values_and_scales_rewards():
    ctx = _synthetic_context()
    algo = CAPS(_small(), ctx)
    source = algo.batch_source("train")
    assert np.allclose(source.columns["rewards"], 0.1 * ctx.dataset.rewards)
    for batch in _batches(algo, 3):
        stats = algo.update("train", batch)
        assert all(math.isfinite(v) for v in stats.values())
    actions = algo.policy(10.0, 4).act(ctx.dataset.observations[:4])
    assert actions.shape == (4, 1) and np.all(np.abs(actions) <= 1.0)


def test_done_is_terminal_or_timeout_by_default_like_osrl():
    """The authors train on OSRL's TransitionDataset: a timeout ends the TD backup too."""
    ctx = _synthetic_context()
    terminals = ctx.dataset.terminals.copy()
    terminals[5] = True  # one real terminal besides the timeouts every 20 steps
    ctx.dataset = dataclasses.replace(ctx.dataset, terminals=terminals)
    assert ctx.dataset.timeouts.sum() == 8 and ctx.dataset.terminals.sum() == 1

    done = CAPS(_small(), ctx).batch_source("train").columns["done"]
    assert done.dtype == np.float32
    assert np.flatnonzero(done).tolist() == [5, *range(19, 160, 20)]

    bootstrapping = CAPS(dataclasses.replace(_small(), bootstrap_timeouts=True), ctx)
    assert np.flatnonzero(bootstrapping.batch_source("train").columns["done"]).tolist() == [5]


def test_a_timeout_cuts_the_cost_backup_only_by_default(monkeypatch):
    """One transition at a timeout: the cost-Q target is -c alone by default, and
    -c + gamma * V_c(s') when bootstrapping through the truncation."""
    ctx = _synthetic_context()
    targets: list[torch.Tensor] = []
    original_step = caps_module._q_step

    def recording_step(twin_q, optimiser, obs, act, target):
        targets.append(target.detach().clone())  # reward Q first, then cost Q
        return original_step(twin_q, optimiser, obs, act, target)

    monkeypatch.setattr(caps_module, "_q_step", recording_step)
    row = 19  # the first episode's last step: a timeout, not a terminal
    for bootstrap in (False, True):
        algo = CAPS(dataclasses.replace(_small(), bootstrap_timeouts=bootstrap), ctx)
        columns = algo.batch_source("train").columns
        batch = {k: torch.as_tensor(v[row : row + 1]) for k, v in columns.items()}
        next_v_c = algo.cost_v(batch["next_obs"]).squeeze(-1).detach()
        targets.clear()
        algo.update("train", batch)
        cost_target = targets[1]
        if bootstrap:
            assert torch.allclose(cost_target, -batch["costs"] + 0.99 * next_v_c)
            assert not torch.allclose(cost_target, -batch["costs"])
        else:
            assert torch.allclose(cost_target, -batch["costs"])
