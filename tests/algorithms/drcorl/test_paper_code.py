"""The `paper-code` switches each reproduce the authors' code on hand-made inputs.

Each reference below is written from `reference/drcorl.md` (the code's expressions), not from
the suite's implementation: the phase-B cost target's (B,)-vs-(B,1) broadcast, the "both"
step's two Adam steps and their delta projection, the PID threshold the code ends up with,
and its best-online-checkpoint rule.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from algorithms.drcorl.adaptation import OnlineBest, pid_threshold, project_conflicting
from algorithms.drcorl.critics import Critic, iql_update
from algorithms.drcorl.extraction import q_guidance, surrogate_loss
from benchmark.errors import ConfigError
from benchmark.evaluate import EpisodeResults
from benchmark.tasks import get_task

from .conftest import build, train


def _hand_made_batch(b: int = 5) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "obs": torch.randn(b, 3, generator=g),
        "actions": torch.rand(b, 1, generator=g) * 2 - 1,
        "costs": torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0][:b]),
        "next_obs": torch.randn(b, 3, generator=g),
        "done": torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0][:b]),
    }


def _frozen_opts(critic: Critic):
    # lr 0: the step runs but moves nothing, so the loss can be compared with the code's.
    return torch.optim.SGD(critic.q.parameters(), lr=0.0), torch.optim.SGD(
        critic.v.parameters(), lr=0.0
    )


def test_batch_mean_bug_is_the_codes_broadcast_target():
    torch.manual_seed(0)
    critic = Critic(3, 1, 16, 2)
    batch = _hand_made_batch()
    gamma = 0.99
    with torch.no_grad():
        # The code's shapes (`utils/dataset.py:126-129`): c is (B,), d and V(s') are (B,1).
        c, d = batch["costs"], batch["done"].reshape(-1, 1)
        next_v = critic.v(batch["next_obs"])
        target = c + (1 - d) * gamma * next_v  # `Agents/SRPO.py:762`
        assert target.shape == (5, 5), "the code's target broadcasts to B x B"
        qs = critic.q.both(batch["obs"], batch["actions"])
        with pytest.warns(UserWarning, match="target size"):
            code_loss = sum(F.mse_loss(q, target) for q in qs) / len(qs)  # `:775`
        fixed = c.reshape(-1, 1) + (1 - d) * gamma * next_v
        fixed_loss = sum(F.mse_loss(q, fixed) for q in qs) / len(qs)
    bugged = iql_update(critic, *_frozen_opts(critic), batch, c, gamma, 0.7, 0.0, True)
    clean = iql_update(critic, *_frozen_opts(critic), batch, c, gamma, 0.7, 0.0, False)
    assert torch.isclose(bugged["q_loss"], code_loss, rtol=1e-6)
    assert torch.isclose(clean["q_loss"], fixed_loss, rtol=1e-6)
    assert not torch.isclose(code_loss, fixed_loss), "the hand-made batch tells them apart"


def _code_both_step(algo, obs: torch.Tensor, beta: float) -> list[torch.Tensor]:
    """The code's "both" step (`safe_policy.py:126-145`) on a deep copy of `algo`: save theta0,
    one Adam step on L_r, delta_r; reset to theta0; one Adam step on L_c (same optimizer, whose
    moments and step count have advanced), delta_c; theta0 + pcgrad(delta_r, delta_c)."""
    actor = copy.deepcopy(algo.actor)
    opt = torch.optim.Adam(actor.parameters(), lr=algo.config.policy_lr)
    opt.load_state_dict(copy.deepcopy(algo.opts["policy"].state_dict()))
    gen = torch.Generator().manual_seed(0)
    gen.set_state(algo.gen.get_state())
    q_r, q_c = algo.reward_critic.q_target, algo.cost_critic.q_target
    params = list(actor.parameters())
    theta0 = [p.detach().clone() for p in params]
    deltas = []
    for sign, q in ((1.0, q_r), (-1.0, q_c)):
        with torch.no_grad():
            for p, s in zip(params, theta0):
                p.copy_(s)
        a = actor(obs)
        loss = surrogate_loss(a, obs, algo.score, algo.sde, gen, sign * q_guidance(q, obs, a), beta)
        opt.zero_grad()
        loss.backward()
        opt.step()
        deltas.append(torch.cat([(p.detach() - s).reshape(-1) for p, s in zip(params, theta0)]))
    combined = project_conflicting(*deltas)
    flat0 = torch.cat([s.reshape(-1) for s in theta0])
    assert (
        opt.state_dict()["state"][0]["step"]
        == algo.opts["policy"].state_dict()["state"][0]["step"] + 2
    ), "the code advances Adam twice"
    return [flat0 + combined, deltas]


def test_adam_delta_both_step_is_the_codes(toy_velocity):
    algo = build(toy_velocity, manipulation="adam_delta", policy_lr=1e-2)
    train(algo, stages=("behavior", "critic", "extract"))
    obs = torch.as_tensor(toy_velocity.observations[:32])
    beta = 0.3
    expected, (delta_r, delta_c) = _code_both_step(algo, obs, beta)
    steps_before = algo.counters["policy_steps"]
    q_r = algo.reward_critic.q_target
    algo._both_step(
        obs,
        lambda a: q_guidance(q_r, obs, a),
        algo._cost_guidance_fn(obs, {}),
        beta,
    )
    got = torch.cat([p.detach().reshape(-1) for p in algo.actor.parameters()])
    assert torch.allclose(got, expected, atol=1e-7)
    assert algo.counters["policy_steps"] == steps_before + 2, "the lr schedule advances twice"
    assert float(torch.dot(delta_r, delta_c)) != 0.0


def test_pid_threshold_zero_is_the_codes_and_horizon_the_intended():
    assert pid_threshold(30.0, 0.99, 200, "zero") == 0.0
    assert np.isclose(pid_threshold(30.0, 0.99, 200, "horizon"), 12.99, rtol=1e-3)
    with pytest.raises(ValueError, match="pid_threshold"):
        pid_threshold(30.0, 0.99, 200, "intended")


def test_online_best_keeps_the_best_safe_episode_of_a_scripted_sequence():
    rule = OnlineBest(threshold=1.0)
    # (normalised reward, normalised cost C/(kappa+0.1)) of successive online episodes
    episodes = [
        (-0.2, 0.0),  # reward <= 0: never kept (best starts at 0)
        (0.3, 1.2),  # unsafe
        (0.3, 0.99),  # kept
        (0.3, 0.0),  # not better (strict)
        (0.5, 1.0),  # cost must be strictly below 1
        (0.6, 0.4),  # kept
        (0.4, 0.1),  # worse
        (0.9, 3.0),  # unsafe
    ]
    kept = [i for i, (r, c) in enumerate(episodes) if rule.consider(r, c)]
    assert kept == [2, 5]
    assert rule.best_reward == 0.6
    restored = OnlineBest(threshold=1.0)
    restored.load_state_dict(rule.state_dict())
    assert not restored.consider(0.55, 0.0) and restored.consider(0.61, 0.0)


def _scripted_rollout(episodes: list[tuple[float, float]], log: list):
    """A runner stand-in: the i-th call returns the i-th scripted (return, cost) episode."""

    def rollout(act_fn, seeds):
        ret, cost = episodes[len(log) % len(episodes)]
        log.append(list(seeds))
        return EpisodeResults(np.array([ret]), np.array([cost]), np.array([100]))

    return rollout


def test_pid_threshold_zero_drives_lambda_from_the_whole_mean_qc(toy_velocity):
    """With the code's threshold 0 the PID error is mean Qc itself; with `horizon` it is
    mean Qc - kappa (1-gamma^L)/((1-gamma) L)."""
    lambdas = {}
    for mode in ("zero", "horizon"):
        algo = build(toy_velocity, lagrangian="pid", pid_threshold=mode)
        train(algo, stages=("behavior", "critic", "extract"))
        obs = torch.as_tensor(toy_velocity.observations[:32])
        with torch.no_grad():
            mean_qc = algo.cost_critic.q_target.mean(obs, algo.actor(obs)).mean().item()
        out = {}
        algo._cost_guidance_fn(obs, out)(algo.actor(obs).detach())
        target = 0.0 if mode == "zero" else pid_threshold(10.0, algo.config.gamma, 100)
        assert algo.pid_target == target
        error = mean_qc - target
        kp, ki, kd = 0.1, 0.003, 0.001  # the code's gains; first call: I = D = relu(e)
        expected = max(0.0, kp * max(0.0, error) + ki * max(0.0, error) + kd * max(0.0, error))
        assert np.isclose(out["lagrangian/lambda"], expected, rtol=1e-5)
        lambdas[mode] = out["lagrangian/lambda"]
    assert lambdas["zero"] > lambdas["horizon"]


def test_online_best_offers_what_the_codes_rule_keeps(toy_velocity):
    """A scripted sequence of online episodes through DRCORL: each iteration's switching
    episode, plus the periodic episode after the update at k = 0 and k % 10 = 9, whose scores
    then decide; the offered policies are exactly those the code would save."""
    task = get_task("ToyVelocity")
    lo, hi = task.reward_min, task.reward_max

    def ret(norm):
        return lo + norm * (hi - lo)

    # (return, cost) per call, in call order; kappa 10 under `paper`: C/(10.1) < 1 iff C <= 10.
    script = [
        (ret(0.2), 3.0),  # k=0 switching episode
        (ret(0.3), 2.0),  # k=0 periodic episode (decides): offered, best 0.3
        (ret(0.5), 11.0),  # k=1: unsafe (11/10.1 > 1)
        (ret(0.4), 10.0),  # k=2: kept (10/10.1 < 1)
        (ret(0.35), 0.0),  # k=3: worse
        (ret(-0.1), 0.0),  # k=4
        (ret(0.9), 0.0),  # k=5: kept
    ]
    calls: list = []
    offered: list[dict] = []
    algo = build(
        toy_velocity,
        switching="online",
        protocol="paper",
        rollout=_scripted_rollout(script, calls),
        offer_candidate=offered.append,
        checkpoint_selection="online_best",
        adapt_iterations=6,
    )
    train(algo)
    assert len(calls) == 7, "6 switching episodes + the periodic one after k = 0"
    assert [o["iteration"] for o in offered] == [0.0, 2.0, 5.0]
    assert [round(o["normalised_reward"], 6) for o in offered] == [0.3, 0.4, 0.9]
    assert all(o["normalised_cost"] < 1.0 for o in offered)
    assert np.isclose(offered[1]["normalised_cost"], 10.0 / 10.1)


def test_online_best_needs_online_switching(toy_velocity):
    with pytest.raises(ConfigError, match="online_best"):
        build(toy_velocity, checkpoint_selection="online_best")


def test_pid_signal_policy_eval_drives_lambda_from_the_ensemble(toy_velocity):
    """pid_signal=policy_eval: the PID error is the ensemble targets' mean Q_c(s, pi(s)) minus
    the threshold, not the IQL cost critic's."""
    algo = build(toy_velocity, lagrangian="pid", pid_threshold="zero", pid_signal="policy_eval")
    train(algo, stages=("behavior", "critic", "extract", "cost_eval"))
    obs = torch.as_tensor(toy_velocity.observations[:32])
    with torch.no_grad():
        act = algo.actor(obs)
        # Push the ensemble's targets away from the IQL critic so the two sources differ.
        for target in algo.pe.targets:
            target[-1].bias.add_(5.0)
        ensemble_q = algo.pe.target(obs, act).mean().item()
        iql_q = algo.cost_critic.q_target.mean(obs, act).mean().item()
    out = {}
    algo._cost_guidance_fn(obs, out)(act)
    kp, ki, kd = 0.1, 0.003, 0.001  # first call: P, I and D all see relu(error)
    assert np.isclose(out["lagrangian/lambda"], (kp + ki + kd) * max(ensemble_q, 0.0), rtol=1e-5)
    assert not np.isclose(out["lagrangian/lambda"], (kp + ki + kd) * max(iql_q, 0.0), rtol=1e-3)


@pytest.mark.parametrize("options", [{"cost_signal": "iql"}, {"switching": "online"}])
def test_pid_signal_policy_eval_needs_the_ensemble(toy_velocity, options):
    with pytest.raises(ConfigError, match="pid_signal=policy_eval"):
        build(
            toy_velocity,
            protocol="paper",
            rollout=lambda *a: None,
            lagrangian="pid",
            pid_signal="policy_eval",
            **options,
        )
