"""Built-in toy tasks: small, fast, numpy-vectorised safe-RL problems of our own (clean-room).

Two tasks, each a batched numpy core (pure functions of an (N, state_dim) state array, so N
episodes step at once) plus a thin `gymnasium.Env` wrapper and a natively vectorised env for
evaluation (`ToyVectorEnv`):

- `ToyVelocity` (velocity-like): a 1-D point mass with drag, horizon 100. Reward per step is
  the forward velocity; cost is 1 whenever the velocity exceeds `V_LIMIT`. A clean monotone
  trade-off with a known best safe policy (`velocity_safe_optimum`: accelerate to the limit,
  cruise on it, spend the cost budget at full throttle on the last steps).
- `ToyPointGoal` (navigation-like): a unicycle drives laps from its start to a fixed goal past
  a wall of two circular hazards (cost 1 inside a hazard), horizon 200. Reward is the progress
  toward the goal plus a bonus on reaching it; leaving the arena terminates. A noisy trade-off
  (cutting through the hazards buys laps) with a column of C = 0 trajectories, like DSRL's
  Goal tasks.

Datasets come from scripted behaviour policies with a safety knob (target speed and when to
exceed it; hazard-repulsion weight), random speeds and Gaussian action noise: 2,000 episodes
take about a second. The TaskSpecs' `reward_min`/`reward_max` are computed by
`reference_returns` from fixed policies; `python -m benchmark.data.toy` prints them.

Deviations from the proposal of datasets.md 3.1 (which follows FISOR's / DRCORL's
`point_robot.py` idea; none of its code is used here), each measured on the default data:
- ToyPointGoal respawns at its start on reaching the goal instead of terminating. With a
  terminal goal the progress reward telescopes to the start distance whatever the path, so
  every scripted policy that arrives scores the same (normalised 0.70 for hazard repulsion
  alpha = 0 and 4 alike) and no cost buys any reward: there was no offline safe-RL problem.
- Its hazards form a wall between the start region (x + y < 0.5) and the goal, and its
  horizon is 200, not 300: with the proposed layout 78-90% of trajectories were safe at
  kappa = 10, and 200 steps already hold about 3.5 laps at full speed.
- Cost is 1 *inside* a hazard, resets use the env's own seeded generator, terminated and
  truncated are distinct, and the horizon is enforced (the faults datasets.md 3.1 lists for
  `point_robot.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

import gymnasium as gym
import numpy as np

from benchmark.data.dataset import Dataset, from_arrays
from benchmark.errors import UnknownTaskError
from benchmark.tasks import TOY_TASKS, TaskSpec, get_task

GENERATOR_VERSION = 1
"""Bump when the dynamics, the behaviour policies or the recipe change: data sha256 changes."""
DEFAULT_EPISODES = 2000
DEFAULT_SEED = 0


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


# ---------------------------------------------------------------------------------------------
# Scripted behaviour policies: params are drawn per episode, actions are batched
# ---------------------------------------------------------------------------------------------


def _velocity_behaviour_params(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Cruise at speed s1, switch to speed s2 at step t_switch; Gaussian noise sigma.

    The safety knob is (s1, s2, t_switch): s1 = s2 <= V_LIMIT is safe, s2 > V_LIMIT spends
    about (horizon - t_switch) cost. The mixture puts most episodes above the limit, so
    behaviour cloning on all data is unsafe.
    """
    kind = rng.choice(3, size=n, p=[0.3, 0.4, 0.3])
    safe_speed = rng.uniform(0.0, V_LIMIT, size=n)
    fast_speed = rng.uniform(V_LIMIT, V_TOP, size=n)
    s1 = np.where(kind == 0, safe_speed, np.where(kind == 1, fast_speed, safe_speed))
    s2 = np.where(kind == 0, safe_speed, fast_speed)
    t_switch = np.where(kind == 2, rng.integers(0, V_HORIZON, size=n), V_HORIZON)
    sigma = rng.choice([0.02, 0.1, 0.2, 0.4], size=n)
    return {"s1": s1, "s2": s2, "t_switch": t_switch, "sigma": sigma}


def _velocity_behaviour_act(params, state, rng) -> np.ndarray:
    target = np.where(state[:, 2] < params["t_switch"], params["s1"], params["s2"])
    # Feed-forward (the action that holds `target` against drag) plus proportional feedback.
    a = V_DRAG * target / V_GAIN + (target - state[:, 1])
    a = a + params["sigma"] * rng.standard_normal(len(state))
    return np.clip(a, -1.0, 1.0)[:, None]


P_ALPHAS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
P_ALPHA_PROBS = (0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1)
"""40% hazard-blind drivers: enough unsafe trajectories that cloning all data is unsafe."""


def _point_behaviour_params(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Go-to-goal with hazard repulsion alpha (the safety knob), target speed, action noise."""
    return {
        "alpha": rng.choice(P_ALPHAS, size=n, p=P_ALPHA_PROBS),
        "speed": rng.uniform(0.5, P_V_TOP, size=n),
        "sigma": rng.choice([0.05, 0.2, 0.5, 1.0], size=n),
    }


def _point_heading(params, state) -> np.ndarray:
    """Desired heading: toward the goal plus alpha times a repulsion (with a swirl) per hazard."""
    xy = state[:, :2]
    to_goal = P_GOAL - xy
    direction = to_goal / np.maximum(np.linalg.norm(to_goal, axis=1, keepdims=True), 1e-9)
    for centre in P_HAZARDS:
        away = xy - centre
        dist = np.maximum(np.linalg.norm(away, axis=1, keepdims=True), 1e-9)
        away = away / dist
        # Tangential part, turning the way the goal lies, so the field does not stall in front
        # of a hazard.
        tangent = np.stack([-away[:, 1], away[:, 0]], axis=1)
        side = np.sign(np.sum(tangent * direction, axis=1, keepdims=True) + 1e-9)
        weight = np.exp(-(dist - P_HAZARD_RADIUS) / 0.4)
        direction = direction + params["alpha"][:, None] * weight * (away + side * tangent)
    return np.arctan2(direction[:, 1], direction[:, 0])


def _point_behaviour_act(params, state, rng) -> np.ndarray:
    error = np.mod(_point_heading(params, state) - state[:, 3] + np.pi, 2 * np.pi) - np.pi
    turn = 2.0 * error
    throttle = 2.0 * (params["speed"] - state[:, 2])
    a = np.stack([throttle, turn], axis=1)
    a = a + params["sigma"][:, None] * rng.standard_normal(a.shape)
    return np.clip(a, -1.0, 1.0)


BEHAVIOURS = MappingProxyType(
    {
        "ToyVelocity": (_velocity_behaviour_params, _velocity_behaviour_act),
        "ToyPointGoal": (_point_behaviour_params, _point_behaviour_act),
    }
)


# ---------------------------------------------------------------------------------------------
# Rollouts and datasets
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rollout:
    """N episodes stepped in lock-step: (N, horizon, ...) arrays plus an `alive` mask."""

    observations: np.ndarray
    next_observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    costs: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    alive: np.ndarray

    @property
    def returns(self) -> np.ndarray:
        return np.sum(self.rewards * self.alive, axis=1)

    @property
    def episode_costs(self) -> np.ndarray:
        return np.sum(self.costs * self.alive, axis=1)


def rollout(core: ToyCore, act, state: np.ndarray, rng: np.random.Generator) -> Rollout:
    """Run `act(state, rng) -> actions` from `state` until every episode ended."""
    n, horizon = len(state), core.horizon
    obs = np.zeros((n, horizon, core.obs_dim), dtype=np.float32)
    next_obs = np.zeros_like(obs)
    actions = np.zeros((n, horizon, core.act_dim), dtype=np.float32)
    rewards = np.zeros((n, horizon))
    costs = np.zeros((n, horizon))
    terminals = np.zeros((n, horizon), dtype=bool)
    timeouts = np.zeros((n, horizon), dtype=bool)
    alive = np.zeros((n, horizon), dtype=bool)
    running = np.ones(n, dtype=bool)
    current = core.observe(state)
    for t in range(horizon):
        if not running.any():
            break
        a = np.clip(act(state, rng), -1.0, 1.0)
        nxt, reward, cost, terminated = core.step(state, a)
        nxt_obs = core.observe(nxt)
        obs[:, t], next_obs[:, t], actions[:, t] = current, nxt_obs, a
        rewards[:, t], costs[:, t], alive[:, t] = reward, cost, running
        terminals[:, t] = terminated & running
        timeouts[:, t] = running & ~terminated & (t + 1 == horizon)
        running = running & ~terminated
        # Ended rows keep stepping (cheaper than compacting) but are masked out by `alive`.
        state, current = nxt, nxt_obs
    return Rollout(obs, next_obs, actions, rewards, costs, terminals, timeouts, alive)


def _behaviour_rollout(task_name: str, episodes: int, seed: int) -> Rollout:
    core = get_core(task_name)
    params_fn, act_fn = BEHAVIOURS[task_name]
    rng = np.random.default_rng([seed, GENERATOR_VERSION])
    params = params_fn(rng, episodes)
    state = core.initial_state(rng, episodes)
    return rollout(core, lambda s, r: act_fn(params, s, r), state, rng)


BEHAVIOUR_DESCRIPTIONS = MappingProxyType(
    {
        "ToyVelocity": "target-speed controller: 30% cruise at U(0, 1.5), 40% at U(1.5, 2), "
        "30% at U(0, 1.5) then U(1.5, 2) from a random step; action noise sigma in "
        "{0.02, 0.1, 0.2, 0.4}",
        "ToyPointGoal": "go-to-goal with hazard repulsion alpha in "
        "{0 (40%), .1, .25, .5, 1, 2, 4}, "
        "target speed U(0.5, 2), action noise sigma in {0.05, 0.2, 0.5, 1}",
    }
)


def generate_dataset(task_name: str, episodes: int = DEFAULT_EPISODES, seed: int = 0) -> Dataset:
    """A DSRL-layout dataset of `episodes` behaviour-policy episodes (deterministic in seed)."""
    roll = _behaviour_rollout(task_name, episodes, seed)
    mask = roll.alive  # boolean indexing of (N, H) is episode-major: trajectories back to back
    arrays = {
        "observations": roll.observations[mask],
        "next_observations": roll.next_observations[mask],
        "actions": roll.actions[mask],
        "rewards": roll.rewards[mask],
        "costs": roll.costs[mask],
        "terminals": roll.terminals[mask],
        "timeouts": roll.timeouts[mask],
    }
    attrs = {
        "source": "toy",
        "task": task_name,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "episodes": episodes,
        "behaviour_policies": BEHAVIOUR_DESCRIPTIONS[task_name],
    }
    return from_arrays(task_name, arrays, source="toy", attrs=attrs)


@lru_cache(maxsize=4)
def _cached_dataset(task_name: str, episodes: int, seed: int) -> Dataset:
    return generate_dataset(task_name, episodes, seed)


def load_toy_dataset(task: TaskSpec) -> Dataset:
    """The default dataset of a toy task (fixed seed and size); cached in-process."""
    return _cached_dataset(task.name, DEFAULT_EPISODES, DEFAULT_SEED)


# ---------------------------------------------------------------------------------------------
# Reference returns
# ---------------------------------------------------------------------------------------------

REFERENCE_EPISODES = 1000
REFERENCE_SEED = 12345


def _uniform_random_act(core: ToyCore):
    return lambda state, rng: rng.uniform(-1.0, 1.0, size=(len(state), core.act_dim))


def _greedy_act(task_name: str):
    """The fixed high-reward, safety-blind policy: full throttle (straight at the goal)."""
    if task_name == "ToyVelocity":
        return lambda state, rng: np.ones((len(state), 1))

    def act(state, rng):
        n = len(state)
        params = {"alpha": np.zeros(n), "speed": np.full(n, P_V_TOP), "sigma": np.zeros(n)}
        return _point_behaviour_act(params, state, rng)

    return act


def _reference_starts(core: ToyCore) -> tuple[np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(REFERENCE_SEED)
    return core.initial_state(rng, REFERENCE_EPISODES), rng


def reference_returns(task_name: str) -> tuple[float, float]:
    """(reward_min, reward_max): the mean return of the uniform-random policy and the best
    return of the fixed full-throttle, safety-blind scripted policy (no noise), both over the
    same 1,000 seeded starts. The TaskSpecs store these rounded to 3 decimals."""
    core = get_core(task_name)
    starts, rng = _reference_starts(core)
    random_returns = rollout(core, _uniform_random_act(core), starts, rng).returns
    greedy_returns = rollout(core, _greedy_act(task_name), starts, rng).returns
    return float(np.mean(random_returns)), float(np.max(greedy_returns))


def velocity_safe_optimum(cost_limit: float) -> tuple[float, float]:
    """(mean return, mean cost) of ToyVelocity's best policy under a cost budget.

    Full throttle up to `V_LIMIT`, cruise exactly on it (no cost: the cost needs v > V_LIMIT),
    then full throttle for the last floor(cost_limit) steps, each of which costs 1. Spending
    the budget at the end is best: above the limit the speed decays slowly under drag, so a
    burst earlier would pay for its slow way back down too.
    """
    core = get_core("ToyVelocity")
    starts, rng = _reference_starts(core)
    burst_from = core.horizon - int(np.floor(cost_limit))
    cruise = V_LIMIT - 1e-9  # a hair under the limit, against rounding

    def act(state, _rng):
        hold = (cruise - (1.0 - V_DRAG) * state[:, 1]) / V_GAIN
        return np.where(state[:, 2] >= burst_from, 1.0, np.minimum(hold, 1.0))[:, None]

    result = rollout(core, act, starts, rng)
    return float(result.returns.mean()), float(result.episode_costs.mean())


def main() -> None:
    for task in TOY_TASKS:
        rmin, rmax = reference_returns(task.name)
        start = time.perf_counter()
        data = generate_dataset(task.name)
        elapsed = time.perf_counter() - start
        print(
            f"{task.name}: reward_min={rmin:.3f} reward_max={rmax:.3f} "
            f"(TaskSpec: {task.reward_min}, {task.reward_max}); default dataset: "
            f"{data.num_episodes} episodes, {len(data)} transitions in {elapsed:.2f} s "
            f"({data.num_episodes / elapsed:.0f} episodes/s)"
        )
    velocity = get_task("ToyVelocity")
    for limit in sorted({velocity.drcorl_cost_limit, *velocity.osrl_cost_limits}):
        ret, cost = velocity_safe_optimum(limit)
        norm = velocity.normalise_reward(ret)
        print(
            f"ToyVelocity best safe policy at cost limit {limit:g}: return {ret:.3f} "
            f"(normalised {norm:.3f}), cost {cost:.1f}"
        )


if __name__ == "__main__":
    main()
