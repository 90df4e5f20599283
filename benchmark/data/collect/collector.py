"""The PPO-Lagrangian collector: one training run that logs every finished episode; resumable.

DSRL's recipe scaled to a CPU (datasets.md 3.2): the cost limit is annealed linearly (hold
10%, anneal 80%, hold 10%) and every finished episode of the stochastic training rollouts goes
to the episode log (`episodes.py`). A killed collection resumes from `checkpoint.pt`: a chunk is
written (atomically) before the checkpoint that counts it, and chunks the checkpoint does not
count are deleted on resume. Episodes still running when a collection is killed or ends are not
logged (as DSRL's collector). The envs are stepped in this process or in worker processes
(`vector.py`); both give the same data.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from benchmark.atomic import atomic_write_bytes
from benchmark.data.collect.episodes import Episode, EpisodeLog, EpisodeRecorder
from benchmark.data.collect.ppo_lagrangian import (
    PPOLagConfig,
    PPOLagrangian,
    Rollout,
    linear_cost_limit,
)
from benchmark.data.collect.vector import EnvBatch, make_env_batch
from benchmark.data.generated import COLLECTOR_VERSION
from benchmark.errors import ConfigError
from benchmark.tasks import CollectSpec, TaskSpec

HOLD_FRACTION = 0.1
SNAPSHOTS = 10


def learner_config(task: TaskSpec, spec: CollectSpec | None = None) -> PPOLagConfig:
    """PPO-Lagrangian settings of a task: the defaults plus its recipe's `learner` overrides."""
    spec = spec or task.collect
    overrides = dict(spec.learner) if spec is not None else {}
    known = {f.name for f in fields(PPOLagConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"{task.name}'s recipe sets unknown learner field(s) {unknown}")
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}
    return PPOLagConfig(**values)


def _to_env_actions(actions: np.ndarray, boxes) -> np.ndarray:
    """Clip the Gaussian samples to [-1, 1] and map them onto each env's action box."""
    clipped = np.clip(actions, -1.0, 1.0).astype(np.float32)
    for i, box in enumerate(boxes):
        if box is not None:
            low, high = box
            clipped[i] = low + (clipped[i] + 1.0) * 0.5 * (high - low)
    return clipped


def _plain(value):
    """`value` as JSON gives it back (tuples become lists): how specs are compared on resume."""
    return json.loads(json.dumps(value))


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
        self,
        task: TaskSpec,
        spec: CollectSpec,
        seed: int,
        folder: Path,
        progress: bool = True,
        workers: int = 0,
    ):
        self.task, self.spec, self.seed, self.folder = task, spec, seed, folder
        self.progress = progress
        self.workers = workers
        """Worker processes stepping the envs (0: this process); the data does not depend on it."""
        self.log = EpisodeLog(folder / "episodes")
        self.config = learner_config(task, spec)
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
            "version": COLLECTOR_VERSION,
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
        atomic_write_bytes(self.checkpoint_path, data)
        every = max(self.spec.steps // SNAPSHOTS, 1)
        if self.state.step // every > (self.state.step - self._last_update_steps) // every:
            snapshots = self.folder / "snapshots"
            snapshots.mkdir(exist_ok=True)
            atomic_write_bytes(snapshots / f"step-{self.state.step:09d}.pt", data)

    def try_resume(self) -> bool:
        """Load the checkpoint if there is one; drop log chunks it does not count."""
        meta_path = self.folder / "meta.json"
        if meta_path.exists():
            old = json.loads(meta_path.read_text())
            # only what the run depends on: a later revision may filter the same run again
            wanted = self.spec.run_fields
            ran = {k: v for k, v in old["spec"].items() if k in wanted}
            if ran != _plain(wanted):
                raise ConfigError(
                    f"{self.folder} was started with {ran}, not {wanted}; "
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
            atomic_write_bytes(meta_path, json.dumps(self._meta(), indent=1).encode())
        if self.state.step >= self.spec.steps:
            return self.state
        n = self.spec.num_envs
        per_env = max(self.spec.rollout_steps // n, 1)
        # Fresh env seeds on every (re)start, so a resumed run does not replay its first layouts.
        seeds = [self._env_seed(i) for i in range(n)]
        envs = make_env_batch(self.task, seeds, self.workers)
        bar = None
        try:
            obs = envs.reset(range(n), seeds)
            recorders = [EpisodeRecorder() for _ in range(n)]
            for recorder, o in zip(recorders, obs):
                recorder.start(o)
            bar = self._progress_bar(resumed)
            done_updates = 0
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
            envs.close()
        return self.state

    def _env_seed(self, index: int) -> int:
        return int(self.seed * 1_000_003 + self.state.updates * 1009 + index)

    def cost_limit(self) -> float:
        return linear_cost_limit(
            self.state.step,
            self.spec.steps,
            self.spec.limit_start,
            self.spec.limit_end,
            HOLD_FRACTION,
        )

    def _rollout(self, envs: EnvBatch, obs, recorders, steps: int, limit: float):
        agent, cfg, n = self.agent, self.config, envs.num_envs
        obs_dim, act_dim = self.task.obs_dim, self.task.act_dim
        buf_obs = np.zeros((steps, n, obs_dim), dtype=np.float32)
        buf_act = np.zeros((steps, n, act_dim), dtype=np.float32)
        buf = {k: np.zeros((steps, n)) for k in ("logp", "r", "c", "vr", "vc")}
        dones = np.zeros((steps, n), dtype=bool)
        finished: list[Episode] = []
        lam = agent.lagrange_multiplier
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
            env_actions = _to_env_actions(actions, envs.action_boxes)
            next_obs, reward, cost, term, trunc = envs.step(env_actions)
            buf["r"][t], buf["c"][t] = reward, cost
            ended = np.flatnonzero(term | trunc)
            dones[t, ended] = True
            for i in range(n):
                recorders[i].add(env_actions[i], reward[i], cost[i], next_obs[i])
            step_count = self.state.step + (t + 1) * n
            for i in ended:
                finished.append(recorders[i].finish(term[i], trunc[i], step_count, limit, lam, i))
            cut = [int(i) for i in ended if trunc[i] and not term[i]]
            if cut:
                # Time-limit ends are not true ends: bootstrap their value into the last reward.
                v_r_final, v_c_final = agent.values(agent.normalise(next_obs[cut]))
                buf["r"][t, cut] += cfg.gamma * v_r_final
                buf["c"][t, cut] += cfg.cost_gamma * v_c_final
            if ended.size:
                # Seeds drawn in env order, as the envs' episodes ended.
                reset_seeds = [int(self.rng.integers(2**31 - 1)) for _ in ended]
                next_obs[ended] = envs.reset(ended, reset_seeds)
                for i in ended:
                    recorders[i].start(next_obs[i])
            obs = next_obs
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
