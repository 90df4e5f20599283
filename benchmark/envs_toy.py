"""The toy tasks' dynamics and environments (clean-room, numpy-batched; no simulator).

Two tasks, each a batched numpy core (pure functions of an (N, state_dim) state array, so N
episodes step at once) plus a thin `gymnasium.Env` wrapper and a natively vectorised env for
evaluation (`ToyVectorEnv`). `benchmark.envs` builds them for the toy TaskSpecs; the toy
datasets and their scripted behaviour policies live in `benchmark.data.toy`.

- `ToyVelocity` (velocity-like): a 1-D point mass with drag, horizon 100. Reward per step is
  the forward velocity; cost is 1 whenever the velocity exceeds `V_LIMIT`.
- `ToyPointGoal` (navigation-like): a unicycle drives laps from its start to a fixed goal past
  a wall of two circular hazards (cost 1 inside a hazard), horizon 200. Reward is the progress
  toward the goal plus a bonus on reaching it; leaving the arena terminates.

Why the dynamics are as they are (goal respawn, the hazard wall, the horizon) is explained in
`benchmark.data.toy`'s docstring, next to the data those choices were measured on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import gymnasium as gym
import numpy as np

from benchmark.errors import UnknownTaskError


def _constant(values) -> np.ndarray:
    """A read-only array: module constants must not be mutable state."""
    array = np.array(values, dtype=np.float64)
    array.setflags(write=False)
    return array


# ---------------------------------------------------------------------------------------------
# ToyVelocity: state columns (x, v, t)
# ---------------------------------------------------------------------------------------------

V_DRAG = 0.1
"""Velocity decay per step: with a constant action a the speed settles at a * V_GAIN / V_DRAG."""
V_GAIN = 0.2
V_TOP = V_GAIN / V_DRAG
"""Top speed (action 1 held forever): 2."""
V_LIMIT = 1.5
"""Speed above which a step costs 1."""
V_HORIZON = 100


def velocity_initial_state(rng: np.random.Generator, n: int) -> np.ndarray:
    state = np.zeros((n, 3))
    state[:, 1] = rng.uniform(-0.1, 0.1, size=n)
    return state


def velocity_observe(state: np.ndarray) -> np.ndarray:
    """(distance travelled / horizon, velocity, elapsed fraction of the horizon)."""
    obs = np.stack([state[:, 0] / V_HORIZON, state[:, 1], state[:, 2] / V_HORIZON], axis=1)
    return obs.astype(np.float32)


def velocity_step(state: np.ndarray, actions: np.ndarray):
    """One step of N point masses -> (next state, reward, cost, terminated)."""
    a = np.clip(actions[:, 0], -1.0, 1.0)
    v = (1.0 - V_DRAG) * state[:, 1] + V_GAIN * a
    nxt = np.stack([state[:, 0] + v, v, state[:, 2] + 1.0], axis=1)
    cost = (v > V_LIMIT).astype(np.float64)
    return nxt, v.copy(), cost, np.zeros(len(state), dtype=bool)


# ---------------------------------------------------------------------------------------------
# ToyPointGoal: state columns (x, y, v, theta, x0, y0, t); (x0, y0) is the episode's start
# ---------------------------------------------------------------------------------------------

P_DT = 0.05
P_ACCEL = 3.0
"""Speed change per second at action 1."""
P_TURN = 3.0
"""Turn rate (rad/s) at action 1: the turning radius grows with speed."""
P_V_TOP = 2.0
P_BOUND = 3.2
"""The arena is [-P_BOUND, P_BOUND]^2; leaving it terminates the episode."""
P_START = 3.0
P_GOAL = _constant([2.2, 2.2])
P_GOAL_RADIUS = 0.3
P_GOAL_BONUS = 1.0
P_HAZARDS = _constant([[0.0, 0.9], [0.9, 0.0]])
"""Two overlapping discs: a wall across the diagonal between the start region and the goal."""
P_HAZARD_RADIUS = 0.9
P_HORIZON = 200


def _point_valid_start(xy: np.ndarray) -> np.ndarray:
    """Starts on the far side of the hazard wall (x + y < 0.5), outside every hazard."""
    d_h = np.linalg.norm(xy[:, None, :] - P_HAZARDS[None], axis=2)
    return np.all(d_h > P_HAZARD_RADIUS + 0.1, axis=1) & (xy[:, 0] + xy[:, 1] < 0.5)


def point_initial_state(rng: np.random.Generator, n: int) -> np.ndarray:
    state = np.zeros((n, 7))
    todo = np.arange(n)
    while todo.size:  # rejection sampling, vectorised over the rows still to draw
        state[todo, :2] = rng.uniform(-P_START, P_START, size=(todo.size, 2))
        todo = todo[~_point_valid_start(state[todo, :2])]
    state[:, 3] = rng.uniform(-np.pi, np.pi, size=n)
    state[:, 4:6] = state[:, :2]
    return state


def point_observe(state: np.ndarray) -> np.ndarray:
    """(x, y, v, cos th, sin th) and per hazard (distance, cos and sin of its bearing)."""
    xy, theta = state[:, :2], state[:, 3]
    cols = [xy[:, 0], xy[:, 1], state[:, 2], np.cos(theta), np.sin(theta)]
    for centre in P_HAZARDS:
        delta = centre - xy
        bearing = np.arctan2(delta[:, 1], delta[:, 0]) - theta
        cols += [np.linalg.norm(delta, axis=1), np.cos(bearing), np.sin(bearing)]
    return np.stack(cols, axis=1).astype(np.float32)


def point_step(state: np.ndarray, actions: np.ndarray):
    """One step of N unicycles -> (next state, reward, cost, terminated).

    Reaching the goal pays the progress plus a bonus and puts the robot back at its start
    (speed and heading kept): the analogue of Safety-Gymnasium's goal respawn. With a
    terminal goal the progress would telescope to the start distance whatever the path, and
    no cost could buy reward; with laps, a short path through the hazards buys more laps.
    """
    a = np.clip(actions, -1.0, 1.0)
    v = np.clip(state[:, 2] + P_DT * P_ACCEL * a[:, 0], 0.0, P_V_TOP)
    theta = np.mod(state[:, 3] + P_DT * P_TURN * a[:, 1] + np.pi, 2 * np.pi) - np.pi
    xy = state[:, :2] + P_DT * v[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    d_before = np.linalg.norm(state[:, :2] - P_GOAL, axis=1)
    d_after = np.linalg.norm(xy - P_GOAL, axis=1)
    reached = d_after <= P_GOAL_RADIUS
    reward = d_before - d_after + P_GOAL_BONUS * reached
    cost = np.any(
        np.linalg.norm(xy[:, None] - P_HAZARDS[None], axis=2) < P_HAZARD_RADIUS, axis=1
    ).astype(np.float64)
    out = np.any(np.abs(xy) > P_BOUND, axis=1)
    xy = np.where(reached[:, None], state[:, 4:6], xy)
    nxt = np.concatenate(
        [xy, v[:, None], theta[:, None], state[:, 4:6], state[:, 6:7] + 1.0], axis=1
    )
    return nxt, reward, cost, out


# ---------------------------------------------------------------------------------------------
# The cores, by task name
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToyCore:
    """A batched task: pure functions of an (N, state_dim) float64 state array."""

    name: str
    obs_dim: int
    act_dim: int
    horizon: int
    initial_state: Callable[[np.random.Generator, int], np.ndarray]
    observe: Callable[[np.ndarray], np.ndarray]
    step: Callable[[np.ndarray, np.ndarray], tuple]


CORES: MappingProxyType[str, ToyCore] = MappingProxyType(
    {
        "ToyVelocity": ToyCore(
            "ToyVelocity", 3, 1, V_HORIZON, velocity_initial_state, velocity_observe, velocity_step
        ),
        "ToyPointGoal": ToyCore(
            "ToyPointGoal", 11, 2, P_HORIZON, point_initial_state, point_observe, point_step
        ),
    }
)


def get_core(task_name: str) -> ToyCore:
    if task_name not in CORES:
        raise UnknownTaskError(f"unknown toy task {task_name!r}; toy tasks: {', '.join(CORES)}")
    return CORES[task_name]


# ---------------------------------------------------------------------------------------------
# Environments
# ---------------------------------------------------------------------------------------------


class ToyEnv(gym.Env):
    """One toy episode at a time, on top of the batched core (a batch of one)."""

    metadata = {"render_modes": []}

    def __init__(self, task_name: str):
        self.core = get_core(task_name)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.core.obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.core.act_dim,), np.float32)
        self._state: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)  # seeds self.np_random: default_rng(seed), like ToyVectorEnv
        self._state = self.core.initial_state(self.np_random, 1)
        return self.core.observe(self._state)[0], {}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, dtype=np.float64).reshape(1, self.core.act_dim)
        self._state, reward, cost, terminated = self.core.step(self._state, action)
        truncated = bool(self._state[0, -1] >= self.core.horizon) and not terminated[0]
        obs = self.core.observe(self._state)[0]
        return obs, float(reward[0]), bool(terminated[0]), truncated, {"cost": float(cost[0])}


def make_toy_env(task_name: str, seed: int | None = None) -> gym.Env:
    """A gymnasium env of a toy task; `seed` seeds its first reset (and action space)."""
    env = ToyEnv(task_name)
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


class ToyVectorEnv:
    """N episodes of a toy task stepping at once (the evaluation protocol of benchmark.envs).

    Row i reset with seed s starts where `make_toy_env(task, s).reset(seed=s)` does. Rows whose
    `active` flag is False, and rows whose episode has ended (terminated, or truncated at the
    horizon), are not advanced until the next reset: their obs come back unchanged, with zero
    reward and cost and both flags False.
    """

    def __init__(self, task_name: str, num_envs: int):
        self.core = get_core(task_name)
        self.num_envs = int(num_envs)
        self._state = self.core.initial_state(np.random.default_rng(0), self.num_envs)
        self._done = np.ones(self.num_envs, dtype=bool)

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        if len(seeds) != self.num_envs:
            raise ValueError(f"reset got {len(seeds)} seeds for {self.num_envs} envs")
        # One generator per seed (a loop over rows only at reset) keeps every row identical
        # to the single env reset with that seed, whatever the batch.
        self._state = np.concatenate(
            [self.core.initial_state(np.random.default_rng(int(s)), 1) for s in seeds]
        )
        self._done[:] = False
        return self.core.observe(self._state)

    def step(self, actions: np.ndarray, active: np.ndarray | None = None):
        n = self.num_envs
        live = ~self._done
        if active is not None:
            live &= np.asarray(active, dtype=bool)
        actions = np.asarray(actions, dtype=np.float64).reshape(n, self.core.act_dim)
        nxt, reward, cost, terminated = self.core.step(self._state, actions)
        self._state = np.where(live[:, None], nxt, self._state)
        terminated = terminated & live
        truncated = (self._state[:, -1] >= self.core.horizon) & ~terminated & live
        self._done |= terminated | truncated
        return (
            self.core.observe(self._state),
            np.where(live, reward, 0.0),
            np.where(live, cost, 0.0),
            terminated,
            truncated,
        )

    def close(self) -> None:
        pass
