"""CDT: the numpy Pareto set and grid filter against OSRL's, the small-data fallbacks, the
sequence windows, the evaluation targets, and the policy against OSRL's own rollout."""

from __future__ import annotations

import random
import warnings

import numpy as np
import oapackage
import pytest
import torch
from osrl.common.dataset import augmentation as osrl_augmentation
from osrl.common.dataset import grid_filter as osrl_grid_filter
from osrl.common.dataset import process_sequence_dataset

from baselines.cdt import (
    CDT,
    CDTTargetWarning,
    Config,
    grid_filter,
    pareto_augmentation,
    pareto_indices,
    trajectories,
)
from benchmark.data import load_dataset
from benchmark.errors import ConfigError
from benchmark.interface import TrainContext
from benchmark.tasks import get_task

SMALL = {"embedding_dim": 16, "num_layers": 1, "num_heads": 2, "lr_warmup_steps": 5}


def build(dataset=None, cost_limits=(5.0, 10.0, 20.0), seed=0, **config):
    task = get_task("ToyVelocity")
    dataset = dataset if dataset is not None else load_dataset(task)
    ctx = TrainContext(
        task=task,
        dataset=dataset,
        cost_limit=max(cost_limits),
        seed=seed,
        device=torch.device("cpu"),
        cost_limits=tuple(cost_limits),
    )
    options = {"deg": 1, "max_reward": 200.0, "max_rew_decrease": 20.0, **SMALL, **config}
    return CDT(Config(steps=5, batch_size=16, **options), ctx)


@pytest.fixture(scope="module")
def cdt():
    return build()


@pytest.mark.parametrize("seed", range(5))
def test_pareto_set_equals_oapackage_in_order(seed):
    rng = np.random.default_rng(seed)
    n = 80
    cost = np.round(rng.uniform(0, 10, n))  # rounding makes ties and duplicates
    reward = np.round(rng.uniform(0, 6, n))
    front = oapackage.ParetoDoubleLong()
    for i in range(n):
        front.addvalue(oapackage.doubleVector((-cost[i], reward[i])), i)
    assert list(pareto_indices(cost, reward)) == list(front.allindices())


def test_grid_filter_equals_osrl():
    rng = np.random.default_rng(0)
    cost = np.concatenate([rng.normal(10, 2, 300), rng.uniform(0, 40, 200)])
    reward = np.concatenate([rng.normal(50, 5, 300), rng.uniform(0, 80, 200)])
    random.seed(3)
    theirs = osrl_grid_filter(
        cost, reward, cost.min(), cost.max(), reward.min(), reward.max(), 10, 50, 10, 2
    )
    assert grid_filter(cost, reward, random.Random(3)) == theirs


def test_small_data_falls_back_where_osrl_crashes():
    data = load_dataset("ToyVelocity").select_episodes(np.arange(12))
    trajs, _ = process_sequence_dataset({k: v.copy() for k, v in data.arrays().items()})
    with pytest.raises((TypeError, ValueError)):  # np.polyfit on an empty Pareto set
        osrl_augmentation(trajs, 1, 20.0, 1.0, 0.2, 200.0, 1.0)
    aug = pareto_augmentation(
        trajectories(data),
        4,
        20.0,
        1.0,
        0.5,
        200.0,
        1.0,
        random.Random(0),
        np.random.RandomState(0),
    )
    assert aug.info["filtered"] is False, "the grid filter left too little: unfiltered set used"
    assert aug.info["deg"] < 4 and aug.info["deg"] <= aug.info["pareto_points"] - 1
    assert len(aug.source) == 6 and aug.targets.shape == (6, 2)
    # a relabelled return lies above the frontier, up to max_reward (OSRL's uniform draw)
    assert np.all(aug.targets[:, 1] <= 200.0)


def test_windows_pad_and_mask_past_the_trajectory_end(cdt):
    source = cdt.batch_source("train")
    k = 3
    length = int(source.lengths[k])
    batch = source.windows(np.array([k]), np.array([length - 3]))
    np.testing.assert_array_equal(batch["mask"][0], [1, 1, 1] + [0] * 7)
    np.testing.assert_array_equal(batch["time_steps"][0], np.arange(length - 3, length + 7))
    assert not batch["states"][0, 3:].any() and batch["states"][0, :3].any()
    assert not batch["returns"][0, 3:].any()
    # return-to-go is scaled by reward_scale, the cost token is the raw cost-to-go
    data = load_dataset("ToyVelocity")
    start = int(data.episode_starts[k])
    rtg = data.reward_to_go()[start + length - 3 : start + length]
    np.testing.assert_allclose(batch["returns"][0, :3], 0.1 * rtg, rtol=1e-5)


def test_cost_weighted_sampling_skips_trajectories_costing_70_or_more(cdt):
    source = cdt.batch_source("train")
    assert np.all(source.probabilities[source.initial_costs >= 70] == 0)
    assert np.any(source.initial_costs >= 70), "the toy data has such trajectories"
    drawn = source.sample(np.random.default_rng(0), 512)
    assert drawn["episode_cost"].max() < 70


def test_all_trajectories_too_costly_is_a_config_error():
    data = load_dataset("ToyVelocity")
    costly = data.select_episodes(np.flatnonzero(data.episode_costs >= 80))
    with pytest.raises(ConfigError, match="cost_sample_max"):
        build(costly, augment_percent=0.0)


def test_targets_from_the_osrl_table():
    algorithm = build(target_returns=[[40.0, 20], [40.0, 40], [45.0, 80]], augment_percent=0.0)
    algorithm._return_range = (0.0, 1e9)  # isolate the table lookup from the clipping
    algorithm._cost_range = (0.0, 1e9)
    assert algorithm.targets(20.0)[:2] == (40.0, 20.0)
    assert algorithm.targets(80.0)[:2] == (45.0, 80.0)
    assert algorithm.targets(60.0)[0] == pytest.approx(42.5)  # interpolated in cost
    assert algorithm.targets(10.0)[0] == 40.0  # below the table: its first entry


def test_targets_from_the_data_without_a_table(cdt):
    data = load_dataset("ToyVelocity")
    for kappa in (5.0, 10.0, 20.0):
        ret, cost, clipped = cdt.targets(kappa)
        assert cost == kappa and not clipped
        assert ret == pytest.approx(data.episode_returns[data.episode_costs <= kappa].max())


def test_a_target_outside_the_data_is_clipped_with_a_warning(cdt):
    high = float(cdt.batch_source("train").initial_costs.max())
    with pytest.warns(CDTTargetWarning, match="clipped"):
        policy = cdt.policy(10 * high, 2)
    assert policy.target_cost == pytest.approx(high) and policy.clipped
    huge = build(target_returns=[[1e6, 20]], augment_percent=0.0)
    with pytest.warns(CDTTargetWarning, match="return"):
        policy = huge.policy(20.0, 2)
    assert policy.target_return == pytest.approx(huge._return_range[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not cdt.policy(10.0, 2).clipped  # in range: no warning


def test_bad_inputs_are_config_errors(cdt):
    with pytest.raises(ConfigError, match="positive"):
        cdt.policy(0.0, 2)
    with pytest.raises(ConfigError, match="positive"):
        build(cost_limits=(10.0, -1.0))
    with pytest.raises(ConfigError, match="episode_len"):
        build(episode_len=50)
    with pytest.raises(ConfigError, match="num_heads"):
        build(embedding_dim=10, num_heads=4)


class ScriptedEnv:
    """A fixed episode for OSRL's `CDTTrainer.rollout` (rewards pre-scaled like `wrap_env`)."""

    def __init__(self, obs, rewards, costs, reward_scale):
        self.obs, self.rewards, self.costs, self.scale = obs, rewards, costs, reward_scale
        self.actions = []

    def reset(self):
        self.t = 0
        return self.obs[0], {}

    def step(self, action):
        self.actions.append(np.array(action))
        self.t += 1
        done = self.t == len(self.rewards)
        reward = self.rewards[self.t - 1] * self.scale
        return self.obs[self.t], reward, False, done, {"cost": self.costs[self.t - 1]}


def test_policy_reproduces_osrl_rollout_per_episode(cdt):
    """Two envs, the second starting 4 steps later: each env's actions equal OSRL's rollout of
    its own episode (history windows, return/cost-to-go bookkeeping, clamped mean)."""
    rng = np.random.default_rng(0)
    steps = 15  # longer than seq_len: the window rolls
    episodes = [
        (
            rng.normal(size=(steps + 1, 3)).astype(np.float32),
            rng.uniform(0, 2, steps),
            (rng.uniform(size=steps) < 0.3).astype(float),
        )
        for _ in range(2)
    ]
    kappa = 10.0
    policy = cdt.policy(kappa, 2)
    ours = [[], []]
    offset = 4
    obs = np.stack([episodes[0][0][0], episodes[1][0][0]])
    policy.reset(obs, np.array([True, True]))
    for t in range(steps + offset):
        local = [t, t - offset]
        if local[1] == 0:
            policy.reset(np.stack([obs[0], episodes[1][0][0]]), np.array([False, True]))
        obs = np.stack([episodes[i][0][min(max(local[i], 0), steps)] for i in range(2)])
        actions = policy.act(obs)
        np.testing.assert_array_equal(actions, policy.act(obs))  # repeated act: same step
        reward, cost = np.zeros(2), np.zeros(2)
        for i in range(2):
            if 0 <= local[i] < steps:
                ours[i].append(actions[i])
                reward[i], cost[i] = episodes[i][1][local[i]], episodes[i][2][local[i]]
        policy.observe(reward, cost, np.zeros(2, bool))

    cdt.model.eval()
    try:
        for i, (o, r, c) in enumerate(episodes):
            env = ScriptedEnv(o, r, c, 0.1)
            cdt.trainer.rollout(cdt.model, env, policy.target_return * 0.1, policy.target_cost)
            np.testing.assert_allclose(np.array(ours[i]), np.array(env.actions), atol=1e-5)
    finally:
        cdt.model.train()


def test_state_dict_restores_the_temperature_in_place(cdt):
    state = cdt.state_dict()
    other = build(seed=3)
    other.load_state_dict(state)
    assert torch.equal(other.model.log_temperature, cdt.model.log_temperature)
    group = other.trainer.log_temperature_optimizer.param_groups[0]["params"][0]
    assert group is other.model.log_temperature, "the optimiser still updates the live tensor"


@pytest.mark.slow
def test_cdt_meets_every_cost_limit_on_toy_velocity(results_dir):
    """The demo budget: one model, three limits, each safe, with more reward than BC-Safe."""
    from benchmark.runner import RunSpec, execute

    records = execute(RunSpec(algorithm="cdt", task="ToyVelocity", profile="demo"), results_dir)
    safe = execute(
        RunSpec(algorithm="bc_safe", task="ToyVelocity", cost_limit=10.0, profile="demo"),
        results_dir,
    )[0]["metrics"]["normalised_reward"]["mean"]
    assert len(records) == 3
    for record in records:
        assert record["metrics"]["normalised_cost"]["mean"] <= 1.0
        assert record["metrics"]["normalised_reward"]["mean"] > safe
