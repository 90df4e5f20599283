"""The collector's append-only episode log: every finished training episode, kept on disk.

One atomically written `.npz` chunk per PPO update; a resumed collection deletes the chunks its
checkpoint does not count, so the log always holds exactly the episodes of the counted steps.
numpy only (no torch): the log can be read and re-filtered without the learner.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.atomic import atomic_write_bytes
from benchmark.errors import DatasetNotFoundError


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
        atomic_write_bytes(self.chunk_path(index), buffer.getvalue())

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
