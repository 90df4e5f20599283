"""The task registry: the eleven DSRL tasks of the DRCORL table and the suite's toy tasks.

Reference values are DSRL's (`dsrl/infos.py`, full precision). Adding a DSRL task is adding
a `TaskSpec` to `DSRL_TASKS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.errors import UnknownTaskError

SAFETY_GYMNASIUM_LIMITS = (20.0, 40.0, 80.0)
BULLET_LIMITS = (10.0, 20.0, 40.0)


@dataclass(frozen=True)
class TaskSpec:
    """One task: how to build its env, where its data lives, and how to normalise scores."""

    name: str
    """Short name used everywhere in the suite (`CarGoal1`, `ToyVelocity`)."""
    env_id: str
    """Gymnasium id (the DSRL `...Gymnasium-v0/v1` id for safety-gymnasium tasks)."""
    family: str
    """`navigation`, `velocity`, `bullet` or `toy`: decides env construction and data recipe."""
    obs_dim: int
    act_dim: int
    horizon: int
    """Episode length (DSRL's `DEFAULT_MAX_EPISODE_STEPS`)."""
    reward_min: float
    """`MIN_EPISODE_REWARD`: normalised reward is (R - reward_min) / (reward_max - reward_min)."""
    reward_max: float
    max_cost: float
    """`MAX_EPISODE_COST`: the largest episode cost kept in the DSRL data."""
    drcorl_cost_limit: float
    """The single threshold of the DRCORL table (its `--cost_scale`)."""
    osrl_cost_limits: tuple[float, ...]
    """The three thresholds OSRL, CDT and CAPS average over."""
    dsrl_file: str | None = None
    """DSRL's HDF5 file name (basename of `DATASET_URLS[env_id]`); None for toy tasks."""
    dsrl_trajectories: int = 0
    """Trajectory count of the DSRL file (the trailing number of its name)."""

    @property
    def is_toy(self) -> bool:
        return self.family == "toy"

    def normalise_reward(self, episode_return):
        return (episode_return - self.reward_min) / (self.reward_max - self.reward_min)


def _sg(name, env_id, family, obs, act, horizon, rmin, rmax, cmax, dsrl_file, traj, limit=10.0):
    return TaskSpec(
        name=name,
        env_id=env_id,
        family=family,
        obs_dim=obs,
        act_dim=act,
        horizon=horizon,
        reward_min=rmin,
        reward_max=rmax,
        max_cost=cmax,
        drcorl_cost_limit=limit,
        osrl_cost_limits=BULLET_LIMITS if family == "bullet" else SAFETY_GYMNASIUM_LIMITS,
        dsrl_file=dsrl_file,
        dsrl_trajectories=traj,
    )


# fmt: off
DSRL_TASKS: tuple[TaskSpec, ...] = (
    _sg("CarGoal1", "OfflineCarGoal1Gymnasium-v0", "navigation", 72, 2, 1000,
        0.012232819540852091, 39.907809198384705, 120.0,
        "SafetyCarGoal1Gymnasium-v0-120-1671.hdf5", 1671),
    _sg("CarGoal2", "OfflineCarGoal2Gymnasium-v0", "navigation", 72, 2, 1000,
        0.001032874531954775, 28.902897990056502, 200.0,
        "SafetyCarGoal2Gymnasium-v0-200-4105.hdf5", 4105),
    _sg("PointButton1", "OfflinePointButton1Gymnasium-v0", "navigation", 76, 2, 1000,
        0.008822109034937853, 41.19301568767707, 200.0,
        "SafetyPointButton1Gymnasium-v0-200-2268.hdf5", 2268),
    _sg("PointCircle1", "OfflinePointCircle1Gymnasium-v0", "navigation", 28, 2, 500,
        20.067626953125, 61.72819519042969, 200.0,
        "SafetyPointCircle1Gymnasium-v0-200-1098.hdf5", 1098),
    _sg("PointGoal1", "OfflinePointGoal1Gymnasium-v0", "navigation", 60, 2, 1000,
        0.01196012764197707, 30.071114857340543, 100.0,
        "SafetyPointGoal1Gymnasium-v0-100-2022.hdf5", 2022),
    _sg("PointGoal2", "OfflinePointGoal2Gymnasium-v0", "navigation", 60, 2, 1000,
        0.002616959830266108, 27.717709787852737, 200.0,
        "SafetyPointGoal2Gymnasium-v0-200-3442.hdf5", 3442),
    _sg("AntVelocity", "OfflineAntVelocityGymnasium-v1", "velocity", 27, 8, 1000,
        6.1519012451171875, 2976.276611328125, 250.0,
        "SafetyAntVelocityGymnasium-v1-250-2249.hdf5", 2249),
    _sg("HalfCheetahVelocity", "OfflineHalfCheetahVelocityGymnasium-v1", "velocity", 17, 6, 1000,
        5.7509765625, 2806.93310546875, 250.0,
        "SafetyHalfCheetahVelocityGymnasium-v1-250-2495.hdf5", 2495),
    _sg("HopperVelocity", "OfflineHopperVelocityGymnasium-v1", "velocity", 11, 3, 1000,
        37.05154800415039, 1911.396728515625, 250.0,
        "SafetyHopperVelocityGymnasium-v1-250-2240.hdf5", 2240),
    _sg("Walker2dVelocity", "OfflineWalker2dVelocityGymnasium-v1", "velocity", 17, 6, 1000,
        18.668498992919922, 3418.223876953125, 300.0,
        "SafetyWalker2dVelocityGymnasium-v1-300-2729.hdf5", 2729),
    # DRCORL's top-level CarRun script uses cost_scale 30; its 5-seed block uses 10
    # (drcorl.md 2.3). We follow the top-level script; profiles can override the limit.
    _sg("CarRun", "OfflineCarRun-v0", "bullet", 7, 2, 200,
        204.28726196289062, 574.6533203125, 40.0,
        "SafetyCarRun-v0-40-651.hdf5", 651, limit=30.0),
)

# Toy tasks (benchmark/data/toy.py). Their reference returns come from fixed policies:
# `python -m benchmark.data.toy` recomputes them and tests/data/test_toy.py checks these values.
TOY_TASKS: tuple[TaskSpec, ...] = (
    TaskSpec(name="ToyVelocity", env_id="ToyVelocity-v0", family="toy", obs_dim=3, act_dim=1,
             horizon=100, reward_min=0.150, reward_max=182.899, max_cost=100.0,
             drcorl_cost_limit=10.0, osrl_cost_limits=(5.0, 10.0, 20.0)),
    TaskSpec(name="ToyPointGoal", env_id="ToyPointGoal-v0", family="toy", obs_dim=11, act_dim=2,
             horizon=200, reward_min=0.140, reward_max=25.354, max_cost=150.0,
             drcorl_cost_limit=10.0, osrl_cost_limits=(5.0, 10.0, 20.0)),
)
# fmt: on

ALL_TASKS: dict[str, TaskSpec] = {t.name: t for t in DSRL_TASKS + TOY_TASKS}


def get_task(name: str) -> TaskSpec:
    """Look a task up by short name (case-insensitive) or env id."""
    for task in ALL_TASKS.values():
        if name.lower() in (task.name.lower(), task.env_id.lower()):
            return task
    known = ", ".join(ALL_TASKS)
    raise UnknownTaskError(f"unknown task {name!r}; known tasks: {known}")


def dsrl_task_names() -> list[str]:
    return [t.name for t in DSRL_TASKS]
