"""benchmark.envs: the safety-gymnasium shim, make_env for all tasks, seeding, vector envs."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark import envs
from benchmark.errors import ConfigError, UnknownTaskError
from benchmark.tasks import ALL_DSRL_TASKS, get_task


def test_shim_makes_colours_hashable_and_is_idempotent():
    from safety_gymnasium.assets import color

    before = {k: np.array(v) for k, v in color.COLOR.items()}
    envs.apply_safety_gymnasium_shim()
    first = dict(color.COLOR)
    envs.apply_safety_gymnasium_shim()
    for name, value in color.COLOR.items():
        assert value is first[name]  # a second call changes nothing
        assert type(value).__hash__ is not None and hash(value) == hash(value)
        np.testing.assert_array_equal(value, before[name])  # same data
    # the geom dataclasses that fail on Python 3.11 without the shim now import
    from safety_gymnasium.assets.geoms import Apples  # noqa: F401


def test_unknown_task():
    with pytest.raises(UnknownTaskError, match="known tasks"):
        envs.make_env("NoSuchTask")


def _rollout(env, seed: int, actions: np.ndarray) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for action in actions:
        obs, *_ = env.step(action)
        trace.append(obs)
    return np.array(trace)


SUPPORTED = [t for t in ALL_DSRL_TASKS if t.family != "metadrive" and not t.missing_simulator()]


@pytest.mark.simulator
@pytest.mark.parametrize("task", SUPPORTED, ids=lambda t: t.name)
def test_every_dsrl_task_the_stack_supports_builds_resets_and_steps(task):
    """Every DSRL task of the installed stack (29 of dsrl 0.1.0's 38: not MetaDrive)."""
    env = envs.make_env(task, seed=0)
    try:
        obs, info = env.reset()
        assert obs.shape == (task.obs_dim,) and obs.dtype == np.float32
        assert env.observation_space.dtype == np.float32
        assert env.action_space.shape == (task.act_dim,)
        rng = np.random.default_rng(0)
        for _ in range(5):
            # out-of-range actions are clipped, not passed on to the simulator
            action = rng.uniform(-3, 3, size=task.act_dim)
            obs, reward, terminated, truncated, info = env.step(action)
            assert obs.shape == (task.obs_dim,) and obs.dtype == np.float32
            assert np.isfinite(obs).all() and np.isfinite(reward)
            assert float(info["cost"]) >= 0
            if terminated or truncated:
                env.reset(seed=1)
        assert env.spec.max_episode_steps == task.horizon
    finally:
        env.close()


@pytest.mark.simulator
@pytest.mark.parametrize("name", ["PointGoal1", "CarRun"])
def test_same_seed_same_episode_whatever_the_history(name):
    task = get_task(name)
    actions = np.random.default_rng(1).uniform(-1, 1, size=(15, task.act_dim))
    other = np.random.default_rng(2).uniform(-1, 1, size=(15, task.act_dim))
    env = envs.make_env(task)
    try:
        reference = _rollout(env, 7, actions)  # a fresh env's first episode
        different = _rollout(env, 3, other)  # leaves state the next reset must undo
        np.testing.assert_array_equal(_rollout(env, 7, actions), reference)
        assert not np.array_equal(different[0], reference[0])
    finally:
        env.close()


@pytest.mark.simulator
def test_bullet_seeding_leaves_the_global_numpy_rng_alone():
    env = envs.make_env("CarRun")
    try:
        np.random.seed(123)
        expected = np.random.random()
        np.random.seed(123)
        env.reset(seed=5)
        assert np.random.random() == expected
    finally:
        env.close()


@pytest.mark.simulator
def test_make_env_seed_seeds_the_first_reset():
    first = envs.make_env("HopperVelocity", seed=11)
    second = envs.make_env("HopperVelocity")
    try:
        np.testing.assert_array_equal(first.reset()[0], second.reset(seed=11)[0])
    finally:
        first.close()
        second.close()


@pytest.mark.simulator
def test_vector_env_masks_and_truncates_at_the_horizon():
    task = get_task("CarRun")  # never terminates: every episode ends at the 200-step horizon
    venv = envs.make_vector_env(task, 2)
    try:
        assert isinstance(venv, envs.VectorEnv) and venv.num_envs == 2
        obs = venv.reset([4, 5])
        assert obs.shape == (2, task.obs_dim) and obs.dtype == np.float32
        single = envs.make_env(task)
        np.testing.assert_array_equal(obs[0], single.reset(seed=4)[0])
        single.close()
        active = np.array([True, False])
        for step in range(1, task.horizon + 1):
            new_obs, reward, cost, terminated, truncated = venv.step(np.ones((2, 2)), active)
            assert new_obs.dtype == np.float32 and reward.shape == cost.shape == (2,)
            # the inactive env is not stepped: same obs, no reward, cost or flags
            np.testing.assert_array_equal(new_obs[1], obs[1])
            assert reward[1] == 0 and cost[1] == 0 and not terminated[1] and not truncated[1]
            assert not terminated[0]
            assert truncated[0] == (step == task.horizon)
        # an ended episode is not stepped again
        after = venv.step(np.ones((2, 2)), np.array([True, False]))
        assert after[1][0] == 0 and not after[4][0]
    finally:
        venv.close()


def test_toy_vector_env_follows_the_protocol():
    pytest.importorskip("benchmark.data.toy")
    task = get_task("ToyVelocity")
    venv = envs.make_vector_env(task, 3)
    assert isinstance(venv, envs.VectorEnv) and venv.num_envs == 3
    obs = venv.reset([0, 1, 0])
    assert obs.shape == (3, task.obs_dim)
    np.testing.assert_array_equal(obs[0], obs[2])
    single = envs.make_env(task, seed=1)
    np.testing.assert_allclose(obs[1], single.reset(seed=1)[0])
    out = venv.step(np.zeros((3, task.act_dim)), np.array([True, False, True]))
    assert len(out) == 5 and all(np.asarray(x).shape[0] == 3 for x in out)


def test_vector_env_rejects_bad_sizes():
    with pytest.raises(ValueError, match="at least 1"):
        envs.make_vector_env("CarRun", 0)


@pytest.mark.simulator
def test_headless_world_builds_change_no_observation(monkeypatch):
    """The skybox-free compile (100x faster navigation resets) gives the same episode."""
    from safety_gymnasium import world

    actions = np.random.default_rng(3).uniform(-1, 1, size=(40, 2))
    headless = envs.make_env("PointGoal1")
    fast = _rollout(headless, 5, actions)
    textures = headless.unwrapped.task.world.engine.model.ntex
    headless.close()
    monkeypatch.setattr(world, "xmltodict", world.xmltodict._module)  # the skybox back in
    monkeypatch.setattr(envs, "_headless_world_builds", lambda: None)
    original = envs.make_env("PointGoal1")
    slow = _rollout(original, 5, actions)
    assert original.unwrapped.task.world.engine.model.ntex == textures + 1
    original.close()
    np.testing.assert_array_equal(fast, slow)


def test_tasks_without_their_simulator_name_the_package():
    metadrive = get_task("easysparse")
    if not metadrive.missing_simulator():
        pytest.skip("MetaDrive is installed here")
    with pytest.raises(ConfigError, match="MetaDrive task.*metadrive-simulator and gym are not"):
        envs.make_env(metadrive)
    with pytest.raises(ConfigError, match="MetaDrive task"):
        _ = metadrive.obs_dim


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--algorithm", "bc_safe", "--task", "easysparse", "--profile", "smoke"],
        ["run", "--algorithm", "bc_safe", "--task", "easysparse", "--profile", "smoke"]
        + ["--data", "generated"],
        ["data", "collect", "easysparse"],
    ],
)
def test_a_metadrive_task_is_refused_before_any_advice_about_data(argv, capsys, tmp_path):
    """What cannot run at all is said first; no download or collect advice comes before it."""
    from benchmark.cli import main

    assert main([*argv, *(["--results", str(tmp_path)] if argv[0] == "run" else [])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: easysparse is a MetaDrive task")
    assert "download" not in err and "make data" not in err


def test_a_missing_metadrive_file_is_not_advised_to_be_generated(monkeypatch, tmp_path):
    from benchmark.data.dsrl import how_to_obtain

    advice = how_to_obtain(get_task("easysparse"))
    assert "make data" not in advice and "cannot generate its data" in advice
