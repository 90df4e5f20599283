"""The collector's batch of environments: stepped in this process or in worker processes.

`InProcessEnvs` steps its envs one after the other; `SubprocessEnvs` splits them over worker
processes (spawned, so no simulator state or torch threads are inherited) that step their
share at the same time, which pays when a free core is there to run them. Both give the same
numbers for the same seeds: every env is seeded by the collector and steps independently, so
where it runs changes nothing (tests/data/test_collect.py checks it). No auto-reset: the
collector resets the envs whose episode ended, with seeds it draws itself.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from benchmark.tasks import TaskSpec, get_task

StepResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""(next obs (n, obs_dim) float64, reward (n,), cost (n,), terminated (n,), truncated (n,))."""


class EnvBatch(Protocol):
    num_envs: int
    action_boxes: list[tuple[np.ndarray, np.ndarray] | None]
    """Per env, the (low, high) of its action box, or None when it is already [-1, 1]."""

    def reset(self, indices: Sequence[int], seeds: Sequence[int]) -> np.ndarray: ...

    def step(self, actions: np.ndarray) -> StepResult: ...

    def close(self) -> None: ...


def _make_env(task: TaskSpec, seed: int):
    from benchmark.envs import make_env

    return make_env(task, seed)


def _step(env, action: np.ndarray) -> tuple[np.ndarray, float, float, bool, bool]:
    """(obs, reward, cost, terminated, truncated) from a gymnasium or safety-gymnasium env."""
    out = env.step(action)
    if len(out) == 6:
        obs, reward, cost, terminated, truncated, _ = out
    else:
        obs, reward, terminated, truncated, info = out
        cost = info.get("cost", 0.0)
    return obs, float(reward), float(cost), bool(terminated), bool(truncated)


def _reset(env, seed: int) -> np.ndarray:
    out = env.reset(seed=int(seed))
    return np.asarray(out[0] if isinstance(out, tuple) else out, dtype=np.float64)


def _action_box(env) -> tuple[np.ndarray, np.ndarray] | None:
    space = getattr(env, "action_space", None)
    low, high = getattr(space, "low", None), getattr(space, "high", None)
    if low is None or (np.all(low == -1.0) and np.all(high == 1.0)):
        return None
    return np.asarray(low), np.asarray(high)


def _step_all(envs, actions: np.ndarray) -> StepResult:
    results = [_step(env, a) for env, a in zip(envs, actions)]
    obs = np.stack([np.asarray(r[0], dtype=np.float64).reshape(-1) for r in results])
    columns = [np.array([r[k] for r in results]) for k in range(1, 5)]
    return obs, columns[0], columns[1], columns[2].astype(bool), columns[3].astype(bool)


class InProcessEnvs:
    """The envs stepped one after another in the collecting process."""

    def __init__(self, task: TaskSpec, seeds: Sequence[int]) -> None:
        self.envs = [_make_env(task, s) for s in seeds]
        self.num_envs = len(self.envs)
        self.action_boxes = [_action_box(env) for env in self.envs]

    def reset(self, indices: Sequence[int], seeds: Sequence[int]) -> np.ndarray:
        return np.stack([_reset(self.envs[i], s) for i, s in zip(indices, seeds)])

    def step(self, actions: np.ndarray) -> StepResult:
        return _step_all(self.envs, actions)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _worker(connection, task_name: str, seeds: list[int]) -> None:
    """A worker's loop: build its envs, then answer reset/step/close messages."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    envs = [_make_env(get_task(task_name), s) for s in seeds]
    connection.send([_action_box(env) for env in envs])
    try:
        while True:
            command, payload = connection.recv()
            if command == "step":
                connection.send(_step_all(envs, payload))
            elif command == "reset":
                connection.send([_reset(envs[i], s) for i, s in payload])
            else:
                break
    finally:
        for env in envs:
            env.close()
        connection.close()


class SubprocessEnvs:
    """The envs split over `workers` spawned processes that step their shares in parallel."""

    def __init__(self, task: TaskSpec, seeds: Sequence[int], workers: int) -> None:
        self.num_envs = len(seeds)
        workers = max(1, min(workers, self.num_envs))
        self._slices = [list(part) for part in np.array_split(np.arange(self.num_envs), workers)]
        context = mp.get_context("spawn")
        self._connections = []
        self._processes = []
        for part in self._slices:
            parent, child = context.Pipe()
            process = context.Process(
                target=_worker,
                args=(child, task.name, [int(seeds[i]) for i in part]),
                daemon=True,
            )
            process.start()
            child.close()
            self._connections.append(parent)
            self._processes.append(process)
        self.action_boxes = []
        for connection in self._connections:
            self.action_boxes.extend(connection.recv())

    def reset(self, indices: Sequence[int], seeds: Sequence[int]) -> np.ndarray:
        owner = {}
        for w, part in enumerate(self._slices):
            for local, i in enumerate(part):
                owner[i] = (w, local)
        requests: dict[int, list] = {}
        for i, s in zip(indices, seeds):
            w, local = owner[int(i)]
            requests.setdefault(w, []).append((local, int(s)))
        for w, payload in requests.items():
            self._connections[w].send(("reset", payload))
        answers = {w: self._connections[w].recv() for w in requests}
        out, taken = [], {w: 0 for w in requests}
        for i in indices:
            w, _ = owner[int(i)]
            out.append(answers[w][taken[w]])
            taken[w] += 1
        return np.stack(out)

    def step(self, actions: np.ndarray) -> StepResult:
        for connection, part in zip(self._connections, self._slices):
            connection.send(("step", actions[part]))
        parts = [connection.recv() for connection in self._connections]
        return tuple(np.concatenate([p[k] for p in parts]) for k in range(5))  # type: ignore[return-value]

    def close(self) -> None:
        for connection in self._connections:
            with contextlib.suppress(BrokenPipeError, OSError):  # a worker that already died
                connection.send(("close", None))
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()


def make_env_batch(task: TaskSpec, seeds: Sequence[int], workers: int = 0) -> EnvBatch:
    """`workers` 0: in this process; otherwise that many worker processes."""
    if workers <= 0:
        return InProcessEnvs(task, seeds)
    return SubprocessEnvs(task, seeds, workers)
