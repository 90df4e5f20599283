"""CPQ: OSRL's settings reach osrl-lib (learning rates, VAE beta, thresholds)."""

from __future__ import annotations

import pytest
import torch

from baselines.cpq import CPQ, Config
from benchmark.data import load_dataset
from benchmark.interface import TrainContext
from benchmark.tasks import get_task


def build(cost_limit=10.0, **config):
    task = get_task("ToyVelocity")
    ctx = TrainContext(
        task=task,
        dataset=load_dataset(task),
        cost_limit=cost_limit,
        seed=0,
        device=torch.device("cpu"),
        cost_limits=(cost_limit,),
    )
    small = {"a_hidden_sizes": [16], "c_hidden_sizes": [16], "vae_hidden_sizes": 16}
    return CPQ(Config(steps=5, batch_size=32, **{**small, **config}), ctx)


def test_osrl_settings_reach_the_model():
    defaults = Config()
    assert (defaults.actor_lr, defaults.critic_lr, defaults.alpha_lr, defaults.vae_lr) == (
        1e-4,
        1e-3,
        1e-4,
        1e-3,
    )
    assert defaults.beta == 0.5 and defaults.qc_scalar == 1.5
    assert (defaults.num_q, defaults.num_qc, defaults.vae_hidden_sizes) == (2, 2, 400)
    algorithm = build(cost_limit=20.0)
    model = algorithm.model
    assert model.beta == 0.5, "OSRL's config value, not the constructor's 1.5"
    assert model.alpha_lr == 1e-4
    assert model.actor_optim.param_groups[0]["lr"] == 1e-4
    assert model.critic_optim.param_groups[0]["lr"] == 1e-3
    assert model.vae_optim.param_groups[0]["lr"] == 1e-3
    assert len(model.critic.q_nets) == 2 and len(model.cost_critic.q_nets) == 2
    horizon = get_task("ToyVelocity").horizon
    q_thres = 20.0 * (1 - 0.99**horizon) / (1 - 0.99) / horizon
    assert model.q_thres == pytest.approx(q_thres)
    assert model.qc_thres == pytest.approx(1.5 * q_thres)


def test_log_alpha_is_checkpointed():
    algorithm = build()
    with torch.no_grad():
        algorithm.model.log_alpha.fill_(1.25)
    other = build()
    other.load_state_dict(algorithm.state_dict())
    assert float(other.model.log_alpha) == 1.25


def test_cpq_respects_the_limit_on_toy_velocity(results_dir):
    """ToyVelocity, the demo networks for 500 steps: the constrained policy stays within
    kappa 10 and costs far less than the same method with an unreachable limit."""
    from benchmark.runner import RunSpec, execute

    small = {"steps": 500}

    def metrics(kappa: float) -> dict:
        spec = RunSpec("cpq", "ToyVelocity", cost_limit=kappa, profile="demo", overrides=small)
        return execute(spec, results_dir)[0]["metrics"]

    constrained, unconstrained = metrics(10.0), metrics(1000.0)
    assert constrained["normalised_cost"]["mean"] <= 1.0
    assert constrained["cost"]["mean"] < 0.5 * unconstrained["cost"]["mean"]
