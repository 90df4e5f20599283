"""Collect DSRL-format datasets from the real simulators (datasets.md 3.2, "T2").

DSRL's recipe scaled to a CPU: one PPO-Lagrangian run per task whose cost limit is annealed
linearly (hold 10%, anneal 80%, hold 10%), every finished episode of the stochastic training
rollouts logged, then DSRL's range filter and a grid (density) filter down to a target
trajectory count, then one HDF5 file in DSRL's layout plus its dataset card.

Files, all in the suite's own cache (`benchmark.paths.cache_dir()/"generated"`), never under a
DSRL file name or in DSRL's folder:

    generated/<Task>-seed<S>/episodes/chunk-NNNNNN.npz   append-only episode log, one per update
    generated/<Task>-seed<S>/checkpoint.pt               latest learner state (every update)
    generated/<Task>-seed<S>/snapshots/step-NNNNNNNNN.pt every ~10% of the steps (for top-ups)
    generated/<Task>-seed<S>/progress.csv                one row per update
    generated/Generated-<Task>-<cmax>-<ntraj>.hdf5       the dataset (+ .json card, .png scatter)

A killed collection resumes from `checkpoint.pt`: a chunk is written (atomically) before the
checkpoint that counts it, and chunks the checkpoint does not count are deleted on resume, so
the log holds exactly the episodes of the steps the step counter has counted. Episodes still
running when a collection is killed or ends are not logged (as DSRL's collector).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from benchmark.data.dataset import Dataset, from_arrays
from benchmark.data.ppo_lagrangian import PPOLagConfig, PPOLagrangian, Rollout, linear_cost_limit
from benchmark.errors import ConfigError, DatasetNotFoundError
from benchmark.paths import cache_dir, dsrl_dir, reports_dir
from benchmark.tasks import TaskSpec, get_task

GENERATOR_VERSION = "1"
HOLD_FRACTION = 0.1
SNAPSHOTS = 10


@dataclass(frozen=True)
class CollectSpec:
    """Budget and schedule of one task's collection (datasets.md 3.2.1 and 3.2.2)."""

    steps: int
    """Env steps of the PPO-Lagrangian run."""
    trajectories: int
    """Target trajectory count after the range and grid filters."""
    limit_start: float
    """Cost limit held over the first 10% of the steps."""
    limit_end: float
    """Cost limit held over the last 10% of the steps."""
    num_envs: int = 8
    """Envs stepped one after the other in the collecting process."""
    rollout_steps: int = 16_000
    """Env steps (over all envs) per PPO update."""
    reward_filter: bool = True
    """Keep only episodes with R >= 0 (DSRL's `rmin=0` for navigation and velocity tasks)."""


# fmt: off
_SPECS: tuple[tuple[str, CollectSpec], ...] = (
    ("PointGoal1", CollectSpec(1_500_000, 1000, 80.0, 5.0, num_envs=4)),
    ("CarGoal1", CollectSpec(1_500_000, 1000, 80.0, 5.0, num_envs=4)),
    ("PointGoal2", CollectSpec(1_500_000, 1000, 150.0, 5.0, num_envs=4)),
    ("CarGoal2", CollectSpec(1_500_000, 1000, 150.0, 5.0, num_envs=4)),
    ("PointButton1", CollectSpec(1_500_000, 1000, 150.0, 5.0, num_envs=4)),
    ("PointCircle1", CollectSpec(1_000_000, 500, 5.0, 150.0, num_envs=4)),
    ("HalfCheetahVelocity", CollectSpec(2_000_000, 1500, 200.0, 5.0)),
    ("HopperVelocity", CollectSpec(2_000_000, 1500, 200.0, 5.0)),
    ("Walker2dVelocity", CollectSpec(3_000_000, 1500, 10.0, 250.0)),
    ("AntVelocity", CollectSpec(3_000_000, 1500, 10.0, 250.0)),
    # CarRun converges in ~50-100k steps (FSRL curves): smaller updates give the multiplier
    # enough updates to follow the schedule. DSRL filtered CarRun on cost only.
    ("CarRun", CollectSpec(500_000, 1500, 5.0, 60.0, rollout_steps=4000, reward_filter=False)),
    ("ToyVelocity", CollectSpec(20_000, 100, 20.0, 2.0, num_envs=4, rollout_steps=2000)),
    ("ToyPointGoal", CollectSpec(30_000, 100, 30.0, 2.0, num_envs=4, rollout_steps=3000)),
)
# fmt: on

# Navigation tasks first: they hold ~85% of the CPU time (datasets.md 3.2.2).
COLLECTION_ORDER: tuple[str, ...] = tuple(name for name, _ in _SPECS if not name.startswith("Toy"))


def collect_spec(task: TaskSpec | str) -> CollectSpec:
    """The default budget and schedule of a task."""
    task = get_task(task) if isinstance(task, str) else task
    for name, spec in _SPECS:
        if name == task.name:
            return spec
    raise ConfigError(f"no collection recipe for task {task.name}")


def learner_config(task: TaskSpec) -> PPOLagConfig:
    """PPO-Lagrangian settings for a task (the defaults, shorter horizons discount harder)."""
    if task.family == "toy":
        return PPOLagConfig(minibatch=256, lr=1e-3)
    return PPOLagConfig()


# --------------------------------------------------------------------------- paths


def generated_dir() -> Path:
    """Where generated datasets live; refuses to be DSRL's own cache (it would pose as DSRL)."""
    root = cache_dir() / "generated"
    dsrl = dsrl_dir().resolve()
    if root.resolve() == dsrl or dsrl in root.resolve().parents:
        raise ConfigError(
            f"the suite's cache {root} is inside DSRL's cache {dsrl}; set BENCHMARK_CACHE_DIR "
            "elsewhere so generated data can never pose as a DSRL file"
        )
    return root


def run_dir(task: TaskSpec, seed: int, root: Path | None = None) -> Path:
    return (root or generated_dir()) / f"{task.name}-seed{seed}"


def dataset_file_name(task: TaskSpec, n_traj: int) -> str:
    return f"Generated-{task.name}-{int(round(task.max_cost))}-{n_traj}.hdf5"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


# --------------------------------------------------------------------------- episode log


@dataclass
class Episode:
    """One finished episode: raw observations (length L+1, the last is the final next obs)."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    costs: np.ndarray
    terminated: bool
    truncated: bool
    end_step: int
    """Global env-step counter when the episode ended."""
    cost_limit: float
    lagrange: float
    env_index: int


class EpisodeRecorder:
    """Accumulates the steps of the episode an env is running."""

    def __init__(self) -> None:
        self.start(None)

    def start(self, obs: np.ndarray | None) -> None:
        self.obs = [] if obs is None else [np.asarray(obs, dtype=np.float32)]
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.costs: list[float] = []

    def add(self, action, reward: float, cost: float, next_obs) -> None:
        self.actions.append(np.asarray(action, dtype=np.float32))
        self.rewards.append(float(reward))
        self.costs.append(float(cost))
        self.obs.append(np.asarray(next_obs, dtype=np.float32))

    def finish(self, terminated, truncated, end_step, cost_limit, lagrange, env_index) -> Episode:
        return Episode(
            obs=np.stack(self.obs),
            actions=np.stack(self.actions),
            rewards=np.asarray(self.rewards, dtype=np.float32),
            costs=np.asarray(self.costs, dtype=np.float32),
            terminated=bool(terminated),
            truncated=bool(truncated),
            end_step=int(end_step),
            cost_limit=float(cost_limit),
            lagrange=float(lagrange),
            env_index=int(env_index),
        )


@dataclass
class EpisodeTable:
    """All logged episodes, flat: `obs` has L+1 rows per episode, the step arrays L rows."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    costs: np.ndarray
    lengths: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    end_step: np.ndarray
    cost_limit: np.ndarray
    lagrange: np.ndarray
    env_index: np.ndarray
    chunk: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def num_episodes(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def step_starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    @property
    def returns(self) -> np.ndarray:
        return _segment_sums(self.rewards, self.lengths)

    @property
    def episode_costs(self) -> np.ndarray:
        return _segment_sums(self.costs, self.lengths)


def _segment_sums(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    if lengths.shape[0] == 0:
        return np.zeros(0)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return np.add.reduceat(values.astype(np.float64), starts) * (lengths > 0)


_PER_EPISODE = ("terminated", "truncated", "end_step", "cost_limit", "lagrange", "env_index")


class EpisodeLog:
    """Append-only store: one atomically written `.npz` per PPO update."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def chunk_path(self, index: int) -> Path:
        return self.folder / f"chunk-{index:06d}.npz"

    def chunk_indices(self) -> list[int]:
        return sorted(int(p.stem.split("-")[1]) for p in self.folder.glob("chunk-*.npz"))

    def write(self, index: int, episodes: list[Episode], obs_dim: int, act_dim: int) -> None:
        arrays = {
            "obs": _cat([e.obs for e in episodes], (0, obs_dim)),
            "actions": _cat([e.actions for e in episodes], (0, act_dim)),
            "rewards": _cat([e.rewards for e in episodes], (0,)),
            "costs": _cat([e.costs for e in episodes], (0,)),
            "lengths": np.array([len(e.rewards) for e in episodes], dtype=np.int64),
        }
        for key in _PER_EPISODE:
            arrays[key] = np.array([getattr(e, key) for e in episodes])
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        _atomic_write_bytes(self.chunk_path(index), buffer.getvalue())

    def drop_from(self, index: int) -> int:
        """Delete chunks >= index (written after the checkpoint a resume starts from)."""
        dropped = 0
        for i in self.chunk_indices():
            if i >= index:
                self.chunk_path(i).unlink()
                dropped += 1
        return dropped

    def load(self) -> EpisodeTable:
        parts: dict[str, list[np.ndarray]] = {}
        chunk_ids = []
        for i in self.chunk_indices():
            with np.load(self.chunk_path(i)) as data:
                for key in data.files:
                    parts.setdefault(key, []).append(data[key])
                chunk_ids.append(np.full(data["lengths"].shape[0], i, dtype=np.int64))
        if not chunk_ids:
            raise DatasetNotFoundError(f"no logged episodes under {self.folder}")
        table = {k: np.concatenate(v) for k, v in parts.items()}
        table["lengths"] = table["lengths"].astype(np.int64)
        return EpisodeTable(chunk=np.concatenate(chunk_ids), **table)


def _cat(arrays: list[np.ndarray], empty_shape: tuple[int, ...]) -> np.ndarray:
    if not arrays:
        return np.zeros(empty_shape, dtype=np.float32)
    return np.concatenate(arrays).astype(np.float32)


# --------------------------------------------------------------------------- envs


def _make_env(task: TaskSpec, seed: int):
    if task.is_toy:
        from benchmark.data.toy import make_toy_env

        return make_toy_env(task.name, seed)
    from benchmark.envs import make_env

    return make_env(task, seed)


def _step(env, action: np.ndarray):
    """(obs, reward, cost, terminated, truncated) from a gymnasium or safety-gymnasium env."""
    out = env.step(action)
    if len(out) == 6:
        obs, reward, cost, terminated, truncated, _ = out
    else:
        obs, reward, terminated, truncated, info = out
        cost = info.get("cost", 0.0)
    return obs, float(reward), float(cost), bool(terminated), bool(truncated)


def _action_maps(envs) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Per env, the (low, high) of its action box, or None when it is already [-1, 1]."""
    maps = []
    for env in envs:
        space = getattr(env, "action_space", None)
        low, high = getattr(space, "low", None), getattr(space, "high", None)
        unit = low is None or (np.all(low == -1.0) and np.all(high == 1.0))
        maps.append(None if unit else (np.asarray(low), np.asarray(high)))
    return maps


def _to_env_actions(actions: np.ndarray, maps) -> np.ndarray:
    """Clip the Gaussian samples to [-1, 1] and map them onto each env's action box."""
    clipped = np.clip(actions, -1.0, 1.0).astype(np.float32)
    for i, box in enumerate(maps):
        if box is not None:
            low, high = box
            clipped[i] = low + (clipped[i] + 1.0) * 0.5 * (high - low)
    return clipped


# --------------------------------------------------------------------------- collection


@dataclass
class CollectState:
    """Counters saved in the checkpoint next to the learner."""

    step: int = 0
    updates: int = 0
    episodes: int = 0
    wall_seconds: float = 0.0


class Collector:
    """One PPO-Lagrangian run that logs every finished episode; resumable."""

    def __init__(
        self, task: TaskSpec, spec: CollectSpec, seed: int, folder: Path, progress: bool = True
    ):
        self.task, self.spec, self.seed, self.folder = task, spec, seed, folder
        self.progress = progress
        self.log = EpisodeLog(folder / "episodes")
        self.config = learner_config(task)
        self.agent = PPOLagrangian(task.obs_dim, task.act_dim, self.config, seed=seed)
        self.state = CollectState()
        self.rng = np.random.default_rng(seed)
        self.recent: list[tuple[float, float]] = []
        self._last_update_steps = 0  # steps of the latest update: decides snapshot crossings

    # -- persistence -------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.folder / "checkpoint.pt"

    def _meta(self) -> dict:
        return {
            "task": self.task.name,
            "seed": self.seed,
            "spec": asdict(self.spec),
            "learner": asdict(self.config),
            "version": GENERATOR_VERSION,
        }

    def save_checkpoint(self) -> None:
        state = {
            "meta": self._meta(),
            "agent": self.agent.state_dict(),
            "state": asdict(self.state),
            "rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "recent": self.recent,
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        data = buffer.getvalue()
        _atomic_write_bytes(self.checkpoint_path, data)
        every = max(self.spec.steps // SNAPSHOTS, 1)
        if self.state.step // every > (self.state.step - self._last_update_steps) // every:
            snapshots = self.folder / "snapshots"
            snapshots.mkdir(exist_ok=True)
            _atomic_write_bytes(snapshots / f"step-{self.state.step:09d}.pt", data)

    def try_resume(self) -> bool:
        """Load the checkpoint if there is one; drop log chunks it does not count."""
        meta_path = self.folder / "meta.json"
        if meta_path.exists():
            old = json.loads(meta_path.read_text())
            if old["spec"] != asdict(self.spec):
                raise ConfigError(
                    f"{self.folder} was started with {old['spec']}, not {asdict(self.spec)}; "
                    "delete that folder or pick another --seed to start a new collection"
                )
        if not self.checkpoint_path.exists():
            self.log.drop_from(0)
            return False
        state = torch.load(self.checkpoint_path, weights_only=False)
        self.agent.load_state_dict(state["agent"])
        self.state = CollectState(**state["state"])
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        self.recent = list(state["recent"])
        self.log.drop_from(self.state.updates)
        return True

    # -- the loop ----------------------------------------------------------------------------

    def run(self, max_updates: int | None = None) -> CollectState:
        """Train and log until `spec.steps` (or `max_updates` more updates: a test's 'kill')."""
        self.folder.mkdir(parents=True, exist_ok=True)
        resumed = self.try_resume()
        meta_path = self.folder / "meta.json"
        if not meta_path.exists():
            _atomic_write_bytes(meta_path, json.dumps(self._meta(), indent=1).encode())
        if self.state.step >= self.spec.steps:
            return self.state
        n = self.spec.num_envs
        per_env = max(self.spec.rollout_steps // n, 1)
        # Fresh env seeds on every (re)start, so a resumed run does not replay its first layouts.
        envs = [_make_env(self.task, self._env_seed(i)) for i in range(n)]
        obs = np.stack([self._reset(env, self._env_seed(i)) for i, env in enumerate(envs)])
        recorders = [EpisodeRecorder() for _ in range(n)]
        for recorder, o in zip(recorders, obs):
            recorder.start(o)
        bar = self._progress_bar(resumed)
        done_updates = 0
        try:
            while self.state.step < self.spec.steps:
                if max_updates is not None and done_updates >= max_updates:
                    break
                start = time.perf_counter()
                steps = min(per_env, math.ceil((self.spec.steps - self.state.step) / n))
                limit = self.cost_limit()
                rollout, obs, finished = self._rollout(envs, obs, recorders, steps, limit)
                episode_cost = self._episode_cost(finished, rollout)
                stats = self.agent.update(rollout, episode_cost, limit)
                self.log.write(self.state.updates, finished, self.task.obs_dim, self.task.act_dim)
                self._last_update_steps = steps * n
                self.state.step += steps * n
                self.state.updates += 1
                self.state.episodes += len(finished)
                self.state.wall_seconds += time.perf_counter() - start
                self.recent = (
                    self.recent + [(float(e.rewards.sum()), float(e.costs.sum())) for e in finished]
                )[-20:]
                self.save_checkpoint()
                self._log_progress(stats, limit, finished, steps * n, time.perf_counter() - start)
                done_updates += 1
                if bar is not None:
                    bar.update(steps * n)
                    bar.set_postfix(self._postfix(limit), refresh=False)
        finally:
            if bar is not None:
                bar.close()
            for env in envs:
                env.close()
        return self.state

    def _env_seed(self, index: int) -> int:
        return int(self.seed * 1_000_003 + self.state.updates * 1009 + index)

    @staticmethod
    def _reset(env, seed: int) -> np.ndarray:
        out = env.reset(seed=seed)
        return np.asarray(out[0] if isinstance(out, tuple) else out, dtype=np.float64)

    def cost_limit(self) -> float:
        return linear_cost_limit(
            self.state.step,
            self.spec.steps,
            self.spec.limit_start,
            self.spec.limit_end,
            HOLD_FRACTION,
        )

    def _rollout(self, envs, obs, recorders, steps: int, limit: float):
        agent, cfg, n = self.agent, self.config, len(envs)
        obs_dim, act_dim = self.task.obs_dim, self.task.act_dim
        buf_obs = np.zeros((steps, n, obs_dim), dtype=np.float32)
        buf_act = np.zeros((steps, n, act_dim), dtype=np.float32)
        buf = {k: np.zeros((steps, n)) for k in ("logp", "r", "c", "vr", "vc")}
        dones = np.zeros((steps, n), dtype=bool)
        finished: list[Episode] = []
        lam = agent.lagrange_multiplier
        maps = _action_maps(envs)
        for t in range(steps):
            obs_norm = agent.normalise(obs, update=True)
            actions, logp, v_r, v_c = agent.act(obs_norm)
            buf_obs[t], buf_act[t], buf["logp"][t], buf["vr"][t], buf["vc"][t] = (
                obs_norm,
                actions,
                logp,
                v_r,
                v_c,
            )
            truncated_obs = {}
            env_actions = _to_env_actions(actions, maps)
            for i, env in enumerate(envs):
                next_obs, reward, cost, term, trunc = _step(env, env_actions[i])
                recorders[i].add(env_actions[i], reward, cost, next_obs)
                buf["r"][t, i], buf["c"][t, i] = reward, cost
                if term or trunc:
                    dones[t, i] = True
                    step_count = self.state.step + (t + 1) * n
                    finished.append(recorders[i].finish(term, trunc, step_count, limit, lam, i))
                    if trunc and not term:
                        truncated_obs[i] = next_obs
                    next_obs = self._reset(env, int(self.rng.integers(2**31 - 1)))
                    recorders[i].start(next_obs)
                obs[i] = next_obs
            if truncated_obs:
                # Time-limit ends are not true ends: bootstrap their value into the last reward.
                idx = list(truncated_obs)
                final = agent.normalise(np.stack([truncated_obs[i] for i in idx]))
                v_r_final, v_c_final = agent.values(final)
                buf["r"][t, idx] += cfg.gamma * v_r_final
                buf["c"][t, idx] += cfg.cost_gamma * v_c_final
        last_r, last_c = agent.values(agent.normalise(obs))
        rollout = Rollout(
            obs=buf_obs,
            actions=buf_act,
            log_probs=buf["logp"],
            rewards=buf["r"],
            costs=buf["c"],
            dones=dones,
            values_reward=buf["vr"],
            values_cost=buf["vc"],
            last_value_reward=last_r,
            last_value_cost=last_c,
        )
        return rollout, obs, finished

    def _episode_cost(self, finished: list[Episode], rollout: Rollout) -> float:
        """Mean cost of the episodes that ended in this rollout; the per-step rate x horizon
        when none did (long horizons with small rollouts)."""
        if finished:
            return float(np.mean([e.costs.sum() for e in finished]))
        step_costs = rollout.costs[~rollout.dones] if rollout.dones.any() else rollout.costs
        return float(np.mean(step_costs) * self.task.horizon)

    def _progress_bar(self, resumed: bool):
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(
            total=self.spec.steps,
            initial=self.state.step,
            unit="step",
            unit_scale=True,
            desc=f"{self.task.name}{' (resumed)' if resumed else ''}",
            dynamic_ncols=True,
        )

    def _postfix(self, limit: float) -> dict:
        recent = np.array(self.recent) if self.recent else np.zeros((1, 2))
        return {
            "limit": f"{limit:.1f}",
            "lambda": f"{self.agent.lagrange_multiplier:.2f}",
            "R": f"{recent[:, 0].mean():.1f}",
            "C": f"{recent[:, 1].mean():.1f}",
        }

    def _log_progress(self, stats, limit, finished, steps, seconds) -> None:
        path = self.folder / "progress.csv"
        row = {
            "step": self.state.step,
            "update": self.state.updates,
            "cost_limit": round(limit, 3),
            "lagrange": round(self.agent.lagrange_multiplier, 4),
            "episodes": len(finished),
            "mean_return": round(float(np.mean([e.rewards.sum() for e in finished])), 3)
            if finished
            else "",
            "mean_cost": round(float(np.mean([e.costs.sum() for e in finished])), 3)
            if finished
            else "",
            "steps_per_s": round(steps / max(seconds, 1e-9), 1),
            "approx_kl": round(stats["approx_kl"], 5),
            "std": round(stats["std"], 4),
        }
        new = not path.exists()
        with open(path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)


# --------------------------------------------------------------------------- filters


def range_filter(task: TaskSpec, spec: CollectSpec, returns, costs) -> np.ndarray:
    """DSRL's bounds: R >= 0 (navigation and velocity tasks) and C <= the task's max cost."""
    keep = np.asarray(costs) <= task.max_cost
    if spec.reward_filter:
        keep &= np.asarray(returns) >= 0.0
    return keep


def grid_filter(returns, costs, target: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most `target` episodes, flattening their density over (C, R).

    A ceil(sqrt(target)) x ceil(sqrt(target)) grid over the data's (cost, return) box; one
    episode from every occupied cell first, then random cells (uniform over cells that still
    hold unpicked episodes) give one more each until `target` (FSRL's `filter_points` idea).
    """
    returns, costs = np.asarray(returns, np.float64), np.asarray(costs, np.float64)
    n = returns.shape[0]
    if n <= target:
        return np.arange(n)
    side = math.ceil(math.sqrt(target))
    cells = _cell_index(costs, side) * side + _cell_index(returns, side)
    members: dict[int, list[int]] = {}
    for i in rng.permutation(n):
        members.setdefault(int(cells[i]), []).append(int(i))
    pools = list(members.values())
    chosen: list[int] = []
    order = rng.permutation(len(pools))
    for k in order[:target]:
        chosen.append(pools[k].pop())
    open_pools = [p for p in pools if p]
    while len(chosen) < target and open_pools:
        k = int(rng.integers(len(open_pools)))
        chosen.append(open_pools[k].pop())
        if not open_pools[k]:
            open_pools.pop(k)
    return np.sort(np.asarray(chosen, dtype=np.int64))


def _cell_index(values: np.ndarray, side: int) -> np.ndarray:
    low, high = values.min(), values.max()
    if high <= low:
        return np.zeros(values.shape[0], dtype=np.int64)
    return np.minimum(((values - low) / (high - low) * side).astype(np.int64), side - 1)


# --------------------------------------------------------------------------- finalise


def table_to_dataset(task: TaskSpec, table: EpisodeTable, keep: np.ndarray, attrs: dict) -> Dataset:
    """DSRL arrays of the kept episodes, in logging order: terminals only on real termination,
    timeouts on truncation."""
    keep = np.sort(np.asarray(keep, dtype=np.int64))
    lengths = table.lengths[keep]
    step_starts = table.step_starts[keep]
    obs_starts = step_starts + np.asarray(keep)  # obs has one extra row per earlier episode
    step_idx = np.concatenate([np.arange(s, s + n) for s, n in zip(step_starts, lengths)])
    obs_idx = np.concatenate([np.arange(s, s + n) for s, n in zip(obs_starts, lengths)])
    ends = np.cumsum(lengths) - 1
    terminals = np.zeros(step_idx.shape[0], dtype=bool)
    timeouts = np.zeros(step_idx.shape[0], dtype=bool)
    terminals[ends] = table.terminated[keep]
    timeouts[ends] = table.truncated[keep]
    arrays = {
        "observations": table.obs[obs_idx],
        "next_observations": table.obs[obs_idx + 1],
        "actions": table.actions[step_idx],
        "rewards": table.rewards[step_idx],
        "costs": table.costs[step_idx],
        "terminals": terminals,
        "timeouts": timeouts,
    }
    return from_arrays(task.name, arrays, source="generated", attrs=attrs)


def finalise(
    task: TaskSpec,
    spec: CollectSpec,
    seed: int,
    folder: Path,
    out_dir: Path,
    report_dir: Path | None = None,
) -> Path:
    """Filter the logged episodes, write the HDF5 file and its card; returns the file's path."""
    from benchmark.data.dsrl import write_dataset

    table = EpisodeLog(folder / "episodes").load()
    returns, costs = table.returns, table.episode_costs
    in_range = np.flatnonzero(range_filter(task, spec, returns, costs))
    rng = np.random.default_rng(seed + 7919)
    picked = in_range[grid_filter(returns[in_range], costs[in_range], spec.trajectories, rng)]
    checkpoint = torch.load(folder / "checkpoint.pt", weights_only=False)
    state = checkpoint["state"]
    schedule = {
        "kind": "linear",
        "start": spec.limit_start,
        "end": spec.limit_end,
        "hold_fraction": HOLD_FRACTION,
        "total_steps": spec.steps,
    }
    attrs = {
        "source": "generated",
        "task": task.name,
        "env_id": task.env_id,
        "seed": seed,
        "generator": "benchmark.data.collect (PPO-Lagrangian, every training episode logged)",
        "version": GENERATOR_VERSION,
        "schedule": json.dumps(schedule),
        "steps": int(state["step"]),
        "learner": json.dumps(checkpoint["meta"]["learner"]),
        "episodes_logged": int(table.num_episodes),
        "episodes_after_range_filter": int(in_range.shape[0]),
        "episodes_after_grid_filter": int(picked.shape[0]),
        "range_filter": json.dumps(
            {"reward_min": 0.0 if spec.reward_filter else None, "cost_max": task.max_cost}
        ),
        "collection_wall_seconds": round(float(state["wall_seconds"]), 1),
    }
    dataset = table_to_dataset(task, table, picked, attrs)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / dataset_file_name(task, dataset.num_episodes)
    write_dataset(dataset, path, attrs)
    write_card(dataset, task, path.with_suffix(""), state, report_dir)
    done = {"path": str(path), "steps": int(state["step"]), "trajectories": dataset.num_episodes}
    _atomic_write_bytes(folder / "done.json", json.dumps(done, indent=1).encode())
    return path


def write_card(dataset: Dataset, task: TaskSpec, stem: Path, state: dict, report_dir) -> dict:
    """Card JSON + scatter PNG next to the HDF5 file, copied to `report_dir` under the names
    `python -m benchmark data card TASK --data generated` uses (`<Task>-generated.*`)."""
    from benchmark.data.card import dataset_card, scatter_png, write_card_json

    card = dataset_card(dataset, task, task.drcorl_cost_limit)
    steps = int(state["step"])
    wall = float(state["wall_seconds"])
    card["collection"] = {
        "steps": steps,
        "wall_seconds": round(wall, 1),
        "steps_per_second": round(steps / max(wall, 1e-9), 1),
        "episodes_logged": int(dataset.attrs["episodes_logged"]),
        "episodes_after_range_filter": int(dataset.attrs["episodes_after_range_filter"]),
        "schedule": json.loads(dataset.attrs["schedule"]),
    }
    json_path = write_card_json(card, Path(f"{stem}.json"))
    png_path = scatter_png(dataset, task, task.drcorl_cost_limit, Path(f"{stem}.png"))
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(json_path, report_dir / f"{task.name}-generated.json")
        shutil.copyfile(png_path, report_dir / f"{task.name}-generated.png")
    return card


# --------------------------------------------------------------------------- entry points


def collect(
    task: TaskSpec | str,
    steps: int | None = None,
    seed: int = 0,
    trajectories: int | None = None,
    num_envs: int | None = None,
    root: Path | None = None,
    report_dir: Path | None = None,
    progress: bool = True,
    max_updates: int | None = None,
) -> Path | None:
    """Collect (or resume) a task's run, then write its dataset; None if stopped early."""
    task = get_task(task) if isinstance(task, str) else task
    spec = collect_spec(task)
    overrides = {"steps": steps, "trajectories": trajectories, "num_envs": num_envs}
    spec = replace(spec, **{k: v for k, v in overrides.items() if v is not None})
    if spec.steps <= 0 or spec.trajectories <= 0 or spec.num_envs <= 0:
        raise ConfigError("--steps, --trajectories and --num-envs must be positive")
    root = root or generated_dir()
    folder = run_dir(task, seed, root)
    torch.set_num_threads(1)
    collector = Collector(task, spec, seed, folder, progress=progress)
    state = collector.run(max_updates=max_updates)
    if state.step < spec.steps:
        return None
    return finalise(task, spec, seed, folder, root, report_dir)


def load_generated(task: TaskSpec | str) -> Dataset:
    """The newest `Generated-<Task>-*.hdf5` in the suite's cache."""
    from benchmark.data.dsrl import read_dataset

    task = get_task(task) if isinstance(task, str) else task
    folder = generated_dir()
    files = sorted(folder.glob(f"Generated-{task.name}-*.hdf5"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise DatasetNotFoundError(
            f"no generated dataset for {task.name} in {folder}; make one with "
            f"`make data TASK={task.name}` (python -m benchmark data collect {task.name})"
        )
    return read_dataset(files[-1], task, source="generated")


def cli_collect(args) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    path = collect(
        args.task,
        steps=args.steps,
        seed=args.seed,
        trajectories=args.trajectories,
        num_envs=args.num_envs,
        report_dir=reports_dir() / "datasets",
    )
    if path is None:
        return 1
    from benchmark.data.card import format_card

    card = json.loads(path.with_suffix(".json").read_text())
    print(format_card(card))
    print(f"wrote {path} and its card {path.with_suffix('.json')} / .png")
    return 0
