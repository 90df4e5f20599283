"""Built-in toy tasks' datasets: scripted behaviour policies and reference returns (clean-room).

The dynamics and environments live in `benchmark.envs_toy` (re-exported here); this module
holds what makes their data. The two tasks:

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
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

import numpy as np

from benchmark.data.dataset import Dataset, from_arrays
from benchmark.envs_toy import (  # noqa: F401  (re-exported: the toy tasks' public names)
    CORES,
    P_GOAL,
    P_HAZARD_RADIUS,
    P_HAZARDS,
    P_V_TOP,
    V_DRAG,
    V_GAIN,
    V_HORIZON,
    V_LIMIT,
    V_TOP,
    ToyCore,
    ToyEnv,
    ToyVectorEnv,
    get_core,
    make_toy_env,
    point_initial_state,
    point_observe,
    point_step,
    velocity_initial_state,
    velocity_observe,
    velocity_step,
)
from benchmark.tasks import TOY_TASKS, TaskSpec, get_task

GENERATOR_VERSION = 1
"""Bump when the dynamics, the behaviour policies or the recipe change: data sha256 changes."""
DEFAULT_EPISODES = 2000
DEFAULT_SEED = 0

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
