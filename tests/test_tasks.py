"""benchmark.tasks: the task table read from dsrl's infos.py, task sets, recipes, cached sizes."""

from __future__ import annotations

import json

import pytest

from benchmark import envs, tasks
from benchmark.errors import ConfigError, UnknownTaskError
from benchmark.tasks import ALL_DSRL_TASKS, DSRL_TASKS, expand_task_set, get_task

INFOS = tasks.dsrl_infos()

# The DRCORL table's eleven tasks with DSRL's datasheet sizes (obs, act) and horizons.
DATASHEET = {
    "CarGoal1": (72, 2, 1000), "CarGoal2": (72, 2, 1000), "PointButton1": (76, 2, 1000),
    "PointCircle1": (28, 2, 500), "PointGoal1": (60, 2, 1000), "PointGoal2": (60, 2, 1000),
    "AntVelocity": (27, 8, 1000), "HalfCheetahVelocity": (17, 6, 1000),
    "HopperVelocity": (11, 3, 1000), "Walker2dVelocity": (17, 6, 1000), "CarRun": (7, 2, 200),
}  # fmt: skip


def test_every_dsrl_task_comes_from_infos_with_its_constants():
    assert INFOS is not None
    assert {t.name for t in ALL_DSRL_TASKS} == set(INFOS.DATASET_URLS)
    assert len(ALL_DSRL_TASKS) == 38
    for task in ALL_DSRL_TASKS:
        assert task.dsrl_url == INFOS.DATASET_URLS[task.name]
        assert task.dsrl_file == task.dsrl_url.rsplit("/", 1)[-1]
        assert task.horizon == INFOS.DEFAULT_MAX_EPISODE_STEPS[task.name]
        assert task.reward_min == INFOS.MIN_EPISODE_REWARD[task.name]
        assert task.reward_max == INFOS.MAX_EPISODE_REWARD[task.name]
        assert task.max_cost == INFOS.MAX_EPISODE_COST[task.name]
        assert task.dsrl_file.endswith(f"-{task.dsrl_trajectories}.hdf5")


def test_the_table_is_the_eleven_in_the_drcorl_order_with_their_limits():
    assert [t.name for t in DSRL_TASKS] == list(DATASHEET)
    assert expand_task_set("table") == tuple(DATASHEET)
    for task in DSRL_TASKS:
        assert task.horizon == DATASHEET[task.name][2]
        assert task.drcorl_cost_limit == (30.0 if task.name == "CarRun" else 10.0)
        limits = (10.0, 20.0, 40.0) if task.family == "bullet" else (20.0, 40.0, 80.0)
        assert task.osrl_cost_limits == limits
        assert task.collect is not None and task.collect.steps > 0
    assert get_task("CarGoal1").dsrl_file == "SafetyCarGoal1Gymnasium-v0-120-1671.hdf5"
    assert get_task("CarRun").reward_min == pytest.approx(204.28726196289062)


@pytest.mark.parametrize(
    ("name", "env_id", "family"),
    [
        ("CarGoal1", "OfflineCarGoal1Gymnasium-v0", "navigation"),
        ("PointPush2", "OfflinePointPush2Gymnasium-v0", "navigation"),
        ("SwimmerVelocity", "OfflineSwimmerVelocityGymnasium-v1", "velocity"),
        ("DroneCircle", "OfflineDroneCircle-v0", "bullet"),
        ("easysparse", "OfflineMetadrive-easysparse-v0", "metadrive"),
    ],
)
def test_tasks_by_short_name_or_dsrl_id(name, env_id, family):
    task = get_task(name)
    assert task.env_id == env_id and task.family == family
    assert get_task(env_id) is task and get_task(name.upper()) is task


def test_task_sets_and_lists():
    assert len(expand_task_set("all")) == 38
    assert expand_task_set("toy") == ("ToyVelocity", "ToyPointGoal")
    assert expand_task_set("dsrl") == expand_task_set("table")  # older profiles' name
    assert expand_task_set(["toy", "carrun", "ToyVelocity", "OfflineCarRun-v0"]) == (
        "ToyVelocity",
        "ToyPointGoal",
        "CarRun",
    )
    with pytest.raises(UnknownTaskError, match="task sets: table, all, toy"):
        expand_task_set(["table", "NoSuchTask"])


def test_recipes_for_every_task_with_a_collector_env():
    from benchmark.data.collect import collect_spec

    for task in ALL_DSRL_TASKS:
        assert (task.collect is None) == (task.family == "metadrive")
    # MetaDrive: what cannot run at all is said first (not just "no recipe")
    with pytest.raises(ConfigError, match="easysparse is a MetaDrive task"):
        collect_spec("easysparse")


def test_sizes_come_from_the_json_cache_when_present(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHMARK_CACHE_DIR", str(tmp_path))
    envs._cached_sizes.cache_clear()
    task = get_task("PointGoal2")
    key = f"{task.env_id}|{envs._stack_version(task)}"
    envs.sizes_cache_path().write_text(json.dumps({key: [5, 3]}))

    def no_env(*args, **kwargs):
        raise AssertionError("the cached sizes must not build an env")

    monkeypatch.setattr(envs, "make_env", no_env)
    try:
        assert (task.obs_dim, task.act_dim) == (5, 3)
    finally:
        envs._cached_sizes.cache_clear()


@pytest.mark.simulator
def test_sizes_are_read_from_the_envs_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHMARK_CACHE_DIR", str(tmp_path))
    envs._cached_sizes.cache_clear()
    try:
        for task in DSRL_TASKS:
            assert (task.obs_dim, task.act_dim) == DATASHEET[task.name][:2]
        cache = json.loads(envs.sizes_cache_path().read_text())
        assert len(cache) == 11
    finally:
        envs._cached_sizes.cache_clear()
