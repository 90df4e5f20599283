"""The contract between the runner and an algorithm.

An algorithm file holds one method's maths: a `@dataclass Config`, its networks and losses,
and a class implementing `Algorithm`. The runner owns every loop (sampling, seeding, stages,
checkpoints, evaluation, logging); the algorithm only says what its stages are, what a batch
of each stage is drawn from, and what one update does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from benchmark.data.dataset import Dataset
from benchmark.tasks import TaskSpec

Batch = dict[str, torch.Tensor]
"""One minibatch: column name -> tensor on the run's device, first dimension = batch size."""


def to_torch(batch: dict[str, np.ndarray], device: torch.device | str) -> Batch:
    """A sampled numpy batch as tensors on `device` (float64 columns become float32)."""
    out = {}
    for key, value in batch.items():
        array = np.asarray(value)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        out[key] = torch.as_tensor(array, device=device)
    return out


@dataclass(frozen=True)
class Stage:
    """One training stage: the runner calls `update(name, batch)` `steps` times."""

    name: str
    steps: int
    batch_size: int
    shared_across_cost_limits: bool = False
    """True when the stage does not depend on the cost limit (DRCORL's behaviour model and
    critics): the runner saves the algorithm state after it as an artifact keyed by
    (algorithm, task, seed, dataset, config) and reuses it for every cost limit. Such stages
    must come first, and `state_dict` after them must not hold cost-limit-dependent values."""
    reads: tuple[str, ...] | None = None
    """The Config options this stage's result depends on, with those that shape the state
    saved after it (network sizes); None = the whole config. The artifact after a shared stage
    is keyed by the options its stage and the earlier ones read, so a variant that differs in
    a later stage's options reuses it (`load_state_dict` must then take a state saved under
    such a variant: the same shapes, its own learning rates)."""


class UnknownStageError(ValueError):
    """`update` or `batch_source` called with a stage the algorithm does not have: a bug in
    the caller, not bad user input, so not a BenchmarkError."""


def unknown_stage(
    algorithm: str, stage: str, stages: tuple[Stage, ...] | Sequence[str]
) -> UnknownStageError:
    """The error an algorithm raises for a stage name it does not know (`raise unknown_stage(...)`
    where a dispatch falls through; `check_stage` up front)."""
    names = [s.name if isinstance(s, Stage) else s for s in stages]
    return UnknownStageError(f"{algorithm}: unknown stage {stage!r}; stages: {names}")


def check_stage(algorithm: str, stage: str, stages: tuple[Stage, ...] | Sequence[str]) -> None:
    """Raise `unknown_stage(...)` unless `stage` is one of `stages`."""
    names = [s.name if isinstance(s, Stage) else s for s in stages]
    if stage not in names:
        raise unknown_stage(algorithm, stage, names)


class BatchSource(Protocol):
    """What the runner samples a stage's minibatches from (with the runner's seeded RNG)."""

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, np.ndarray]: ...


@dataclass
class TransitionSource:
    """Uniform (or weighted) sampling of rows of equal-length columns."""

    columns: dict[str, np.ndarray]
    weights: np.ndarray | None = None
    """Optional per-row sampling probabilities (normalised here)."""

    def __post_init__(self) -> None:
        lengths = {k: len(v) for k, v in self.columns.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"columns of unequal length: {lengths}")
        if self.weights is not None:
            self.weights = np.asarray(self.weights, dtype=np.float64)
            self.weights = self.weights / self.weights.sum()

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, np.ndarray]:
        if self.weights is None:
            rows = rng.integers(0, len(self), size=batch_size)
        else:
            rows = rng.choice(len(self), size=batch_size, p=self.weights)
        return {k: v[rows] for k, v in self.columns.items()}


def transition_columns(dataset: Dataset) -> dict[str, np.ndarray]:
    """The standard transition batch: obs, actions, rewards, costs, next_obs, done (= terminal)."""
    return {
        "obs": dataset.observations,
        "actions": dataset.actions,
        "rewards": dataset.rewards,
        "costs": dataset.costs,
        "next_obs": dataset.next_observations,
        "done": dataset.terminals.astype(np.float32),
    }


@runtime_checkable
class Policy(Protocol):
    """A batched, deterministic evaluation policy, stateful across one batch of episodes.

    The evaluator calls `reset` when envs start episodes (mask marks which), then alternates
    `act` and `observe` until they end. Per-episode state (remaining cost budget for CAPS and
    CCAC, return/cost-to-go context for CDT) lives here.
    """

    def reset(self, obs: np.ndarray, mask: np.ndarray) -> None: ...

    def act(self, obs: np.ndarray) -> np.ndarray: ...

    def observe(self, reward: np.ndarray, cost: np.ndarray, done: np.ndarray) -> None: ...


def _plain_cost_normalisation(cost: float, cost_limit: float) -> float:
    return cost / cost_limit


def _drop_candidate(info: dict[str, float]) -> None:
    """Outside the runner (unit tests, benchmarks) nobody keeps candidates."""


@dataclass
class TrainContext:
    """Everything an algorithm's constructor may use besides its Config."""

    task: TaskSpec
    dataset: Dataset
    cost_limit: float
    """The training threshold (episode cost). Cost-conditioned algorithms get the largest
    limit they will be evaluated at and must serve any limit from `policy(cost_limit, ...)`."""
    seed: int
    device: torch.device
    protocol: str = "honest"
    """The evaluation protocol's name (benchmark.protocols), for messages."""
    cost_limits: tuple[float, ...] = ()
    """For cost-conditioned algorithms: every limit the run will be evaluated at."""
    normalise_cost: Callable[[float, float], float] = _plain_cost_normalisation
    """`normalise_cost(episode_cost, cost_limit)` as this run's protocol normalises it for
    this algorithm (C/kappa; C/(kappa+0.1) for DRCORL under `paper`)."""
    rollout: Callable[[Callable[[np.ndarray], np.ndarray], Sequence[int]], Any] | None = None
    """`rollout(act_fn, seeds) -> EpisodeResults`: one episode per seed of the deterministic
    batched `act_fn` in the task's simulator, run by the runner (which counts the steps and
    records them as `online_env_steps`). None unless the protocol allows interaction."""
    offer_candidate: Callable[[dict[str, float]], None] = _drop_candidate
    """`offer_candidate(info)`: the algorithm's current state is its best policy so far (the
    algorithm decides what best means; `info` says why, e.g. the online episode's return and
    cost). The runner snapshots the state, replacing any earlier candidate, and evaluates it
    on the fixed episodes beside the final iterate."""


@runtime_checkable
class Algorithm(Protocol):
    """What every algorithm class implements. Constructed as `Cls(config, context)`."""

    stages: tuple[Stage, ...]

    def batch_source(self, stage: str) -> BatchSource:
        """What the runner samples this stage's minibatches from."""
        ...

    def update(self, stage: str, batch: Batch) -> dict[str, float]:
        """One gradient step (or one iteration) of `stage`; returns scalars to log."""
        ...

    def policy(self, cost_limit: float, num_envs: int) -> Policy: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class StatelessPolicy:
    """A `Policy` whose action depends on the observation alone (most methods)."""

    def __init__(self, act_fn: Callable[[np.ndarray], np.ndarray]):
        self._act_fn = act_fn

    def reset(self, obs: np.ndarray, mask: np.ndarray) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self._act_fn(obs)

    def observe(self, reward: np.ndarray, cost: np.ndarray, done: np.ndarray) -> None:
        pass


def torch_actor(
    module: torch.nn.Module, device: torch.device
) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap a deterministic torch actor (obs tensor -> action tensor) as a numpy function."""

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x = torch.as_tensor(obs, dtype=torch.float32, device=device)
            return module(x).cpu().numpy()

    return act
