"""BC-Safe: behaviour cloning on the trajectories whose cost return is within the limit.

Paper: the BC-Safe baseline of Liu et al., "Datasets and Benchmarks for Offline Safe
Reinforcement Learning" (DMLR 2024; the OSRL/DSRL benchmark paper).
Code followed: osrl-lib 0.1.0 used as a library (`osrl.algorithms.BC`, `BCTrainer`), settings
from OSRL's `examples/configs/bc_configs.py` and `examples/train/train_bc.py` run with
`--bc_mode safe` (baselines.md 2.3.1).

Data: OSRL's `process_bc_dataset(bc_mode="safe")` keeps every trajectory whose discounted
(gamma 1.0: undiscounted) cost return, accumulated in float32 as OSRL does, is <= the cost
limit. We select the same trajectories with `Dataset.select_episodes` instead of mutating a
dict. A dataset with no such trajectory raises `ConfigError` (OSRL would train on an empty
set and crash inside the DataLoader).

Deviations: only `bc_mode` "safe" and "all" are offered (OSRL's "risky", "boundary",
"frontier" and "multi-task" variants are not part of the benchmark); batches come from the
suite's runner (uniform sampling with replacement, as OSRL's `TransitionDataset`) instead of
a torch DataLoader; evaluation is the suite's (deterministic actor, seeded episodes), not
`BCTrainer.evaluate`; a cost limit <= 0 is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from osrl.algorithms import BC, BCTrainer

from baselines.osrl_common import (
    MAX_ACTION,
    OSRLAdapter,
    RecordingLogger,
    TorchRNGStream,
    actor_policy_fn,
    check_cost_limit,
    episode_discounted_sums,
    episode_len,
)
from benchmark.data.dataset import Dataset
from benchmark.errors import ConfigError
from benchmark.interface import (
    Batch,
    Policy,
    Stage,
    StatelessPolicy,
    TrainContext,
    TransitionSource,
)
from benchmark.validation import Fraction, NonNegativeInt, PositiveFloat, PositiveInt, Sizes


@dataclass
class Config:
    steps: PositiveInt = 100_000
    """Gradient steps (OSRL `update_steps`)."""
    batch_size: PositiveInt = 512
    """Transitions per batch (OSRL `batch_size`)."""
    actor_lr: PositiveFloat = 1e-3
    """Adam learning rate of the actor (OSRL config `actor_lr`; the trainer's default is 1e-4)."""
    a_hidden_sizes: Sizes = field(default_factory=lambda: [256, 256])
    """Hidden layers of the MLP actor, ReLU, tanh output (OSRL config; constructor: [128, 128])."""
    gamma: Fraction = 1.0
    """Discount of the cost return used by the trajectory filter (OSRL config: undiscounted)."""
    bc_mode: Literal["safe", "all"] = "safe"
    """`safe`: clone trajectories with cost return <= the limit (BC-Safe); `all`: every one."""
    episode_len: NonNegativeInt = 0
    """OSRL `episode_len`; 0 = the task's horizon (OSRL's per-task value for all 11 tasks)."""


def select_bc_data(dataset: Dataset, cost_limit: float, gamma: float, mode: str) -> Dataset:
    """The trajectories OSRL's `process_bc_dataset` keeps for `mode`."""
    if mode == "all":
        return dataset
    cost_returns = episode_discounted_sums(dataset, dataset.costs, gamma)
    keep = np.flatnonzero(cost_returns <= cost_limit)
    if keep.size == 0:
        lowest = float(cost_returns.min())
        raise ConfigError(
            f"bc_safe: no trajectory of the {dataset.task} dataset has a cost return <= the cost "
            f"limit {cost_limit:g} (the lowest is {lowest:g}), so there is nothing to clone; use "
            f"a cost limit >= {lowest:g}, or bc_mode=all"
        )
    return dataset.select_episodes(keep)


class BCSafe(OSRLAdapter):
    """OSRL's BC model and trainer fed with the safe trajectories."""

    name = "bc_safe"
    optimizer_names = ("actor_optim",)

    def __init__(self, config: Config, ctx: TrainContext):
        self.config = config
        self.device = ctx.device
        cost_limit = check_cost_limit(ctx.cost_limit, "bc_safe")
        data = select_bc_data(ctx.dataset, cost_limit, config.gamma, config.bc_mode)
        self._source = TransitionSource({"obs": data.observations, "actions": data.actions})
        self.model = BC(
            state_dim=data.observations.shape[1],
            action_dim=data.actions.shape[1],
            max_action=MAX_ACTION,
            a_hidden_sizes=list(config.a_hidden_sizes),
            episode_len=episode_len(config.episode_len, ctx.task),
            device=str(ctx.device),
        )
        self.logger = RecordingLogger()
        self.trainer = BCTrainer(
            self.model,
            None,  # the env is only used by BCTrainer.evaluate, which the suite replaces
            logger=self.logger,
            actor_lr=config.actor_lr,
            bc_mode=config.bc_mode,
            cost_limit=cost_limit,
            device=str(ctx.device),
        )
        self.rng = TorchRNGStream(ctx.device)
        self.stages = (Stage("train", config.steps, config.batch_size),)

    def update(self, stage: str, batch: Batch) -> dict[str, float]:
        self._check_stage(stage)
        return self._train_step(batch["obs"], batch["actions"])

    def policy(self, cost_limit: float, num_envs: int) -> Policy:
        return StatelessPolicy(actor_policy_fn(self.model.actor, self.model, self.device))
