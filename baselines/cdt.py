"""CDT: the constrained decision transformer, trained once and conditioned on a cost budget.

Paper: Liu, Guo, Yao, Cen, Yu, Zhang, Zhao, "Constrained Decision Transformer for Offline Safe
Reinforcement Learning" (ICML 2023).
Code followed: osrl-lib 0.1.0 used as a library (`osrl.algorithms.CDT`, `CDTTrainer`),
settings from OSRL's `examples/configs/cdt_configs.py` and `examples/train/train_cdt.py`
(baselines.md 2.3.6). Per-task values (target returns, `deg`, `max_reward`,
`max_rew_decrease`) are in `benchmark/configs/algorithms/cdt.yaml`.

Data (replaces OSRL's `SequenceDataset`, same arithmetic):
- Trajectories split on `terminals OR timeouts`; undiscounted return- and cost-to-go
  accumulated backwards in float32 as OSRL's `discounted_cumsum(gamma=1)`.
- Pareto augmentation as OSRL's `augmentation()`: grid filter (10 cost x 50 reward bins, at
  most 10 and more than 2 trajectories per bin), a two-objective Pareto set (min cost, max
  return) computed in numpy -- it returns the same indices in the same order as OSRL's
  `oapackage.ParetoDoubleLong`, so oapackage is not needed --, a degree-`deg` polynomial
  frontier, `augment_percent` x (filtered count) relabelled trajectories with returns drawn
  above the frontier up to `max_reward` and assigned to nearby real trajectories (including
  OSRL's pairing of the regrouped nearest indices with the targets in cost order). Python's
  `random` and numpy's legacy `RandomState`, both seeded with the run seed, replace the
  global generators, so with the same seeds our relabelled set equals OSRL's exactly (tested).
- Fallbacks that OSRL lacks (it crashes in `np.polyfit` on small data, OSRL issue #6,
  install.md 4): when the grid filter leaves fewer than 2 trajectories the unfiltered set is
  used; when the Pareto set has fewer distinct costs than `deg + 1` the degree is lowered to
  fit. `CDT.augmentation_info` says which applied.
- Sampling: a trajectory with probability proportional to max(`cost_sample_max` - C, 0)
  (OSRL's `70 - C`: trajectories costing 70 or more are never drawn), a uniform start, a window
  of `seq_len` steps padded with zeros and masked; rewards x `reward_scale`, costs x
  `cost_scale`; time steps are absolute. Windows are drawn by the runner's generator.

Evaluation (replaces `CDTTrainer.rollout`): `policy(kappa, n)` conditions every episode on the
cost-to-go kappa and a target return, taken from the task's OSRL `target_returns` (the pair
whose cost is kappa; linear interpolation in cost, clamped at the ends, for other limits) or,
with no table, the best return among the dataset's trajectories with cost <= kappa. `reset`
starts an episode with those targets (x the scales), `observe` subtracts each step's reward and
cost, and `act` runs the transformer on the last `seq_len` steps of the episode and returns
the Gaussian head's mean clamped to [-1, 1] -- one batched forward per distinct history
length, so each episode sees exactly the window OSRL's rollout would. Normalisation happens in
the suite's evaluator with each episode's own kappa, so OSRL's `eval_cdt.py` bug (dividing
every target's cost by the training limit) cannot occur.

A target outside the training data: a target return or cost outside the range of the
(augmented) training trajectories' returns and costs is clipped into it, with a
`CDTTargetWarning`; the clipped targets are on the policy (`target_return`, `target_cost`,
`clipped`). The return range's upper end includes `max_reward` when augmenting (OSRL's
targets sit at the top of the relabelled range, e.g. HalfCheetah 3000).

Deviations: OSRL's unused data modes (`pf_sample`, `pf_only`, `random_aug`, `start_sampling`,
`cost_reverse`) are not offered; evaluation is the suite's; a cost limit <= 0 is rejected.
"""

from __future__ import annotations

import random
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
from osrl.algorithms import CDT as OSRLCDT
from osrl.algorithms import CDTTrainer

from baselines.osrl_common import (
    MAX_ACTION,
    OSRLAdapter,
    RecordingLogger,
    TorchRNGStream,
    check_cost_limit,
    episode_len,
    eval_mode,
)
from benchmark.data.dataset import Dataset
from benchmark.errors import ConfigError
from benchmark.interface import Batch, Stage, TrainContext
from benchmark.validation import (
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)

GRID_COST_BINS, GRID_REWARD_BINS = 10, 50
"""OSRL's `augmentation()` grid filter bins (hard-coded there)."""
GRID_MAX_PER_BIN, GRID_MIN_PER_BIN = 10, 2
"""Bins with more trajectories are subsampled to the max; bins with <= min are dropped."""


@dataclass
class Config:
    steps: PositiveInt = 100_000
    """Gradient steps (OSRL `update_steps`)."""
    batch_size: PositiveInt = 2048
    """Sequences per batch (OSRL `batch_size`)."""
    seq_len: PositiveInt = 10
    """Context length in environment steps (OSRL `seq_len`)."""
    episode_len: NonNegativeInt = 0
    """Size of the time-step table minus seq_len; 0 = the task's horizon (OSRL per task)."""
    embedding_dim: PositiveInt = 128
    """Token width (OSRL `embedding_dim`)."""
    num_layers: PositiveInt = 3
    """Transformer blocks (OSRL config 3; constructor default 4)."""
    num_heads: PositiveInt = 8
    """Attention heads (OSRL `num_heads`)."""
    action_head_layers: PositiveInt = 1
    """Layers of the action head (OSRL `action_head_layers`)."""
    attention_dropout: Fraction = 0.1
    """Dropout on attention weights (OSRL config; constructor default 0)."""
    residual_dropout: Fraction = 0.1
    """Dropout on residual branches (OSRL config; constructor default 0)."""
    embedding_dropout: Fraction = 0.1
    """Dropout on the token embeddings (OSRL config; constructor default 0)."""
    time_emb: bool = True
    """Add a learned absolute time-step embedding (OSRL `time_emb`)."""
    learning_rate: PositiveFloat = 1e-4
    """AdamW learning rate (OSRL `learning_rate`)."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    """AdamW betas (OSRL `betas`)."""
    weight_decay: NonNegativeFloat = 1e-4
    """AdamW weight decay (OSRL `weight_decay`)."""
    clip_grad: PositiveFloat = 0.25
    """Gradient-norm clip (OSRL `clip_grad`); 0 disables clipping (OSRL's None)."""
    lr_warmup_steps: NonNegativeInt = 500
    """Linear learning-rate warm-up (OSRL config 500; trainer default 10000)."""
    reward_scale: PositiveFloat = 0.1
    """Return-to-go tokens are multiplied by this (OSRL `reward_scale`)."""
    cost_scale: PositiveFloat = 1.0
    """Cost-to-go tokens are multiplied by this (OSRL `cost_scale`)."""
    target_returns: list[list[float]] = field(default_factory=list)
    """(return, cost) evaluation targets (OSRL per task); empty = best safe return in the data."""
    deg: NonNegativeInt = 4
    """Degree of the polynomial Pareto frontier of the augmentation (OSRL `deg`, per task)."""
    beta: float = 1.0
    """Distance offset in the nearest-trajectory weights 1/(d + beta) (OSRL `beta`)."""
    augment_percent: Fraction = 0.2
    """Relabelled trajectories, as a fraction of the grid-filtered ones (OSRL)."""
    max_reward: float = 600.0
    """Upper end of relabelled returns (OSRL `max_reward`, per task)."""
    min_reward: float = 1.0
    """Relabelled returns lie at least this far above the frontier (OSRL `min_reward`)."""
    max_rew_decrease: float = 100.0
    """How much lower a substitute trajectory's return may be (OSRL `max_rew_decrease`)."""
    use_rew: bool = True
    """Condition on return-to-go tokens (OSRL `use_rew`)."""
    use_cost: bool = True
    """Condition on cost-to-go tokens (OSRL `use_cost`)."""
    cost_transform: bool = True
    """Feed 50 - cost-to-go instead of cost-to-go (OSRL `cost_transform`)."""
    cost_prefix: bool = False
    """Prefix the sequence with the episode cost (OSRL `cost_prefix`)."""
    add_cost_feat: bool = False
    """Add the cost embedding to the state feature (OSRL `add_cost_feat`)."""
    mul_cost_feat: bool = False
    """Multiply the state feature by the cost embedding (OSRL `mul_cost_feat`)."""
    cat_cost_feat: bool = False
    """Concatenate the cost embedding to the state feature (OSRL `cat_cost_feat`)."""
    loss_cost_weight: NonNegativeFloat = 0.02
    """Weight of the auxiliary next-cost classification loss (OSRL config, issue #9)."""
    loss_state_weight: NonNegativeFloat = 0.0
    """Weight of the next-state prediction loss (OSRL `loss_state_weight`)."""
    cost_sample: bool = True
    """Sample trajectories by cost (OSRL `cost_sample`); false = uniformly."""
    linear: bool = True
    """Cost weights max(cost_sample_max - C, 0) (OSRL `linear`); false = 1 / (C + 10)."""
    cost_sample_max: float = 70.0
    """The 70 of OSRL's linear cost weights (hard-coded in its train_cdt.py)."""
    stochastic: bool = True
    """Gaussian action head with an entropy bonus (OSRL `stochastic`); false = MSE head."""
    init_temperature: PositiveFloat = 0.1
    """Initial entropy temperature (OSRL `init_temperature`)."""
    no_entropy: bool = False
    """Drop the entropy bonus (OSRL `no_entropy`)."""


class CDTTargetWarning(UserWarning):
    """An evaluation target outside the training data was clipped into its range."""


# ----------------------------------------------------------------------------- trajectories


@dataclass
class Trajectories:
    """Sequence-level view of a dataset: original trajectories plus relabelled copies."""

    starts: np.ndarray
    """Row of each original trajectory's first step in the flat dataset arrays."""
    lengths: np.ndarray
    returns: list[np.ndarray]
    """Return-to-go per step, float32, one array per original trajectory."""
    cost_returns: list[np.ndarray]


def trajectories(dataset: Dataset) -> Trajectories:
    """Return- and cost-to-go of every trajectory, float32 backward sums as OSRL's."""
    starts, ends = dataset.episode_starts, dataset.episode_ends
    rewards = dataset.rewards.astype(np.float32, copy=False)
    costs = dataset.costs.astype(np.float32, copy=False)

    def to_go(values: np.ndarray, start: int, end: int) -> np.ndarray:
        return np.cumsum(values[start:end][::-1], dtype=np.float32)[::-1].copy()

    return Trajectories(
        starts=np.asarray(starts, dtype=np.int64),
        lengths=np.asarray(ends - starts, dtype=np.int64),
        returns=[to_go(rewards, s, e) for s, e in zip(starts, ends)],
        cost_returns=[to_go(costs, s, e) for s, e in zip(starts, ends)],
    )


# ----------------------------------------------------------------------------- augmentation


def grid_filter(cost: np.ndarray, reward: np.ndarray, py_rng: random.Random) -> list[int]:
    """OSRL's `grid_filter` over the data's own (cost, return) range, in its visiting order."""
    xmin, xmax = np.min(cost), np.max(cost)
    ymin, ymax = np.min(reward), np.max(reward)
    xstep = (xmax - xmin) / GRID_COST_BINS
    ystep = (ymax - ymin) / GRID_REWARD_BINS
    bins: dict[tuple, list[int]] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        xbin = np.floor_divide(cost - xmin, xstep)
        ybin = np.floor_divide(reward - ymin, ystep)
    for i in range(len(cost)):
        if np.isnan(xbin[i]) or np.isnan(ybin[i]):
            continue  # a zero-width range: OSRL's NaN bins each hold one trajectory (dropped)
        bins.setdefault((xbin[i], ybin[i]), []).append(i)
    kept: list[int] = []
    for members in bins.values():
        if len(members) > GRID_MAX_PER_BIN:
            kept += py_rng.sample(members, GRID_MAX_PER_BIN)
        elif len(members) > GRID_MIN_PER_BIN:
            kept += members
    return kept


def pareto_indices(cost: np.ndarray, reward: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats (cost <=, return >=, one strictly), grouped
    by value in order of first appearance: the order of oapackage's `allindices()`."""
    order = np.lexsort((-reward, cost))  # by cost, then by return descending
    best = -np.inf
    front_values: set[tuple[float, float]] = set()
    for i in order:
        if reward[i] > best:
            best = reward[i]
            front_values.add((cost[i], reward[i]))
    members = [i for i in range(len(cost)) if (cost[i], reward[i]) in front_values]
    groups: dict[tuple[float, float], list[int]] = {}
    for i in members:
        groups.setdefault((cost[i], reward[i]), []).append(i)
    return np.array([i for group in groups.values() for i in group], dtype=np.int64)


def nearest_points(
    original: np.ndarray,
    sampled: np.ndarray,
    max_rew_decrease: float,
    beta: float,
    np_rng: np.random.RandomState,
) -> list[int]:
    """OSRL's `get_nearest_point`: for each sampled (cost, return), the nearest trajectory with
    no larger cost; an index drawn k > 1 times keeps one copy and draws k - 1 substitutes among
    trajectories with no larger cost and a return at most `max_rew_decrease` lower, weighted by
    1 / (distance + beta). The result is grouped by index, as OSRL's."""
    delta_c = original[None, :, 0] - sampled[:, None, 0]
    delta_r = original[None, :, 1] - sampled[:, None, 1]
    dist = np.hypot(delta_c, delta_r)
    dist[original[None, :, 0] > sampled[:, None, 0]] = np.inf
    nearest = np.argmin(dist, axis=1)
    counts = Counter(int(i) for i in nearest)
    out: list[int] = []
    for idx, num in counts.items():
        out.append(idx)
        if num > 1:
            point = original[idx]
            mask = (original[:, 0] <= point[0]) & (original[:, 1] >= point[1] - max_rew_decrease)
            delta = original[mask] - point
            weight = 1 / (np.hypot(delta[:, 0], delta[:, 1]) + beta)
            draws = np_rng.choice(weight.shape[0], size=num - 1, p=weight / np.sum(weight))
            out.extend(int(i) for i in np.flatnonzero(mask)[draws])
    return out


@dataclass
class Augmentation:
    """Relabelled trajectories: which original each copies and its new initial targets."""

    source: list[int]
    """Original trajectory index of every relabelled copy."""
    targets: np.ndarray
    """(k, 2) float64: the (cost, return) each copy is relabelled to."""
    info: dict


def pareto_augmentation(
    traj: Trajectories,
    deg: int,
    max_rew_decrease: float,
    beta: float,
    augment_percent: float,
    max_reward: float,
    min_reward: float,
    py_rng: random.Random,
    np_rng: np.random.RandomState,
) -> Augmentation:
    """OSRL's `augmentation()` with our two fallbacks for small data (module docstring)."""
    reward = np.array([r[0] for r in traj.returns], dtype=np.float64)
    cost = np.array([c[0] for c in traj.cost_returns], dtype=np.float64)
    info = {"filtered": True, "deg": int(deg), "pareto_points": 0}
    kept = grid_filter(cost, reward, py_rng)
    if len(kept) < 2:
        kept, info["filtered"] = list(range(len(cost))), False
    kept_arr = np.asarray(kept, dtype=np.int64)
    cost_f, reward_f = cost[kept_arr], reward[kept_arr]
    front = pareto_indices(cost_f, reward_f)
    info["pareto_points"] = int(front.size)
    distinct = np.unique(cost_f[front]).size
    if distinct < deg + 1:
        info["deg"] = max(distinct - 1, 0)
    frontier = np.poly1d(np.polyfit(cost_f[front], reward_f[front], deg=info["deg"]))
    sample_num = int(augment_percent * cost_f.shape[0])
    info["relabelled"] = sample_num
    if sample_num == 0:
        return Augmentation([], np.zeros((0, 2)), info)
    cost_range = np.linspace(np.min(cost_f), np.max(cost_f), sample_num)
    on_front = frontier(cost_range)
    sampled_reward = np_rng.uniform(
        low=on_front + min_reward * np.ones(on_front.shape),
        high=max_reward * np.ones(on_front.shape),
        size=sample_num,
    )
    original = np.hstack([cost_f[:, None], reward_f[:, None]])
    sampled = np.hstack([cost_range[:, None], sampled_reward[:, None]])
    nearest = nearest_points(original, sampled, max_rew_decrease, beta, np_rng)
    # OSRL zips the index-grouped nearest list with the targets in cost order; kept as is
    source = [int(kept_arr[i]) for i, _ in zip(nearest, sampled)]
    return Augmentation(source, sampled[: len(source)], info)


def relabel(base: np.ndarray, target: float) -> np.ndarray:
    """Shift a to-go array so that it starts at `target` (numpy arithmetic as OSRL's)."""
    shifted = base.copy()
    shifted += target - shifted[0]
    return shifted


# ----------------------------------------------------------------------------- batches


class SequenceSource:
    """Windows of `seq_len` steps from original and relabelled trajectories (CDT batches)."""

    def __init__(
        self,
        dataset: Dataset,
        traj: Trajectories,
        aug: Augmentation,
        config: Config,
    ):
        self.seq_len = config.seq_len
        self.reward_scale = config.reward_scale
        self.cost_scale = config.cost_scale
        self._obs = dataset.observations
        self._actions = dataset.actions
        self._costs = dataset.costs.astype(np.float32, copy=False)
        n_orig = len(traj.returns)
        source = np.concatenate([np.arange(n_orig), np.asarray(aug.source, dtype=np.int64)])
        returns = list(traj.returns) + [
            relabel(traj.returns[s], t) for s, t in zip(aug.source, aug.targets[:, 1])
        ]
        cost_returns = list(traj.cost_returns) + [
            relabel(traj.cost_returns[s], t) for s, t in zip(aug.source, aug.targets[:, 0])
        ]
        self.starts = traj.starts[source]
        self.lengths = traj.lengths[source]
        self._to_go_offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self._returns = np.concatenate(returns)
        self._cost_returns = np.concatenate(cost_returns)
        self.initial_returns = np.array([r[0] for r in returns], dtype=np.float32)
        self.initial_costs = np.array([c[0] for c in cost_returns], dtype=np.float32)
        self.probabilities = self._sample_probabilities(config)

    def __len__(self) -> int:
        return len(self.lengths)

    def _sample_probabilities(self, config: Config) -> np.ndarray | None:
        if not config.cost_sample:
            return None
        if config.linear:
            weights = np.array([config.cost_sample_max - c for c in self.initial_costs])
        else:
            weights = np.array([1 / (c + 10) for c in self.initial_costs])
        weights[weights < 0] = 0
        if not np.sum(weights) > 0:
            raise ConfigError(
                f"cdt: every trajectory costs >= cost_sample_max={config.cost_sample_max:g}, "
                "so cost-weighted sampling has nothing to draw; raise cost_sample_max above the "
                f"dataset's lowest trajectory cost ({self.initial_costs.min():g}) or set "
                "cost_sample=false"
            )
        return weights / np.sum(weights)

    def windows(self, traj_index: np.ndarray, start: np.ndarray) -> dict[str, np.ndarray]:
        """The batch for given (sequence trajectory, start step) pairs, as OSRL's
        `SequenceDataset.__prepare_sample` builds each item."""
        steps = start[:, None] + np.arange(self.seq_len)[None, :]
        length = self.lengths[traj_index][:, None]
        valid = steps < length
        clipped = np.minimum(steps, length - 1)
        rows = self.starts[traj_index][:, None] + clipped
        to_go = self._to_go_offsets[traj_index][:, None] + clipped
        zero = np.zeros((), dtype=np.float32)
        return {
            "states": np.where(valid[..., None], self._obs[rows], zero),
            "actions": np.where(valid[..., None], self._actions[rows], zero),
            "returns": np.where(valid, self._returns[to_go] * self.reward_scale, zero),
            "costs_return": np.where(valid, self._cost_returns[to_go] * self.cost_scale, zero),
            "time_steps": steps.astype(np.int64),
            "mask": valid.astype(np.float32),
            "episode_cost": self.initial_costs[traj_index].astype(np.float64) * self.cost_scale,
            "costs": np.where(valid, self._costs[rows], zero),
        }

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, np.ndarray]:
        traj_index = rng.choice(len(self), size=batch_size, p=self.probabilities)
        start = rng.integers(0, self.lengths[traj_index])
        return self.windows(traj_index, start)


# ----------------------------------------------------------------------------- evaluation


class CDTPolicy:
    """Per-episode return/cost-to-go conditioning over a batch of episodes."""

    def __init__(
        self,
        model: OSRLCDT,
        device: torch.device,
        num_envs: int,
        target_return: float,
        target_cost: float,
        config: Config,
        clipped: tuple[str, ...] = (),
    ):
        self.target_return, self.target_cost, self.clipped = target_return, target_cost, clipped
        self._model, self._device, self._n = model, device, num_envs
        self._seq_len = config.seq_len
        self._reward_scale, self._cost_scale = config.reward_scale, config.cost_scale
        self._max_t = model.episode_len + model.seq_len - 1  # last row of the time-step table
        self._rtg0 = np.float32(target_return * config.reward_scale)
        self._ctg0 = np.float32(target_cost * config.cost_scale)
        n, length = num_envs, config.seq_len
        self._states = np.zeros((n, length, model.state_dim), dtype=np.float32)
        self._actions = np.zeros((n, length, model.action_dim), dtype=np.float32)
        self._returns = np.zeros((n, length), dtype=np.float32)
        self._costs = np.zeros((n, length), dtype=np.float32)
        self._times = np.zeros((n, length), dtype=np.int64)
        self._filled = np.zeros(n, dtype=np.int64)  # tokens in each env's window
        self._t = np.zeros(n, dtype=np.int64)  # step within the episode
        self._rtg = np.full(n, self._rtg0, dtype=np.float32)
        self._ctg = np.full(n, self._ctg0, dtype=np.float32)
        self._pending = np.zeros(n, dtype=bool)  # act() ran since the last observe()

    def reset(self, obs: np.ndarray, mask: np.ndarray) -> None:
        rows = np.flatnonzero(np.asarray(mask, dtype=bool))
        for array in (self._states, self._actions, self._returns, self._costs, self._times):
            array[rows] = 0
        self._filled[rows] = 0
        self._t[rows] = 0
        self._rtg[rows] = self._rtg0
        self._ctg[rows] = self._ctg0
        self._pending[rows] = False

    def act(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        if obs.shape[0] != self._n:
            raise ValueError(f"CDT policy built for {self._n} envs got {obs.shape[0]} obs")
        # a new token per env, unless act() is repeated for the same step (then overwrite it)
        new = ~self._pending
        full = new & (self._filled == self._seq_len)
        for array in (self._states, self._actions, self._returns, self._costs, self._times):
            array[full] = np.roll(array[full], -1, axis=1)
        self._filled[new & ~full] += 1
        pos = self._filled - 1
        rows = np.arange(self._n)
        self._states[rows, pos] = obs
        self._actions[rows, pos] = 0.0  # the current action is predicted, its token is dummy
        self._returns[rows, pos] = self._rtg
        self._costs[rows, pos] = self._ctg
        self._times[rows, pos] = np.minimum(self._t, self._max_t)
        self._pending[:] = True
        actions = np.zeros((self._n, self._model.action_dim), dtype=np.float32)
        for filled in np.unique(self._filled):
            group = np.flatnonzero(self._filled == filled)
            actions[group] = self._forward(group, int(filled))
        self._actions[rows, pos] = actions
        return actions

    def _forward(self, group: np.ndarray, length: int) -> np.ndarray:
        def tensor(array, dtype=torch.float32):
            return torch.as_tensor(array[group, :length], dtype=dtype, device=self._device)

        with eval_mode(self._model):
            preds, _, _ = self._model(
                tensor(self._states),
                tensor(self._actions),
                tensor(self._returns),
                tensor(self._costs),
                tensor(self._times, torch.long),
                None,
                torch.full((len(group),), float(self._ctg0), device=self._device),
            )
            if self._model.stochastic:
                preds = preds.mean
            preds = preds.clamp(-MAX_ACTION, MAX_ACTION)
        return preds[:, -1].cpu().numpy()

    def observe(self, reward: np.ndarray, cost: np.ndarray, done: np.ndarray) -> None:
        self._rtg = (self._rtg - np.asarray(reward) * self._reward_scale).astype(np.float32)
        self._ctg = (self._ctg - np.asarray(cost) * self._cost_scale).astype(np.float32)
        self._t += 1
        self._pending[:] = False


# ----------------------------------------------------------------------------- the adapter


class CDT(OSRLAdapter):
    """OSRL's CDT model and trainer; one model per (task, seed) serves every cost limit."""

    name = "cdt"
    cost_conditioned = True

    def __init__(self, config: Config, ctx: TrainContext):
        self.config = config
        self.device = ctx.device
        for limit in (ctx.cost_limit, *ctx.cost_limits):
            check_cost_limit(limit, self.name)
        _check_config(config)
        dataset = ctx.dataset
        self.episode_len = episode_len(config.episode_len, ctx.task)
        traj = trajectories(dataset)
        if traj.lengths.max() > self.episode_len:
            raise ConfigError(
                f"cdt: the {dataset.task} dataset has a trajectory of {traj.lengths.max()} steps, "
                f"longer than episode_len={self.episode_len}; set episode_len to at least that"
            )
        self._original_returns = np.array([r[0] for r in traj.returns], dtype=np.float64)
        self._original_costs = np.array([c[0] for c in traj.cost_returns], dtype=np.float64)
        if config.augment_percent > 0:
            aug = pareto_augmentation(
                traj,
                config.deg,
                config.max_rew_decrease,
                config.beta,
                config.augment_percent,
                config.max_reward,
                config.min_reward,
                random.Random(ctx.seed),
                np.random.RandomState(ctx.seed % 2**32),
            )
        else:
            aug = Augmentation([], np.zeros((0, 2)), {"relabelled": 0})
        self.augmentation_info = aug.info
        self._source = SequenceSource(dataset, traj, aug, config)
        self._return_range = (
            float(self._source.initial_returns.min()),
            float(
                max(self._source.initial_returns.max(), config.max_reward)
                if aug.source
                else self._source.initial_returns.max()
            ),
        )
        self._cost_range = (
            float(self._source.initial_costs.min()),
            float(self._source.initial_costs.max()),
        )
        self.model = OSRLCDT(
            state_dim=dataset.observations.shape[1],
            action_dim=dataset.actions.shape[1],
            max_action=MAX_ACTION,
            embedding_dim=config.embedding_dim,
            seq_len=config.seq_len,
            episode_len=self.episode_len,
            num_layers=config.num_layers,
            num_heads=config.num_heads,
            attention_dropout=config.attention_dropout,
            residual_dropout=config.residual_dropout,
            embedding_dropout=config.embedding_dropout,
            time_emb=config.time_emb,
            use_rew=config.use_rew,
            use_cost=config.use_cost,
            cost_transform=config.cost_transform,
            add_cost_feat=config.add_cost_feat,
            mul_cost_feat=config.mul_cost_feat,
            cat_cost_feat=config.cat_cost_feat,
            action_head_layers=config.action_head_layers,
            cost_prefix=config.cost_prefix,
            stochastic=config.stochastic,
            init_temperature=config.init_temperature,
            target_entropy=-dataset.actions.shape[1],
        ).to(ctx.device)
        self.logger = RecordingLogger()
        self.trainer = CDTTrainer(
            self.model,
            None,  # the env is only used by CDTTrainer.evaluate, which the suite replaces
            logger=self.logger,
            learning_rate=config.learning_rate,
            weight_decay=config.weight_decay,
            betas=tuple(config.betas),
            clip_grad=config.clip_grad if config.clip_grad > 0 else None,
            lr_warmup_steps=config.lr_warmup_steps,
            reward_scale=config.reward_scale,
            cost_scale=config.cost_scale,
            loss_cost_weight=config.loss_cost_weight,
            loss_state_weight=config.loss_state_weight,
            cost_reverse=False,
            no_entropy=config.no_entropy,
            device=str(ctx.device),
        )
        self.rng = TorchRNGStream(ctx.device)
        self.stages = (Stage("train", config.steps, config.batch_size),)

    def update(self, stage: str, batch: Batch) -> dict[str, float]:
        self._check_stage(stage)
        # the runner hands float32; OSRL's DataLoader gives a float64 mask and episode cost
        return self._train_step(
            batch["states"],
            batch["actions"],
            batch["returns"],
            batch["costs_return"],
            batch["time_steps"].long(),
            batch["mask"].to(torch.float64),
            batch["episode_cost"].to(torch.float64),
            batch["costs"],
        )

    def targets(self, cost_limit: float) -> tuple[float, float, tuple[str, ...]]:
        """(target return, target cost, names of the clipped ones) for a cost limit."""
        kappa = check_cost_limit(cost_limit, self.name)
        target_return = self._target_return(kappa)
        clipped = []
        lo, hi = self._return_range
        if not lo <= target_return <= hi:
            clipped.append(f"return {target_return:g} -> [{lo:g}, {hi:g}]")
            target_return = float(np.clip(target_return, lo, hi))
        target_cost = kappa
        lo, hi = self._cost_range
        if not lo <= target_cost <= hi:
            clipped.append(f"cost {target_cost:g} -> [{lo:g}, {hi:g}]")
            target_cost = float(np.clip(target_cost, lo, hi))
        return target_return, target_cost, tuple(clipped)

    def _target_return(self, kappa: float) -> float:
        pairs = sorted((float(c), float(r)) for r, c in self.config.target_returns)
        if pairs:
            for cost, ret in pairs:
                if cost == kappa:
                    return ret
            costs, rets = zip(*pairs)
            return float(np.interp(kappa, costs, rets))
        safe = self._original_costs <= kappa
        if not safe.any():  # nothing that cheap: the cheapest trajectories' best return
            safe = self._original_costs == self._original_costs.min()
        return float(self._original_returns[safe].max())

    def policy(self, cost_limit: float, num_envs: int) -> CDTPolicy:
        target_return, target_cost, clipped = self.targets(cost_limit)
        if clipped:
            warnings.warn(
                f"cdt: evaluation target outside the training data at cost limit "
                f"{cost_limit:g}, clipped: {'; '.join(clipped)}",
                CDTTargetWarning,
                stacklevel=2,
            )
        return CDTPolicy(
            self.model, self.device, num_envs, target_return, target_cost, self.config, clipped
        )

    def _optimizers(self) -> dict[str, object]:
        out = {"optim": self.trainer.optim, "scheduler": self.trainer.scheduler}
        if self.model.stochastic:
            out["log_temperature_optimizer"] = self.trainer.log_temperature_optimizer
        return out

    def _tensors(self):
        return {"log_temperature": self.model.log_temperature} if self.model.stochastic else {}


def _check_config(config: Config) -> None:
    if config.seq_len < 1:
        raise ConfigError(f"cdt: seq_len must be >= 1, got {config.seq_len}")
    if config.embedding_dim % config.num_heads:
        raise ConfigError(
            f"cdt: embedding_dim ({config.embedding_dim}) must be a multiple of num_heads "
            f"({config.num_heads})"
        )
    if config.deg < 0 or config.augment_percent < 0:
        raise ConfigError("cdt: deg and augment_percent must be >= 0")
    for pair in config.target_returns:
        if len(pair) != 2:
            raise ConfigError(f"cdt: target_returns holds (return, cost) pairs, got {pair!r}")
