"""COptiDICE: initial-state flags and data statistics, settings, and tau/lambda checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.coptidice import Config, COptiDICE
from benchmark.data import load_dataset
from benchmark.errors import ConfigError
from benchmark.interface import TrainContext
from benchmark.tasks import get_task


def build(task_name="ToyPointGoal", cost_limit=10.0, **config):
    task = get_task(task_name)
    ctx = TrainContext(
        task=task,
        dataset=load_dataset(task),
        cost_limit=cost_limit,
        seed=0,
        device=torch.device("cpu"),
        cost_limits=(cost_limit,),
    )
    small = {"a_hidden_sizes": [16], "c_hidden_sizes": [16]}
    return COptiDICE(Config(steps=5, batch_size=32, **{**small, **config}), ctx)


def test_initial_state_flags_mark_each_trajectory_start():
    data = load_dataset("ToyPointGoal")
    algorithm = build()
    is_init = algorithm.batch_source("train").columns["is_init"]
    assert data.terminals.any() and data.timeouts.any()  # both episode ends occur
    np.testing.assert_array_equal(np.flatnonzero(is_init), data.episode_starts)
    assert algorithm.model.init_state_propotion == pytest.approx(data.num_episodes / len(data))
    np.testing.assert_allclose(
        algorithm.model.observations_std.numpy()[0], data.observations.std(0), rtol=1e-6
    )
    assert algorithm.model.actions_std.shape == (1, data.actions.shape[1])


def test_osrl_settings_reach_the_model():
    defaults = Config()
    assert (defaults.actor_lr, defaults.critic_lr, defaults.scalar_lr) == (1e-4, 1e-4, 1e-4)
    assert (defaults.alpha, defaults.cost_ub_epsilon, defaults.f_type) == (0.5, 0.01, "softchi")
    assert (defaults.num_nu, defaults.num_chi) == (2, 2)
    model = build(cost_limit=20.0).model
    assert model.alpha == 0.5 and model.cost_ub_epsilon == 0.01
    assert len(model.nu_network.q_nets) == 2 and len(model.chi_network.q_nets) == 2
    assert model.lmbda_optim.param_groups[0]["lr"] == 1e-4
    horizon = get_task("ToyPointGoal").horizon
    assert model.qc_thres == pytest.approx(20.0 * (1 - 0.99**horizon) / 0.01 / horizon)


def test_tau_and_lambda_are_restored_in_place():
    algorithm = build()
    with torch.no_grad():
        algorithm.model.lmbda.fill_(2.5)
        algorithm.model.tau.fill_(0.5)
    other = build()
    other.load_state_dict(algorithm.state_dict())
    assert other.model.lmbda.item() == 2.5 and other.model.tau.item() == 0.5
    # the Adam optimisers of tau and lambda must still own the very tensors the model uses
    assert other.model.lmbda_optim.param_groups[0]["params"][0] is other.model.lmbda
    assert other.model.tau_optim.param_groups[0]["params"][0] is other.model.tau


def test_unknown_f_divergence_is_rejected():
    from baselines.coptidice import Config
    from benchmark.validation import check_config

    with pytest.raises(ConfigError, match="f_type"):
        check_config(Config, {"f_type": "hellinger"}, "--set")


def test_coptidice_is_safer_than_bc_on_all_data(results_dir):
    """ToyVelocity at kappa 10, a 600-step demo-style budget: the cost-penalised weighted BC is
    within the limit and cheaper than cloning every trajectory, at a comparable reward."""
    from benchmark.runner import RunSpec, execute

    def metrics(algorithm: str, overrides: dict) -> dict:
        spec = RunSpec(
            algorithm, "ToyVelocity", cost_limit=10.0, profile="demo", overrides=overrides
        )
        return execute(spec, results_dir)[0]["metrics"]

    small = {"steps": 600, "batch_size": 64, "a_hidden_sizes": [32, 32]}
    bc_all = metrics("bc_safe", {**small, "bc_mode": "all"})
    dice = metrics("coptidice", {**small, "c_hidden_sizes": [32, 32]})
    assert dice["normalised_cost"]["mean"] <= 1.0
    assert dice["normalised_cost"]["mean"] < bc_all["normalised_cost"]["mean"]
    assert dice["normalised_reward"]["mean"] > 0.5 * bc_all["normalised_reward"]["mean"]
