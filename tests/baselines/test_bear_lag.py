"""BEAR-Lag: OSRL's settings (delayed policy start 0, 300k steps) and the delayed start."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from baselines.bear_lag import BEARLag, Config
from benchmark.data import load_dataset
from benchmark.errors import ConfigError
from benchmark.interface import TrainContext, to_torch
from benchmark.tasks import get_task

SMALL = {"a_hidden_sizes": [16], "c_hidden_sizes": [16], "vae_hidden_sizes": 16}


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
    return BEARLag(Config(steps=5, batch_size=32, **{**SMALL, **config}), ctx)


def test_osrl_settings_reach_the_model():
    defaults = Config()
    assert defaults.steps == 300_000 and defaults.start_update_policy_step == 0
    assert (defaults.mmd_sigma, defaults.target_mmd_thresh, defaults.alpha_lr) == (50.0, 0.05, 1e-3)
    assert (defaults.num_q, defaults.num_qc, defaults.vae_hidden_sizes) == (2, 2, 400)
    model = build(alpha_lr=2e-3).model
    assert model.start_update_policy_step == 0, "OSRL's config value, not the constructor's 20000"
    assert model.alpha_lr == 2e-3 and model.kernel == "gaussian" and model.mmd_sigma == 50.0
    assert [g["lr"] for g in model.actor_optim.param_groups] == [1e-3]


def test_unknown_kernel_is_rejected():
    from baselines.bear_lag import Config
    from benchmark.validation import check_config

    with pytest.raises(ConfigError, match="kernel"):
        check_config(Config, {"kernel": "cosine"}, "--set")


def test_actor_loss_adds_minus_q_only_from_the_start_step():
    """Before `start_update_policy_step` the actor loss is alpha (MMD - eps) + the cost
    penalty; from it on, -Q is added (OSRL's BEARL.actor_loss)."""
    algorithm = build(start_update_policy_step=3)
    source = algorithm.batch_source("train")
    rng = np.random.default_rng(0)
    for step in range(5):
        alpha = float(algorithm.model.log_alpha.exp())
        stats = algorithm.update("train", to_torch(source.sample(rng, 32), torch.device("cpu")))
        without_q = alpha * (stats["loss/mmd_loss"] - 0.05) + stats["loss/qc_penalty"]
        assert math.isclose(stats["loss/actor_loss"], without_q, rel_tol=1e-4, abs_tol=1e-6) == (
            step < 3
        ), step
    assert algorithm.model.n_train_steps == 5


@pytest.mark.slow
def test_bear_lag_respects_the_limit_on_toy_velocity(results_dir):
    """ToyVelocity at the demo budget (2000 steps): within kappa 10, and far cheaper than the
    same method with an unreachable limit. (Shorter runs catch the PID multiplier mid-swing.)"""
    from benchmark.runner import RunSpec, execute

    def metrics(kappa: float) -> dict:
        spec = RunSpec("bear_lag", "ToyVelocity", cost_limit=kappa, profile="demo")
        return execute(spec, results_dir)[0]["metrics"]

    constrained, unconstrained = metrics(10.0), metrics(1000.0)
    assert constrained["normalised_cost"]["mean"] <= 1.0
    assert constrained["cost"]["mean"] < 0.5 * unconstrained["cost"]["mean"]
