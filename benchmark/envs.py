"""Environments for evaluation: `make_env` and a small batched `VectorEnv` for every task.

The eleven DSRL tasks are built with `gymnasium.make` on DSRL's `...Gymnasium` ids (and
`OfflineCarRun-v0`), which return the gymnasium 5-tuple with the cost in `info["cost"]`
(baselines.md 1.1, 1.8). Two library problems are handled here, never in site-packages:

- safety-gymnasium 0.4.0 cannot define its geom dataclasses on Python 3.11 (numpy-array
  defaults count as mutable); `apply_safety_gymnasium_shim` makes those arrays hashable
  (install.md 0 and 1e).
- bullet-safety-gym ignores `reset(seed=...)`, draws its start state from numpy's *global*
  RNG and keeps the last action's motor targets across resets; `_bullet_reset` seeds that
  RNG for the reset only and zeroes the motors. It also breaks when `sys.stdout`/`sys.stderr`
  are replaced (pytest, Jupyter); `_process_std_streams` works around that.

The toy tasks come from `benchmark.envs_toy` (imported lazily: it has no simulator).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import gymnasium
import numpy as np

from benchmark.atomic import atomic_write_text
from benchmark.errors import ConfigError
from benchmark.paths import cache_dir
from benchmark.tasks import TaskSpec, get_task


def apply_safety_gymnasium_shim() -> None:
    """Make safety-gymnasium 0.4.0 importable on Python 3.11; safe to call any number of times.

    Python 3.11's `dataclasses` rejects a field default whose class has `__hash__ = None`,
    which is true of `np.ndarray`. Twelve geom/mocap dataclasses of safety-gymnasium take their
    `color` default from `safety_gymnasium.assets.color.COLOR`, so every safety env fails at
    `gymnasium.make`. Viewing each colour as a subclass with identity hashing keeps the same
    data (and every array operation) while letting the dataclasses be defined. Must run before
    anything imports `safety_gymnasium.builder` or the geom modules.
    """
    from safety_gymnasium.assets import color

    for name, value in color.COLOR.items():
        if not getattr(type(value), "_identity_hashable", False):
            color.COLOR[name] = np.asarray(value).view(_HashableArray)
    _headless_world_builds()


def _headless_world_builds() -> None:
    """Compile safety-gymnasium's worlds without their skybox: resets 100x faster, same physics.

    Every navigation reset rebuilds the MuJoCo model from XML (the layout changes), and that XML
    names six star-field PNGs (24 MB) as a skybox texture, which MuJoCo decodes on every
    compile: measured 1.5-2.5 s of a PointGoal1 reset against 0.02 s without it, i.e. about
    half of all collection time. A skybox is only drawn by a renderer (the suite never
    renders) and takes no part in the physics or the observations; tests/test_envs.py checks
    that an episode is identical with and without it. `World.build` takes the XML from
    `xmltodict.unparse`, so the world module gets an `xmltodict` whose `unparse` drops it.
    """
    from safety_gymnasium import world

    if getattr(world.xmltodict, "_benchmark_headless", False):
        return
    world.xmltodict = _HeadlessXmlToDict(world.xmltodict)


class _HeadlessXmlToDict:
    """`xmltodict` for safety-gymnasium's world: `unparse` leaves out the skybox texture."""

    _benchmark_headless = True

    def __init__(self, module) -> None:
        self._module = module

    def __getattr__(self, name: str):
        return getattr(self._module, name)

    def unparse(self, document, *args, **kwargs):
        return self._module.unparse(_without_skybox(document), *args, **kwargs)


def _without_skybox(document: dict) -> dict:
    """A shallow copy of the world's XML dict whose asset textures hold no skybox."""
    asset = (document.get("mujoco") or {}).get("asset")
    if not isinstance(asset, dict) or "texture" not in asset:
        return document
    textures = asset["texture"]
    textures = textures if isinstance(textures, list) else [textures]
    kept = [t for t in textures if not (isinstance(t, dict) and t.get("@type") == "skybox")]
    mujoco = {**document["mujoco"], "asset": {**asset, "texture": kept}}
    return {**document, "mujoco": mujoco}


class _HashableArray(np.ndarray):
    """An ndarray that hashes by identity (only so that dataclasses accept it as a default)."""

    _identity_hashable = True
    __hash__ = object.__hash__


def register_dsrl_envs() -> None:
    """Register DSRL's `Offline*` ids with gymnasium (idempotent: Python caches the import).

    Only the env-building path calls this: `import dsrl` creates DSRL's dataset folder as a
    side effect (baselines.md 1.4), so the data-loading path never imports it.
    """
    if importlib.util.find_spec("safety_gymnasium") is not None:
        apply_safety_gymnasium_shim()
    if importlib.util.find_spec("bullet_safety_gym") is not None:
        with _process_std_streams():
            import bullet_safety_gym.envs.builder  # noqa: F401
    # dsrl warns on stderr when MetaDrive (needs old `gym`) is missing; `make_env` names the
    # missing package itself when a MetaDrive task is asked for.
    os.environ.setdefault("DSRL_SUPPRESS_IMPORT_ERROR", "1")
    import dsrl  # noqa: F401  (registers the Offline* ids)


@contextlib.contextmanager
def _process_std_streams() -> Iterator[None]:
    """Put the process's own stdout/stderr back in `sys.stdout`/`sys.stderr` for a moment.

    bullet-safety-gym hides pybullet's banners (at import and when an env connects) by
    redirecting the C-level stream, which it finds from `sys.stdout.name`/`sys.stderr.name`.
    When those objects have been replaced (pytest's capture, Jupyter) the name is no libc
    symbol and it fails with "undefined symbol"; with the originals it works everywhere.
    """
    if sys.__stdout__ is None or sys.__stderr__ is None:  # no console (pythonw): nothing to do
        yield
        return
    replaced = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    try:
        yield
    finally:
        sys.stdout, sys.stderr = replaced


def _as_task(task: TaskSpec | str) -> TaskSpec:
    return get_task(task) if isinstance(task, str) else task


class _SuiteEnv(gymnasium.Wrapper):
    """The suite's view of a DSRL env: float32 obs, clipped actions, reproducible seeded resets.

    `seed`, when given, is used by the first `reset()` that is called without one.
    """

    def __init__(self, env: gymnasium.Env, task: TaskSpec, seed: int | None = None):
        super().__init__(env)
        self.task = task
        self._pending_seed = seed
        space = env.observation_space
        finite = np.finfo(np.float32).max
        self.observation_space = gymnasium.spaces.Box(
            low=np.clip(space.low, -finite, finite).astype(np.float32),
            high=np.clip(space.high, -finite, finite).astype(np.float32),
            dtype=np.float32,
        )
        if seed is not None:
            self.action_space.seed(seed)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None:
            seed, self._pending_seed = self._pending_seed, None
        if self.task.family == "bullet":
            obs, info = _bullet_reset(self.env, seed, options)
        else:
            obs, info = self.env.reset(seed=seed, options=options)
        return np.asarray(obs, dtype=np.float32), info

    def step(self, action):
        space = self.action_space
        action = np.clip(np.asarray(action, dtype=np.float64), space.low, space.high)
        obs, reward, terminated, truncated, info = self.env.step(action.astype(space.dtype))
        return np.asarray(obs, dtype=np.float32), float(reward), terminated, truncated, info


def _bullet_reset(env: gymnasium.Env, seed: int | None, options: dict | None):
    """Reset a bullet-safety-gym env reproducibly.

    bullet-safety-gym 1.4.0 ignores the reset seed: `specific_reset` draws the start pose from
    numpy's global RNG (`np.random.uniform`), and the car's wheel/steering motor targets set by
    the last action survive `restoreState`, so an env's first observation and whole episode
    depended on its history (measured: up to 0.1 apart over 200 steps). We therefore
    (1) zero the motor commands, and (2) seed numpy's global RNG with `seed` for the duration
    of the reset only, restoring the caller's global RNG state afterwards. With both, the same
    seed gives the same episode whatever the env did before (tests/test_envs.py checks it).
    """
    base = env.unwrapped
    agent = getattr(base, "agent", None)
    if agent is not None:
        agent.apply_action(np.zeros(agent.act_dim))
    if seed is None:
        return env.reset(options=options)
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        return env.reset(seed=seed, options=options)
    finally:
        np.random.set_state(saved)


def make_env(task: TaskSpec | str, seed: int | None = None) -> gymnasium.Env:
    """A single gymnasium env for `task` (5-tuple steps, cost in `info["cost"]`).

    DSRL tasks give float32 observations and clip actions to the action space; the episode is
    truncated at the task horizon by gymnasium's TimeLimit. `seed` seeds the first reset.
    """
    task = _as_task(task)
    if task.is_toy:
        from benchmark.envs_toy import make_toy_env

        return make_toy_env(task.name, seed)
    reason = task.cannot_run()
    if reason:
        raise ConfigError(reason)
    task.require_simulator()
    register_dsrl_envs()
    # The passive env checker only warns (float64 obs, bounds); our wrapper fixes the types.
    with _process_std_streams():
        env = gymnasium.make(task.env_id, max_episode_steps=task.horizon, disable_env_checker=True)
    return _SuiteEnv(env, task, seed)


@runtime_checkable
class VectorEnv(Protocol):
    """A batch of independent episodes for evaluation (no auto-reset, unlike gymnasium's).

    `reset(seeds)` starts one episode per env from the given seeds. `step(actions, active)`
    steps only the envs where `active` is true; the others (and envs whose episode has already
    ended) are left alone and report their last observation with zero reward and cost and
    false flags. Episodes end on termination or when they reach the task horizon.
    """

    num_envs: int

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        """Observations, (num_envs, obs_dim) float32."""
        ...

    def step(
        self, actions: np.ndarray, active: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(obs float32 (n, obs_dim), reward (n,), cost (n,), terminated (n,), truncated (n,))."""
        ...

    def close(self) -> None: ...


class SequentialVectorEnv:
    """`VectorEnv` over a list of gymnasium envs stepped one after another in this process.

    Evaluation on the real simulators is cheap next to training, and in-process stepping keeps
    seeding exact and avoids worker processes (each would need the safety-gymnasium shim).
    """

    def __init__(self, envs: Sequence[gymnasium.Env], horizon: int):
        if not envs:
            raise ValueError("SequentialVectorEnv needs at least one env")
        self.envs = list(envs)
        self.num_envs = len(self.envs)
        self.horizon = horizon
        self.obs_dim = int(np.prod(self.envs[0].observation_space.shape))
        self.act_dim = int(np.prod(self.envs[0].action_space.shape))
        self._obs = np.zeros((self.num_envs, self.obs_dim), dtype=np.float32)
        self._steps = np.zeros(self.num_envs, dtype=np.int64)
        self._done = np.ones(self.num_envs, dtype=bool)

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        if len(seeds) != self.num_envs:
            raise ValueError(f"reset needs {self.num_envs} seeds, got {len(seeds)}")
        for i, (env, seed) in enumerate(zip(self.envs, seeds)):
            obs, _ = env.reset(seed=int(seed))
            self._obs[i] = np.asarray(obs, dtype=np.float32).reshape(-1)
        self._steps[:] = 0
        self._done[:] = False
        return self._obs.copy()

    def step(self, actions: np.ndarray, active: np.ndarray | None = None):
        n = self.num_envs
        actions = np.asarray(actions, dtype=np.float64).reshape(n, self.act_dim)
        active = np.ones(n, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        reward = np.zeros(n, dtype=np.float64)
        cost = np.zeros(n, dtype=np.float64)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        for i in np.flatnonzero(active & ~self._done):
            obs, r, term, trunc, info = self.envs[i].step(actions[i])
            self._steps[i] += 1
            self._obs[i] = np.asarray(obs, dtype=np.float32).reshape(-1)
            reward[i] = float(r)
            cost[i] = float(info["cost"])
            terminated[i] = bool(term)
            truncated[i] = bool(trunc) or (not term and self._steps[i] >= self.horizon)
            self._done[i] = terminated[i] or truncated[i]
        return self._obs.copy(), reward, cost, terminated, truncated

    def close(self) -> None:
        for env in self.envs:
            env.close()


def make_vector_env(task: TaskSpec | str, num_envs: int) -> VectorEnv:
    """`num_envs` envs of `task` behind the `VectorEnv` protocol (toy tasks: numpy-batched)."""
    task = _as_task(task)
    if num_envs < 1:
        raise ValueError(f"num_envs must be at least 1, got {num_envs}")
    if task.is_toy:
        from benchmark.envs_toy import ToyVectorEnv

        return ToyVectorEnv(task.name, num_envs)
    return SequentialVectorEnv([make_env(task) for _ in range(num_envs)], task.horizon)


# --------------------------------------------------------------------------- sizes


def _stack_version(task: TaskSpec) -> str:
    """Versions of the packages that decide a task's spaces (the cache key's second half)."""
    from importlib.metadata import PackageNotFoundError, version

    names = {"navigation": "safety-gymnasium", "velocity": "safety-gymnasium"}
    package = names.get(task.family, "bullet-safety-gym")
    try:
        return f"{package}=={version(package)};dsrl=={version('dsrl')}"
    except PackageNotFoundError:
        return "unknown"


def sizes_cache_path() -> Path:
    return cache_dir() / "task_sizes.json"


def env_sizes(task: TaskSpec | str) -> tuple[int, int]:
    """(obs_dim, act_dim) of a DSRL task, read from its env once and cached in a small JSON
    file under the suite's cache (keyed by env id and simulator versions)."""
    task = _as_task(task)
    if task.sizes is not None:
        return task.sizes
    return _cached_sizes(task.env_id, task.name, str(sizes_cache_path()), _stack_version(task))


@cache
def _cached_sizes(env_id: str, name: str, cache_file: str, stack: str) -> tuple[int, int]:
    path = Path(cache_file)
    key = f"{env_id}|{stack}"
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return int(cache[key][0]), int(cache[key][1])
    env = make_env(get_task(name))
    try:
        sizes = (
            int(np.prod(env.observation_space.shape)),
            int(np.prod(env.action_space.shape)),
        )
    finally:
        env.close()
    cache[key] = list(sizes)
    # Two processes may race here; both write the same values, and the write is atomic.
    atomic_write_text(path, json.dumps(cache, indent=1, sort_keys=True))
    return sizes
