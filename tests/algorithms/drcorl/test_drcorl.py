"""The DRCORL class: options, switching, the artifact-cache invariant, checkpoint and resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from algorithms.drcorl.rescale import authors_segment_returns, reward_scale
from benchmark.envs import make_vector_env
from benchmark.errors import ConfigError
from benchmark.evaluate import TrainingRollouts
from benchmark.interface import StatelessPolicy
from benchmark.runner import RunSpec, execute
from benchmark.tasks import get_task

from .conftest import build, train


def test_bad_option_is_a_config_error():
    from algorithms.drcorl import Config
    from benchmark.validation import check_config

    with pytest.raises(ConfigError, match="manipulation must be one of"):
        check_config(Config, {"manipulation": "pcgrad"}, "--set")


def test_online_switching_needs_a_protocol_that_allows_rollouts(toy_velocity):
    with pytest.raises(ConfigError, match="paper"):
        build(toy_velocity, switching="online")
    with pytest.raises(ConfigError, match="paper"):
        build(toy_velocity, switching="online", protocol="paper", rollout=None)


def test_online_switching_asks_the_runner_for_one_episode_per_iteration(toy_velocity):
    built, seeds = [], []
    task = get_task("ToyVelocity")

    def make_env(n):
        built.append(n)
        return make_vector_env(task, n)

    rollouts = TrainingRollouts(make_env, task.horizon, max_envs=4)

    def rollout(act_fn, episode_seeds):
        seeds.append(list(episode_seeds))
        return rollouts(StatelessPolicy(act_fn), episode_seeds)

    algo = build(toy_velocity, switching="online", protocol="paper", rollout=rollout)
    logs = train(algo)["adapt"]
    rollouts.close()
    assert built == [1], "one 1-env vector env, built once by the runner's rollouts"
    assert [len(s) for s in seeds] == [1] * len(logs) and len({s[0] for s in seeds}) == len(logs)
    assert rollouts.env_steps == len(logs) * task.horizon, "every step counted"
    for log in logs:
        assert log["cost/estimate_raw"] == int(log["cost/estimate_raw"])  # an episode's 0/1 sum
        assert np.isclose(log["cost/estimate"], log["cost/estimate_raw"] / 10.1)  # kappa + 0.1
        assert "online/return" in log


def test_switching_follows_the_cost_estimate(toy_velocity, monkeypatch):
    algo = build(toy_velocity, warmup_iterations=1, adapt_iterations=8)
    train(algo, stages=("behavior", "critic", "extract"))
    # normalised estimates (kappa = 10): k=0,1 warm-up; then reward, both, cost, ...
    raw = iter([100.0, 100.0, 4.0, 10.0, 20.0, 5.0, 15.0, 15.1])
    monkeypatch.setattr(algo, "_cost_estimate", lambda k: next(raw))
    logs = train(algo, stages=("adapt",))["adapt"]
    taken = [next(b for b in ("reward", "both", "cost") if log[f"branch/{b}"]) for log in logs]
    assert taken == ["reward", "reward", "reward", "both", "cost", "reward", "both", "cost"]
    assert logs[-1]["branch/reward_total"] == 4 and logs[-1]["branch/cost_total"] == 2


@pytest.mark.parametrize(
    "options",
    [
        {"manipulation": "adam_delta"},
        {"lagrangian": "fixed"},
        {"lagrangian": "pid", "manipulation": "adam_delta"},
        {"beta_schedule": "sqrt_offset", "cost_estimate_ema": 0.9},
        {"cost_estimate_from": "initial", "reward_rescale": "episodes"},
    ],
)
def test_every_option_runs_all_three_branches(toy_velocity, monkeypatch, options):
    algo = build(toy_velocity, warmup_iterations=0, adapt_iterations=6, **options)
    train(algo, stages=("behavior", "critic", "extract"))
    before = [p.detach().clone() for p in algo.actor.parameters()]
    raw = iter([4.0, 10.0, 20.0] * 2)
    original = algo._cost_estimate
    monkeypatch.setattr(algo, "_cost_estimate", lambda k: (original(k), next(raw))[1])
    logs = train(algo, stages=("adapt",))["adapt"]
    assert [log["branch/both"] for log in logs] == [0, 1, 0, 0, 1, 0]
    for log in logs:
        assert all(np.isfinite(v) for v in log.values()), log
    if options.get("lagrangian", "none") != "none":
        assert "lagrangian/lambda" in logs[2]
    after = list(algo.actor.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after)), "the policy moved"


def test_shared_stages_do_not_depend_on_the_cost_limit(toy_velocity):
    """The artifact cache reuses the state after behavior/critic/extract for every limit."""
    states = []
    for kappa in (10.0, 30.0):
        algo = build(toy_velocity, seed=3, cost_limit=kappa)
        train(algo, stages=("behavior", "critic", "extract"), seed=3)
        states.append(algo.state_dict())
    flat = [torch.utils._pytree.tree_flatten(s)[0] for s in states]
    assert len(flat[0]) == len(flat[1])
    for a, b in zip(*flat):
        assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def test_authors_reward_scale_uses_1000_step_segments_and_ignores_timeouts():
    rewards = np.ones(2500, dtype=np.float32)
    terminals = np.zeros(2500, dtype=bool)
    terminals[4] = True
    # Segments: [0, 5) ends at a terminal; then two full windows of 1000; the trailing 495
    # steps end neither way and are not counted.
    assert list(authors_segment_returns(rewards, terminals)) == [5.0, 1000.0, 1000.0]


def test_reward_scale_modes(toy_velocity):
    returns = toy_velocity.episode_returns
    assert np.isclose(reward_scale(toy_velocity, "episodes"), 1000 / np.ptp(returns))
    assert reward_scale(toy_velocity, "none") == 1.0


def _spec(**changes) -> RunSpec:
    base = {
        "algorithm": "drcorl",
        "task": "ToyVelocity",
        "seed": 0,
        "cost_limit": 10.0,
        "profile": "smoke",
        "overrides": {"adapt_iterations": 40},
    }
    return RunSpec(**{**base, **changes})


def test_artifact_reuse_across_cost_limits_matches_training_from_scratch(tmp_path):
    [scratch] = execute(_spec(cost_limit=20.0), tmp_path / "scratch")
    execute(_spec(cost_limit=10.0), tmp_path / "shared")
    [reused] = execute(_spec(cost_limit=20.0), tmp_path / "shared")
    assert reused["timing"]["artifact"] is not None and scratch["timing"]["artifact"] is None
    assert reused["metrics"] == scratch["metrics"]


def test_cpu_policy_matches_the_torch_actor(toy_velocity):
    algo = build(toy_velocity)
    train(algo, stages=("extract",))
    obs = toy_velocity.observations[:50]
    with torch.no_grad():
        expected = algo.actor(torch.as_tensor(obs)).numpy()
    assert np.allclose(algo.policy(10.0, 50).act(obs), expected, atol=1e-5)


def test_every_option_is_classified_for_the_stage_keys():
    """Each Config field is read by the shared stages (STRUCTURE / STAGE_READS) or by the
    adaptation only, exactly once: a new option must say which before it can key anything."""
    from dataclasses import fields

    from algorithms.drcorl.config import ADAPT_ONLY, STAGE_READS, STRUCTURE, Config

    listed = [*STRUCTURE, *ADAPT_ONLY, *(k for v in STAGE_READS.values() for k in v)]
    assert sorted(listed) == sorted(f.name for f in fields(Config))


def test_variants_share_the_stages_whose_options_they_agree_on(tmp_path):
    """An adaptation-only change reuses every shared stage; a change to an extraction option
    reuses phases A and B only; a change to a behaviour option reuses nothing. Each reuse
    gives the result of training that variant from scratch."""
    shared = tmp_path / "shared"
    [first] = execute(_spec(), shared)
    assert first["timing"]["artifact"] is None
    variants = {
        "adapt": {"beta_coef": 0.05, "cost_guidance": "policy_eval"},
        "extract": {"extract_steps": 7},
        "behavior": {"behavior_lr": 1e-3},
    }
    artifacts = {}
    for name, change in variants.items():
        overrides = {"adapt_iterations": 40, **change}
        [reused] = execute(_spec(overrides=overrides), shared)
        [scratch] = execute(_spec(overrides=overrides), tmp_path / name)
        assert reused["metrics"] == scratch["metrics"], name
        artifacts[name] = reused["timing"]["artifact"]
    paths = sorted((shared / "artifacts" / "drcorl").glob("*.pt"))
    # first run: behavior, critic, extract, cost_eval; "extract": extract + cost_eval; the
    # behaviour change: all four again
    assert len(paths) == 4 + 2 + 4
    assert artifacts["adapt"] is not None and artifacts["extract"] is not None
    assert artifacts["adapt"] != artifacts["extract"]
    assert artifacts["behavior"] is None
