"""Toy tasks: determinism, DSRL layout, env agreement, reference returns, and the datasets.md
4.1 criteria that make the default datasets real offline safe-RL problems."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from benchmark import envs_toy
from benchmark.data import load_dataset, toy
from benchmark.errors import UnknownTaskError
from benchmark.tasks import TOY_TASKS, get_task

TOY_NAMES = [t.name for t in TOY_TASKS]


@pytest.fixture(scope="module", params=TOY_NAMES)
def task(request):
    return get_task(request.param)


@pytest.fixture(scope="module")
def data(task):
    return load_dataset(task)


def test_core_matches_task_spec(task):
    core = envs_toy.get_core(task.name)
    assert (core.obs_dim, core.act_dim, core.horizon) == (task.obs_dim, task.act_dim, task.horizon)
    env = envs_toy.make_toy_env(task.name, seed=0)
    assert env.observation_space.shape == (task.obs_dim,)
    assert env.action_space.shape == (task.act_dim,)


@pytest.mark.filterwarnings("ignore:.*Box observation space:UserWarning")
def test_gym_env_passes_gymnasium_checker(task):
    from gymnasium.utils.env_checker import check_env

    check_env(envs_toy.make_toy_env(task.name), skip_render_check=True)


def test_unknown_toy_task_raises():
    with pytest.raises(UnknownTaskError, match="toy tasks"):
        envs_toy.make_toy_env("ToyNope", 0)


# --- determinism -------------------------------------------------------------------------------


def test_same_seed_same_dataset(task):
    a = toy.generate_dataset(task.name, episodes=50, seed=3)
    b = toy.generate_dataset(task.name, episodes=50, seed=3)
    c = toy.generate_dataset(task.name, episodes=50, seed=4)
    assert a.sha256 == b.sha256
    for key, value in a.arrays().items():
        np.testing.assert_array_equal(value, b.arrays()[key])
    assert a.sha256 != c.sha256


def test_default_dataset_is_deterministic_and_cached(task, data):
    assert data.source == "toy"
    assert load_dataset(task) is data  # in-process cache
    fresh = toy.generate_dataset(task.name, toy.DEFAULT_EPISODES, toy.DEFAULT_SEED)
    assert fresh.sha256 == data.sha256


def test_env_reset_is_seeded_and_ignores_global_rng(task):
    env = envs_toy.make_toy_env(task.name)
    np.random.seed(0)
    first, _ = env.reset(seed=7)
    np.random.seed(1)
    again, _ = env.reset(seed=7)
    other, _ = env.reset(seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


# --- layout ------------------------------------------------------------------------------------


def test_dataset_layout(task, data):
    n = len(data)
    assert data.observations.shape == (n, task.obs_dim)
    assert data.next_observations.shape == (n, task.obs_dim)
    assert data.actions.shape == (n, task.act_dim)
    for key in ("rewards", "costs", "terminals", "timeouts"):
        assert getattr(data, key).shape == (n,)
    assert data.observations.dtype == np.float32 and data.terminals.dtype == bool
    assert np.all(np.abs(data.actions) <= 1.0)
    assert set(np.unique(data.costs)) <= {0.0, 1.0}
    assert np.all(np.isfinite(data.observations)) and np.all(np.isfinite(data.rewards))
    # Every trajectory ends on exactly one flag, and only its last row carries one.
    assert not np.any(data.terminals & data.timeouts)
    done = data.terminals | data.timeouts
    assert done[-1]
    assert done.sum() == data.num_episodes == toy.DEFAULT_EPISODES
    # Timeouts only at the horizon (a termination on the last step stays a termination).
    lengths = data.episode_lengths
    assert lengths.max() <= task.horizon
    ends = data.episode_ends - 1
    assert np.all(lengths[data.timeouts[ends]] == task.horizon)
    assert np.all(data.terminals[ends][lengths < task.horizon])
    # next_observations[t] == observations[t + 1] inside every trajectory.
    inner = np.ones(n, dtype=bool)
    inner[ends] = False
    np.testing.assert_array_equal(
        data.next_observations[:-1][inner[:-1]], data.observations[1:][inner[:-1]]
    )
    # Trajectories start from an initial state (t = 0 in the obs of ToyVelocity).
    if task.name == "ToyVelocity":
        np.testing.assert_array_equal(data.observations[data.episode_starts, 2], 0.0)


def test_episode_costs_within_max_cost(task, data):
    assert data.episode_costs.max() <= task.max_cost


# --- environments ------------------------------------------------------------------------------


def _fixed_actions(task, steps: int) -> np.ndarray:
    rng = np.random.default_rng(42)
    return rng.uniform(-1.0, 1.0, size=(steps, task.act_dim)) * 0.8 + 0.2


def test_gym_env_agrees_with_batched_core_and_vector_env(task):
    actions = _fixed_actions(task, task.horizon)
    seeds = [11, 12, 13]
    vec = envs_toy.ToyVectorEnv(task.name, len(seeds))
    vec_obs = vec.reset(seeds)
    for i, seed in enumerate(seeds):
        env = envs_toy.make_toy_env(task.name)
        obs, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(obs, vec_obs[i])
    singles = [envs_toy.make_toy_env(task.name) for _ in seeds]
    for env, seed in zip(singles, seeds):
        env.reset(seed=seed)
    active = np.ones(len(seeds), dtype=bool)
    for t in range(task.horizon):
        batch = np.repeat(actions[t][None], len(seeds), axis=0)
        v_obs, v_rew, v_cost, v_term, v_trunc = vec.step(batch, active)
        for i, env in enumerate(singles):
            if not active[i]:
                continue
            obs, rew, term, trunc, info = env.step(actions[t])
            np.testing.assert_array_equal(obs, v_obs[i])
            assert rew == v_rew[i] and info["cost"] == v_cost[i]
            assert (term, trunc) == (bool(v_term[i]), bool(v_trunc[i]))
        active &= ~(v_term | v_trunc)
        if not active.any():
            break
    assert not active.any()  # every episode ended, at the latest at the horizon
    # Ended rows stay put until the next reset, even when stepped as active.
    frozen = vec.step(np.ones((len(seeds), task.act_dim)), np.ones(len(seeds), dtype=bool))
    np.testing.assert_array_equal(frozen[0], v_obs)
    assert not np.any(frozen[1]) and not np.any(frozen[2]) and not np.any(frozen[3] | frozen[4])
    vec.close()


def test_vector_env_does_not_advance_inactive_rows(task):
    vec = envs_toy.ToyVectorEnv(task.name, 2)
    obs0 = vec.reset([0, 1])
    actions = np.ones((2, task.act_dim))
    obs, reward, cost, term, trunc = vec.step(actions, np.array([True, False]))
    np.testing.assert_array_equal(obs[1], obs0[1])
    assert reward[1] == 0.0 and cost[1] == 0.0 and not term[1] and not trunc[1]
    assert not np.array_equal(obs[0], obs0[0])
    assert obs.shape == (2, task.obs_dim) and obs.dtype == np.float32


def test_velocity_truncates_at_horizon():
    env = envs_toy.make_toy_env("ToyVelocity")
    env.reset(seed=0)
    for t in range(100):
        _, _, term, trunc, info = env.step(np.zeros(1))
        assert not term
        assert trunc == (t == 99)
        assert info["cost"] == 0.0


def test_velocity_cost_is_speed_above_limit():
    env = envs_toy.make_toy_env("ToyVelocity")
    env.reset(seed=0)
    costs, rewards = [], []
    for _ in range(60):
        obs, reward, _, _, info = env.step(np.ones(1))
        costs.append(info["cost"])
        rewards.append(reward)
        assert info["cost"] == float(obs[1] > envs_toy.V_LIMIT)
        assert reward == pytest.approx(float(obs[1]), abs=1e-6)
    assert costs[0] == 0.0 and costs[-1] == 1.0  # full throttle crosses the limit


def test_point_goal_laps_costs_and_out_of_bounds():
    core = envs_toy.get_core("ToyPointGoal")
    start = [-2.0, -2.5]
    # A robot just short of the goal heading at it, one in a hazard, one leaving the arena.
    state = np.array(
        [
            [envs_toy.P_GOAL[0] - 0.35, envs_toy.P_GOAL[1], 2.0, 0.0, *start, 5.0],
            [envs_toy.P_HAZARDS[0, 0], envs_toy.P_HAZARDS[0, 1], 0.0, 0.0, *start, 5.0],
            [envs_toy.P_BOUND - 0.01, -3.0, 2.0, 0.0, *start, 5.0],
        ]
    )
    nxt, reward, cost, terminated = core.step(state, np.zeros((3, 2)))
    np.testing.assert_array_equal(terminated, [False, False, True])
    np.testing.assert_array_equal(cost, [0.0, 1.0, 0.0])
    assert reward[0] == pytest.approx(0.1 + envs_toy.P_GOAL_BONUS)  # progress plus the bonus
    np.testing.assert_array_equal(nxt[0, :2], start)  # the goal puts it back at its start
    np.testing.assert_array_equal(nxt[:, -1], 6.0)
    assert nxt[0, 2] == 2.0  # speed kept


def test_point_goal_cutting_through_hazards_buys_reward():
    """The noise-free scripted drivers: hazard-blind is unsafe and best; repulsion is safe."""
    task = get_task("ToyPointGoal")
    core = envs_toy.get_core(task.name)
    starts = envs_toy.point_initial_state(np.random.default_rng(5), 200)

    def drive(alpha):
        n = len(starts)
        params = {"alpha": np.full(n, alpha), "speed": np.full(n, 2.0), "sigma": np.zeros(n)}

        def act(state, rng):
            return toy._point_behaviour_act(params, state, rng)

        roll = toy.rollout(core, act, starts, np.random.default_rng(0))
        return task.normalise_reward(roll.returns).mean(), roll.episode_costs.mean()

    blind_r, blind_c = drive(0.0)
    careful_r, careful_c = drive(2.0)
    assert blind_c > 3 * task.drcorl_cost_limit and careful_c < task.drcorl_cost_limit
    assert blind_r > careful_r + 0.1 and careful_r > 0.6


# --- reference returns -------------------------------------------------------------------------


@pytest.mark.parametrize("name", TOY_NAMES)
def test_reference_returns_match_task_spec(name):
    """The TaskSpec stores reference_returns() rounded to 3 decimals: tolerance 1e-3."""
    rmin, rmax = toy.reference_returns(name)
    spec = get_task(name)
    assert spec.reward_min == pytest.approx(rmin, abs=1e-3)
    assert spec.reward_max == pytest.approx(rmax, abs=1e-3)
    assert rmax > rmin


def test_velocity_safe_optimum_dominates_safe_data():
    task = get_task("ToyVelocity")
    data = load_dataset(task)
    kappa = task.drcorl_cost_limit
    ret, cost = toy.velocity_safe_optimum(kappa)
    assert cost <= kappa
    best_safe = data.episode_returns[data.episode_costs <= kappa].max()
    # Starts differ (|v0| <= 0.1 changes a return by about 1): a small tolerance.
    assert ret >= best_safe - 1.0
    assert task.normalise_reward(ret) > 0.75
    # A larger budget is worth (a little) more.
    assert toy.velocity_safe_optimum(2 * kappa)[0] > ret


# --- the datasets.md 4.1 criteria at the default cost limit -----------------------------------


def test_dataset_is_a_real_offline_safe_rl_problem(task, data):
    kappa = task.drcorl_cost_limit
    returns, costs = data.episode_returns, data.episode_costs
    norm = task.normalise_reward(returns)
    safe = costs <= kappa
    # Behaviour cloning on all data is unsafe: the mean episode cost, the median trajectory
    # and the return-weighted (high-reward) part of the data all exceed the limit.
    assert costs.mean() > kappa
    assert np.median(costs) > kappa
    weights = np.clip(norm, 0.0, None)
    assert np.sum(weights * costs) / weights.sum() > kappa
    top = norm >= np.quantile(norm, 0.75)
    assert costs[top].mean() > kappa
    # Both sides of the threshold, with high reward on both.
    assert 0.15 <= safe.mean() <= 0.5
    assert safe.sum() >= 30
    assert norm[safe].max() >= 0.7
    assert np.sum(safe & (norm >= 0.7)) >= 30
    assert np.sum(~safe & (norm >= 0.7)) >= 30
    assert np.mean(costs > 2 * kappa) >= 0.3
    # The safe high-reward region is present but not dominant: cloning the safe data alone
    # (BC-Safe) averages far below the best safe trajectory.
    assert norm[safe].mean() < norm[safe].max() - 0.2


def test_velocity_has_a_monotone_trade_off():
    data = load_dataset("ToyVelocity")
    rho = spearmanr(data.episode_costs, data.episode_returns).statistic
    assert rho > 0.3


def test_point_goal_has_a_zero_cost_column():
    task = get_task("ToyPointGoal")
    data = load_dataset(task)
    costs = data.episode_costs
    zero = costs == 0
    assert zero.mean() >= 0.1
    norm = task.normalise_reward(data.episode_returns[zero])
    # The column spans the reward range, from poor to near-best returns.
    assert norm.min() < 0.5 and norm.max() > 0.9
    assert data.terminals.any() and data.timeouts.any()  # goal/out-of-bounds and horizon
