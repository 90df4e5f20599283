"""BC-Safe: OSRL's trajectory filter, its error cases, and that it learns a safer policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.bc_safe import BCSafe, Config
from benchmark.data import load_dataset
from benchmark.errors import ConfigError
from benchmark.interface import TrainContext
from benchmark.tasks import get_task


def build(dataset, cost_limit=10.0, **config):
    task = get_task(dataset.task)
    ctx = TrainContext(
        task=task,
        dataset=dataset,
        cost_limit=cost_limit,
        seed=0,
        device=torch.device("cpu"),
        cost_limits=(cost_limit,),
    )
    return BCSafe(Config(steps=5, batch_size=16, a_hidden_sizes=[8], **config), ctx)


@pytest.fixture(scope="module")
def data():
    return load_dataset("ToyVelocity")


@pytest.mark.parametrize("kappa", [5.0, 20.0])
def test_clones_exactly_the_trajectories_within_the_limit(data, kappa):
    algorithm = build(data, kappa)
    safe = np.flatnonzero(data.episode_costs <= kappa)
    assert 0 < safe.size < data.num_episodes
    expected = data.select_episodes(safe)
    columns = algorithm.batch_source("train").columns
    assert set(columns) == {"obs", "actions"}
    np.testing.assert_array_equal(columns["obs"], expected.observations)
    np.testing.assert_array_equal(columns["actions"], expected.actions)


def test_bc_all_uses_every_transition(data):
    columns = build(data, bc_mode="all").batch_source("train").columns
    assert len(columns["obs"]) == len(data)


def test_no_trajectory_within_the_limit_is_a_config_error(data):
    costly = data.select_episodes(np.flatnonzero(data.episode_costs > 30))
    lowest = costly.episode_costs.min()
    with pytest.raises(ConfigError, match="no trajectory") as error:
        build(costly, cost_limit=10.0)
    message = str(error.value)
    assert f"{lowest:g}" in message and "bc_mode=all" in message


def test_unknown_bc_mode_is_rejected(data):
    from baselines.bc_safe import Config
    from benchmark.validation import check_config

    with pytest.raises(ConfigError, match="bc_mode"):
        check_config(Config, {"bc_mode": "frontier"}, "--set")


def test_osrl_settings_reach_the_model(data):
    algorithm = build(data, actor_lr=3e-3)
    assert algorithm.model.actor_optim.param_groups[0]["lr"] == 3e-3
    defaults = Config()
    assert (defaults.actor_lr, defaults.batch_size, defaults.steps) == (1e-3, 512, 100_000)
    assert defaults.a_hidden_sizes == [256, 256] and defaults.gamma == 1.0
    assert defaults.bc_mode == "safe"


def test_bc_safe_is_safer_than_bc_on_all_data(results_dir):
    """ToyPointGoal at kappa 10: cloning every trajectory drives through the hazards far more
    than cloning the safe ones."""
    from benchmark.runner import RunSpec, execute

    def cost(mode: str) -> float:
        spec = RunSpec(
            algorithm="bc_safe",
            task="ToyPointGoal",
            cost_limit=10.0,
            profile="smoke",
            overrides={
                "steps": 400,
                "batch_size": 128,
                "a_hidden_sizes": [64, 64],
                "bc_mode": mode,
            },
        )
        return execute(spec, results_dir)[0]["metrics"]["normalised_cost"]["mean"]

    assert cost("safe") < cost("all")
