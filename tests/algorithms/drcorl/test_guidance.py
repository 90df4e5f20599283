"""`cost_guidance`: the cost step, the "both" step's cost half and the PID all use the critic
the option names. Hand-made critics with known action-gradients replace the trained ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from algorithms.drcorl.extraction import q_guidance
from algorithms.drcorl.guidance import ensemble_cost_q
from benchmark.errors import ConfigError
from tests.algorithms.drcorl.conftest import build, train

ACT_DIM = 1


class LinearQ(nn.Module):
    """Q(s, a) = u . a + b on concat[a, s] (what CostEnsemble's members are fed)."""

    def __init__(self, obs_dim: int, u: list[float], bias: float = 0.0):
        super().__init__()
        self.layer = nn.Linear(len(u) + obs_dim, 1)
        with torch.no_grad():
            self.layer.weight.zero_()
            self.layer.weight[0, : len(u)] = torch.tensor(u)
            self.layer.bias.fill_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class LinearTwin(nn.Module):
    """Stands in for the IQL critic's target twins: mean(s, a) = v . a + b."""

    def __init__(self, v: list[float], bias: float = 0.0):
        super().__init__()
        self.v, self.bias = torch.tensor(v), bias

    def mean(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return act @ self.v + self.bias


IQL_SLOPE = [-3.0]
PE_SLOPES = ([2.0], [4.0])


def _with_known_critics(algo, iql_bias: float = 0.0, pe_bias: float = 0.0):
    obs_dim = algo.estimate_obs.shape[1]
    algo.cost_critic.q_target = LinearTwin(IQL_SLOPE, iql_bias)
    if algo.pe is not None:
        algo.pe.targets = nn.ModuleList(LinearQ(obs_dim, u, pe_bias) for u in PE_SLOPES)
    return algo


def _batch(toy_velocity, algo):
    obs = torch.as_tensor(toy_velocity.observations[:16])
    with torch.no_grad():
        return obs, algo.actor(obs)


@pytest.mark.parametrize(
    ("guidance", "std_coef", "expected"),
    [
        ("iql", 0.0, IQL_SLOPE[0]),
        ("policy_eval", 0.0, 3.0),  # the members' mean slope (2 + 4) / 2
        ("policy_eval", 1.0, 4.0),  # + std: |q1 - q2| / 2 = |a|, whose slope at a > 0 is 1
    ],
)
def test_cost_step_descends_the_named_critic(toy_velocity, guidance, std_coef, expected):
    algo = _with_known_critics(
        build(toy_velocity, cost_guidance=guidance, pe_std_coef=std_coef, lagrangian="none")
    )
    obs, _ = _batch(toy_velocity, algo)
    act = torch.full((len(obs), ACT_DIM), 0.5)  # a > 0, so the std's slope is +1
    direction = algo._cost_guidance_fn(obs, {})(act)
    assert torch.allclose(direction, torch.full_like(direction, -expected))


@pytest.mark.parametrize("guidance", ["iql", "policy_eval"])
def test_lagrangian_cost_direction_and_pid_read_the_named_critic(toy_velocity, guidance):
    """The PID's error is the batch mean of the same critic the cost direction comes from."""
    algo = _with_known_critics(
        build(toy_velocity, cost_guidance=guidance, lagrangian="pid", pid_threshold="zero"),
        iql_bias=7.0,
        pe_bias=11.0,
    )
    obs, act = _batch(toy_velocity, algo)
    with torch.no_grad():
        named = (
            algo.cost_critic.q_target.mean(obs, act)
            if guidance == "iql"
            else ensemble_cost_q(algo.pe, 0.0)(obs, act)
        )
    out = {}
    direction = algo._cost_guidance_fn(obs, out)(act)
    lam = out["lagrangian/lambda"]
    kp, ki, kd = 0.1, 0.003, 0.001  # first call: P, I and D all see relu(error)
    assert np.isclose(lam, (kp + ki + kd) * max(named.mean().item(), 0.0), rtol=1e-5)
    slope = IQL_SLOPE[0] if guidance == "iql" else 3.0
    g_r = q_guidance(algo.reward_critic.q_target, obs, act)
    assert torch.allclose(direction, g_r - lam * slope, atol=1e-5)  # g_r - lambda g_c


def test_both_step_projects_against_the_named_critic(toy_velocity):
    """With guidance from the ensemble, the "both" step's cosine is that of g_r with the
    ensemble's gradient: flipping the ensemble's slope flips the sign of the cosine."""
    cosines = []
    for sign in (1.0, -1.0):
        algo = build(toy_velocity, cost_guidance="policy_eval", lagrangian="none")
        train(algo, stages=("behavior", "critic", "extract", "cost_eval"))
        obs_dim = algo.estimate_obs.shape[1]
        algo.pe.targets = nn.ModuleList(LinearQ(obs_dim, [sign * 5.0]) for _ in range(2))
        obs, _ = _batch(toy_velocity, algo)
        q_r = algo.reward_critic.q_target
        out = algo._both_step(
            obs,
            lambda a, q=q_r, o=obs: q_guidance(q, o, a),
            algo._cost_guidance_fn(obs, {}),
            0.5,
        )
        cosines.append(out["grad/cos"])
    assert cosines[0] == pytest.approx(-cosines[1], abs=1e-4)
    assert abs(cosines[0]) > 1e-3


def test_policy_eval_guidance_lowers_the_ensembles_cost(toy_velocity):
    """A run of cost steps that follow the ensemble lowers the ensemble's Q_c at the policy's
    actions (the critic the rule reads is the one the step moves)."""
    algo = build(
        toy_velocity,
        cost_guidance="policy_eval",
        lagrangian="none",
        warmup_iterations=0,
        slack_upper=0.0,
        cost_threshold=1e-6,  # every iteration after k = 0 is a cost step
        policy_lr=1e-2,
        beta_schedule="constant",
        beta_coef=5.0,
    )
    train(algo, stages=("behavior", "critic", "extract", "cost_eval"))
    obs_dim = algo.estimate_obs.shape[1]
    algo.pe.targets = nn.ModuleList(LinearQ(obs_dim, u) for u in PE_SLOPES)
    obs = algo.estimate_obs
    q = ensemble_cost_q(algo.pe, 0.0)
    with torch.no_grad():
        before = q(obs, algo.actor(obs)).mean().item()
    for _ in range(20):
        with torch.no_grad():
            direction = algo._cost_guidance_fn(obs, {})(algo.actor(obs))
        algo._policy_step(obs, lambda a, d=direction: d, 5.0)
    with torch.no_grad():
        after = q(obs, algo.actor(obs)).mean().item()
    assert after < before


@pytest.mark.parametrize("options", [{"cost_signal": "iql"}, {"switching": "online"}])
def test_policy_eval_guidance_needs_the_ensemble(toy_velocity, options):
    with pytest.raises(ConfigError, match="cost_guidance=policy_eval"):
        build(
            toy_velocity,
            protocol="paper",
            rollout=lambda *a: None,
            cost_guidance="policy_eval",
            **options,
        )
