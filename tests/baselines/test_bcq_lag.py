"""BCQ-Lag: OSRL's settings reach osrl-lib, the seeded evaluation noise, and learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.bcq_lag import BCQLag, Config
from benchmark.data import load_dataset
from benchmark.interface import TrainContext
from benchmark.tasks import get_task

SMALL = {"a_hidden_sizes": [16], "c_hidden_sizes": [16], "vae_hidden_sizes": 16}


def build(task_name="ToyVelocity", cost_limit=10.0, seed=0, **config):
    task = get_task(task_name)
    ctx = TrainContext(
        task=task,
        dataset=load_dataset(task),
        cost_limit=cost_limit,
        seed=seed,
        device=torch.device("cpu"),
        cost_limits=(cost_limit,),
    )
    return BCQLag(Config(steps=5, batch_size=16, **{**SMALL, **config}), ctx)


def test_osrl_settings_reach_the_model():
    defaults = Config()
    assert (defaults.actor_lr, defaults.critic_lr, defaults.vae_lr) == (1e-3, 1e-3, 1e-3)
    assert (defaults.num_q, defaults.num_qc, defaults.vae_hidden_sizes) == (2, 2, 400)
    assert defaults.pid == [0.1, 0.003, 0.001] and defaults.reward_scale == 0.1
    algorithm = build(cost_limit=20.0, num_q=2, vae_hidden_sizes=24)
    model = algorithm.model
    assert len(model.critic.q1_nets) == 2 and len(model.cost_critic.q2_nets) == 2
    assert model.vae.e1.out_features == 24 and model.latent_dim == 2
    horizon = get_task("ToyVelocity").horizon
    expected = 20.0 * (1 - 0.99**horizon) / (1 - 0.99) / horizon
    assert model.qc_thres == pytest.approx(expected)
    assert model.controller.thres == model.qc_thres
    assert (model.controller.KP, model.controller.KI, model.controller.KD) == (0.1, 0.003, 0.001)
    assert algorithm.trainer.reward_scale == 0.1


def test_evaluation_noise_is_seeded_and_drawn_once_per_step():
    algorithm = build()
    obs = load_dataset("ToyVelocity").observations[:5]
    policy = algorithm.policy(10.0, 5)
    policy.reset(obs, np.ones(5, bool))
    first = policy.act(obs)
    np.testing.assert_array_equal(first, policy.act(obs))  # act is pure within a step
    assert policy._z.abs().max() <= 0.5  # osrl's VAE.decode noise: N(0, I) clipped to 0.5
    policy.observe(np.zeros(5), np.zeros(5), np.zeros(5, bool))
    second = policy.act(obs)
    assert not np.array_equal(first, second), "a new step draws new noise"

    again = algorithm.policy(10.0, 5)  # same seed: the same noise sequence
    again.reset(obs, np.ones(5, bool))
    np.testing.assert_array_equal(first, again.act(obs))
    again.observe(np.zeros(5), np.zeros(5), np.zeros(5, bool))
    np.testing.assert_array_equal(second, again.act(obs))

    other_seed = build(seed=1)
    other_seed.model.load_state_dict(algorithm.model.state_dict())
    other = other_seed.policy(10.0, 5)
    other.reset(obs, np.ones(5, bool))
    assert not np.array_equal(first, other.act(obs)), "the noise depends on the run seed"


def test_evaluation_does_not_touch_the_global_rng():
    algorithm = build()
    obs = load_dataset("ToyVelocity").observations[:3]
    torch.manual_seed(0)
    policy = algorithm.policy(10.0, 3)
    policy.reset(obs, np.ones(3, bool))
    policy.act(obs)
    policy.observe(np.zeros(3), np.zeros(3), np.zeros(3, bool))
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(1))


def test_the_lagrangian_makes_bcq_lag_safe_on_toy_velocity(results_dir):
    """ToyVelocity, a 500-step demo-style budget: at kappa 10 the PID Lagrangian must keep the
    episode cost within the limit, far below the same method with an unreachable limit."""
    from benchmark.runner import RunSpec, execute

    small = {
        "steps": 500,
        "batch_size": 64,
        **{k: [32, 32] for k in SMALL if k != "vae_hidden_sizes"},
    }
    small["vae_hidden_sizes"] = 32

    def metrics(kappa: float) -> dict:
        spec = RunSpec("bcq_lag", "ToyVelocity", cost_limit=kappa, profile="demo", overrides=small)
        return execute(spec, results_dir)[0]["metrics"]

    constrained, unconstrained = metrics(10.0), metrics(1000.0)
    assert constrained["normalised_cost"]["mean"] <= 1.0
    assert constrained["cost"]["mean"] < 0.5 * unconstrained["cost"]["mean"]
