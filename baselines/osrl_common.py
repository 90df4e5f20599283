"""What the six OSRL adapters share: data columns the way OSRL's data code builds them, an
isolated torch RNG stream, a logger that hands back the trainer's statistics, and the
checkpoint plumbing for the state osrl-lib keeps outside `nn.Module.state_dict()`.

The adapters use osrl-lib 0.1.0 (`[OSRL]`, liuzuxin/OSRL, library code identical to HEAD
03a4586) as a library: they build its model and trainer classes and call
`trainer.train_one_step(...)`. They replace only OSRL's data pipeline (`TransitionDataset`,
`SequenceDataset`, torch `DataLoader`), its `evaluate()` and its W&B logging. How each of those
is replicated is documented next to the code below.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import torch
from fsrl.utils import DummyLogger

from benchmark.data.dataset import Dataset
from benchmark.errors import ConfigError
from benchmark.interface import check_stage
from benchmark.tasks import TaskSpec

Q_LEARNING_OPTIMIZERS = ("actor_optim", "critic_optim", "cost_critic_optim", "vae_optim")
"""The optimisers of osrl-lib's BCQL, BEARL and CPQ models."""

MAX_ACTION = 1.0
"""OSRL passes `env.action_space.high[0]`; it is 1 for all DSRL and toy tasks (and the suite's
`Policy` contract is actions in [-1, 1])."""


def check_cost_limit(cost_limit: float, algorithm: str) -> float:
    """A cost limit must be a positive, finite episode cost."""
    value = float(cost_limit)
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(
            f"{algorithm}: cost limit must be a positive episode cost, got {cost_limit!r}; "
            "pass a threshold such as the task's OSRL limits (e.g. 10, 20, 40)"
        )
    return value


def episode_len(configured: int, task: TaskSpec) -> int:
    """OSRL's per-task `episode_len` is DSRL's horizon for all 11 tasks; 0 means exactly that."""
    if configured < 0:
        raise ConfigError(f"episode_len must be >= 0 (0 = the task's horizon), got {configured}")
    return int(configured) if configured > 0 else int(task.horizon)


# ----------------------------------------------------------------------------- data


def osrl_done(dataset: Dataset) -> np.ndarray:
    """OSRL's `TransitionDataset` sets `done = terminals OR timeouts` (float32): a time-limit
    truncation is treated as terminal, so the TD targets do not bootstrap through it. We
    replicate that, deliberately, to reproduce OSRL's numbers."""
    return np.logical_or(dataset.terminals, dataset.timeouts).astype(np.float32)


def osrl_is_init(dataset: Dataset) -> np.ndarray:
    """`TransitionDataset(state_init=True)`: 1 on the first transition of every trajectory,
    i.e. `done` shifted by one with the very first row set (float32)."""
    done = osrl_done(dataset)
    is_init = np.empty_like(done)
    is_init[0] = 1.0
    is_init[1:] = done[:-1]
    return is_init


def transition_columns(dataset: Dataset, with_init: bool = False) -> dict[str, np.ndarray]:
    """Columns of OSRL's transition batches, rewards and costs left unscaled (float32).

    OSRL's `TransitionDataset` yields `float32 reward * reward_scale`, which numpy computes in
    float64, so OSRL's trainers receive float64 reward and cost tensors. The suite's runner
    casts float64 columns to float32, so the adapters apply the scale in `update` instead
    (`scaled(...)`), which gives the same float64 values bit for bit.
    """
    columns = {
        "obs": dataset.observations,
        "next_obs": dataset.next_observations,
        "actions": dataset.actions,
        "rewards": dataset.rewards,
        "costs": dataset.costs,
        "done": osrl_done(dataset),
    }
    if with_init:
        columns["is_init"] = osrl_is_init(dataset)
    return columns


def scaled(values: torch.Tensor, scale: float) -> torch.Tensor:
    """`float32 value * scale` in float64, as OSRL's `TransitionDataset.__prepare_sample`."""
    return values.to(torch.float64) * scale


def dataset_state_stats(dataset: Dataset) -> tuple[np.float32, np.ndarray, np.ndarray]:
    """OSRL's `TransitionDataset.get_dataset_states()`: the fraction of initial states and the
    per-dimension std of observations and actions, shape (1, dim), all float32 as there."""
    init_proportion = osrl_is_init(dataset).mean()
    obs_std = dataset.observations.std(0, keepdims=True)
    act_std = dataset.actions.std(0, keepdims=True)
    return init_proportion, obs_std, act_std


def episode_discounted_sums(dataset: Dataset, values: np.ndarray, gamma: float) -> np.ndarray:
    """Per trajectory, the discounted sum from its first step, accumulated backwards in float32
    exactly as OSRL's `discounted_cumsum` (so ties with the cost limit resolve as there)."""
    values = np.asarray(values, dtype=np.float32)
    out = np.empty(dataset.num_episodes, dtype=np.float32)
    for i, (start, end) in enumerate(zip(dataset.episode_starts, dataset.episode_ends)):
        segment = values[start:end][::-1]
        if gamma == 1.0:
            # float32 sequential cumsum == OSRL's float32(x_t + 1.0 * acc) recursion
            out[i] = np.cumsum(segment, dtype=np.float32)[-1]
        else:
            acc = np.float32(0.0)
            for x in segment:
                acc = np.float32(x + gamma * acc)
            out[i] = acc
    return out


# ----------------------------------------------------------------------------- training plumbing


class RecordingLogger(DummyLogger):
    """fsrl's no-op logger, except that it keeps the last value of every `store(...)` call so
    `update` can return the trainer's losses. Keys follow the suite's `group/name` convention:
    OSRL's own (`loss/actor_loss`) as they are, a `store(tab=...)` value as `tab/name`."""

    def __init__(self) -> None:
        super().__init__()
        self.last: dict[str, float] = {}

    def store(self, tab: str | None = None, **kwargs) -> None:
        for key, value in kwargs.items():
            name = key if "/" in key or not tab else f"{tab}/{key}"
            self.last[name] = float(value)

    def pop(self) -> dict[str, float]:
        stats, self.last = self.last, {}
        return stats


class TorchRNGStream:
    """A private torch RNG stream for osrl-lib's updates.

    osrl-lib draws from torch's *global* generators inside `train_one_step` (VAE noise, Gaussian
    policy samples, dropout). The adapter swaps its own state in around each update and swaps
    the caller's back afterwards, so (a) nothing else that touches the global RNG (evaluation,
    the runner) changes the training stream, and (b) the stream's state is part of the
    adapter's `state_dict`, which makes a resumed run exact. The stream starts from the global
    state at construction time, i.e. where OSRL's own loop would continue after building the
    model (the runner seeds the global RNGs before constructing the algorithm).
    """

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self.cpu = torch.get_rng_state()
        self.cuda = self._cuda_get() if self._uses_cuda() else None

    def _uses_cuda(self) -> bool:
        return self.device.type == "cuda"

    def _cuda_get(self) -> torch.Tensor:
        return torch.cuda.get_rng_state(self.device)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        outer_cpu = torch.get_rng_state()
        outer_cuda = self._cuda_get() if self._uses_cuda() else None
        torch.set_rng_state(self.cpu)
        if outer_cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)
        try:
            yield
            self.cpu = torch.get_rng_state()
            if outer_cuda is not None:
                self.cuda = self._cuda_get()
        finally:
            torch.set_rng_state(outer_cpu)
            if outer_cuda is not None:
                torch.cuda.set_rng_state(outer_cuda, self.device)

    def state_dict(self) -> dict:
        return {"cpu": self.cpu.clone(), "cuda": None if self.cuda is None else self.cuda.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.cpu = state["cpu"].to("cpu", torch.uint8).clone()
        if self._uses_cuda() and state.get("cuda") is not None:
            self.cuda = state["cuda"].to("cpu", torch.uint8).clone()


@contextlib.contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[None]:
    """Evaluation mode (no dropout) and no autograd for one forward pass; restores the mode."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(was_training)


def pid_state(controller) -> dict:
    """`LagrangianPIDController` keeps its integral and previous error as attributes (0 before
    the first step, then 0-dim tensors)."""

    def copy(value):
        return value.detach().clone() if isinstance(value, torch.Tensor) else value

    return {
        "error_old": copy(controller.error_old),
        "error_integral": copy(controller.error_integral),
    }


def load_pid_state(controller, state: dict, device: torch.device) -> None:
    for name, value in state.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device)
        setattr(controller, name, value)


def actor_policy_fn(forward, module: torch.nn.Module, device: torch.device):
    """A numpy -> numpy deterministic action function around `forward(obs_tensor)`."""

    def act(obs: np.ndarray) -> np.ndarray:
        with eval_mode(module):
            x = torch.as_tensor(np.asarray(obs), dtype=torch.float32, device=device)
            return forward(x).cpu().numpy()

    return act


# ----------------------------------------------------------------------------- adapter base


class OSRLAdapter:
    """Checkpointing and stage bookkeeping shared by the six adapters.

    A subclass builds `self.model` and `self.trainer` (osrl-lib objects), `self.logger`
    (a `RecordingLogger`), `self.rng` (a `TorchRNGStream`, created right after the model and
    trainer) and `self.stages`, and lists what osrl-lib keeps outside the model's state dict in
    `_optimizers()`, `_tensors()` and `_extra_state()`.
    """

    name = "osrl"
    stages: tuple

    def _check_stage(self, stage: str) -> None:
        check_stage(self.name, stage, self.stages)

    optimizer_names: tuple[str, ...] = ()
    """Attributes of the osrl-lib model holding its optimisers (checkpointed with it)."""

    def batch_source(self, stage: str):
        self._check_stage(stage)
        return self._source

    def _optimizers(self) -> dict[str, object]:
        return {name: getattr(self.model, name) for name in self.optimizer_names}

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def _extra_state(self) -> dict:
        return {}

    def _load_extra_state(self, state: dict) -> None:
        pass

    def _offline_q_step(self, batch) -> dict[str, float]:
        """The `train_one_step(obs, next_obs, act, r * reward_scale, c * cost_scale, done)`
        call that BCQ-Lag, BEAR-Lag and CPQ share."""
        return self._train_step(
            batch["obs"],
            batch["next_obs"],
            batch["actions"],
            scaled(batch["rewards"], self.config.reward_scale),
            scaled(batch["costs"], self.config.cost_scale),
            batch["done"],
        )

    def _train_step(self, *args) -> dict[str, float]:
        """One `trainer.train_one_step(*args)` on the private RNG stream; its logged stats."""
        with self.rng.active():
            self.trainer.train_one_step(*args)
        return self.logger.pop()

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizers": {k: v.state_dict() for k, v in self._optimizers().items()},
            "tensors": {k: v.detach().clone() for k, v in self._tensors().items()},
            "extra": self._extra_state(),
            "rng": self.rng.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        for name, optimizer in self._optimizers().items():
            optimizer.load_state_dict(state["optimizers"][name])
        tensors = self._tensors()
        with torch.no_grad():
            for name, value in state["tensors"].items():
                tensors[name].copy_(value.to(tensors[name].device, tensors[name].dtype))
        self._load_extra_state(state["extra"])
        self.rng.load_state_dict(state["rng"])
