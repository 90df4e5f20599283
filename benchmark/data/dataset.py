"""The one dataset type every source yields (DSRL files, toy tasks, generated data).

Transitions are stored flat, trajectories back to back, each ending on `terminals | timeouts`
(DSRL's layout, baselines.md 1.3).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from benchmark.errors import DatasetFormatError

KEYS = ("observations", "next_observations", "actions", "rewards", "costs", "terminals", "timeouts")
FLOAT_KEYS = ("observations", "next_observations", "actions", "rewards", "costs")
FLAG_KEYS = ("terminals", "timeouts")
SOURCES = ("dsrl", "toy", "generated", "path")


@dataclass(frozen=True, eq=False)
class Dataset:
    """An offline safe-RL dataset in DSRL's flat layout, plus where it came from."""

    task: str
    observations: np.ndarray
    next_observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    costs: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    source: str
    """`dsrl` (a real DSRL file), `toy`, `generated` (our collector) or `path` (a user's file)."""
    path: str | None = None
    attrs: dict = field(default_factory=dict)
    """HDF5 attributes (generator metadata); empty for DSRL files."""

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in KEYS}

    @cached_property
    def content_sha256(self) -> str:
        """Hash of the seven arrays' names, dtypes, shapes and bytes: the identity of the data,
        whatever file (compression, attributes, layout) holds it. Run ids hash this one."""
        digest = hashlib.sha256()
        for key in KEYS:
            array = np.ascontiguousarray(getattr(self, key))
            digest.update(key.encode())
            digest.update(str(array.dtype).encode() + str(array.shape).encode())
            digest.update(array.tobytes())
        return digest.hexdigest()

    @property
    def sha256(self) -> str:
        """The content hash (`content_sha256`); the name older records and code use."""
        return self.content_sha256

    @cached_property
    def file_sha256(self) -> str | None:
        """sha256 of the file the data was read from, as `sha256sum FILE` prints it (None for
        data that never was a file). Differs from `content_sha256`, which hashes the arrays."""
        if self.path is None or not os.path.isfile(self.path):
            return None
        return sha256_of_file(self.path)

    @cached_property
    def episode_ends(self) -> np.ndarray:
        """Exclusive end index of each trajectory."""
        done = np.logical_or(self.terminals, self.timeouts)
        return np.flatnonzero(done) + 1

    @cached_property
    def episode_starts(self) -> np.ndarray:
        ends = self.episode_ends
        return np.concatenate([[0], ends[:-1]]).astype(np.int64)

    @property
    def num_episodes(self) -> int:
        return int(self.episode_ends.shape[0])

    @cached_property
    def episode_returns(self) -> np.ndarray:
        return np.add.reduceat(self.rewards.astype(np.float64), self.episode_starts)

    @cached_property
    def episode_costs(self) -> np.ndarray:
        return np.add.reduceat(self.costs.astype(np.float64), self.episode_starts)

    @cached_property
    def episode_lengths(self) -> np.ndarray:
        return self.episode_ends - self.episode_starts

    @cached_property
    def episode_index(self) -> np.ndarray:
        """Trajectory number of every transition."""
        return np.repeat(np.arange(self.num_episodes), self.episode_lengths)

    def cost_to_go(self, gamma: float = 1.0) -> np.ndarray:
        """Per-transition (discounted) sum of costs from this step to the trajectory's end."""
        return _reverse_discounted_sum(self.costs, self.episode_starts, self.episode_ends, gamma)

    def reward_to_go(self, gamma: float = 1.0) -> np.ndarray:
        return _reverse_discounted_sum(self.rewards, self.episode_starts, self.episode_ends, gamma)

    def select_episodes(self, keep: np.ndarray) -> Dataset:
        """A new dataset holding only the trajectories whose index is in `keep` (bool or ints)."""
        keep_mask = np.zeros(self.num_episodes, dtype=bool)
        keep_mask[keep] = True
        rows = keep_mask[self.episode_index]
        arrays = {k: v[rows] for k, v in self.arrays().items()}
        return Dataset(
            task=self.task, source=self.source, path=self.path, attrs=dict(self.attrs), **arrays
        )


def sha256_of_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's bytes (what `sha256sum` prints), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _reverse_discounted_sum(values, starts, ends, gamma) -> np.ndarray:
    out = np.zeros(values.shape[0], dtype=np.float64)
    for start, end in zip(starts, ends):
        running = 0.0
        for i in range(end - 1, start - 1, -1):
            running = float(values[i]) + gamma * running
            out[i] = running
    return out


def from_arrays(task: str, arrays: dict[str, np.ndarray], source: str, path=None, attrs=None):
    """Build a `Dataset` with DSRL's dtypes: float32 columns, bool flags, (N,) vectors."""
    missing = [k for k in KEYS if k not in arrays]
    if missing:
        raise DatasetFormatError(
            f"dataset for {task} is missing key(s) {missing}; a DSRL file needs all of {list(KEYS)}"
        )
    fixed = {}
    for key in KEYS:
        value = np.asarray(arrays[key])
        if key in ("rewards", "costs", "terminals", "timeouts") and value.ndim == 2:
            value = value.reshape(-1) if value.shape[1] == 1 else value
        fixed[key] = value.astype(np.float32 if key in FLOAT_KEYS else bool, copy=False)
    return Dataset(task=task, source=source, path=path, attrs=dict(attrs or {}), **fixed)
