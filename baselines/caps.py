"""CAPS: Constraint-Adaptive Policy Switching, with the IQL learner (the paper's main variant).

Paper: Chemingui, Deshwal, Hoang, Doppa, "Constraint-Adaptive Policy Switching for Offline
Safe Reinforcement Learning", AAAI 2025. Code followed (read for understanding, nothing copied):
`yassineCh/CAPS` @ f578c22, `osrl/algorthims/capsiql.py` and `examples/configs/capsiql_configs.py`,
as summarised in `reference/baselines.md` §3.1. Pure torch; no OSRL code.

What it does. IQL critics for the reward (twin Q_r, V_r) and for the *negated* cost (twin Q_c,
V_c, trained on -c so that the twin minimum is the pessimistic, i.e. largest, cost), expectile
0.7 for both. One actor with a shared 2x512 ReLU trunk and K tanh-mean heads; head k is fitted by
advantage-weighted regression: head 0 with exp(beta*A_r), head K-1 with exp(beta_c*A_c), a middle
head k with exp(beta*A_r) + k/((K-1)/2) * exp(beta_c*A_c), every weight clipped at 100. One model
serves every cost limit: at test time, each step, the remaining budget b (limit minus cost so far)
becomes a per-step scale b~ = max(b, 0) * (1 - gamma^(T-t)) / (1 - gamma) / (T-t); the heads
whose estimated cost -Q_c(s, a_k) is below b~ are kept and the one with the largest Q_r(s, a_k)
acts; when none fits, the head with the lowest estimated cost acts (`CAPSPolicy`).

Deviations from the authors' code, and why:
- Per-head log-stds. The authors' `MHGaussianPolicy` keeps its per-head log-stds in a plain Python
  list, so they are not registered parameters: they stay at 0 (std 1), are never trained and are
  not saved. We make that behaviour explicit instead of "fixing" it: each head is a Gaussian with
  a constant unit std, so its negative log-likelihood is 0.5*||a - mu_k||^2 + const and the actor
  loss is an advantage-weighted squared error. This is exactly what their runs optimised (their
  numbers come from it), evaluation uses the head means either way, and a learned state-free std
  would only rescale each dimension's step size, not move the optimum of the mean.
- The K heads are one Linear(hidden, K*act_dim) layer reshaped to (K, act_dim): the same maths
  and the same initial distribution as K separate Linear layers, one matmul instead of K.
- The test-time switch is batched over the evaluator's envs; the authors roll out one env.
- The authors' unused single-head `rollout(head)` (which calls `act` with a misspelled keyword)
  has no counterpart: only the switching policy exists here.
- The actor's cosine learning-rate schedule keeps the authors' period (1e6 steps while training
  runs 1e5), i.e. almost no decay; `actor_lr_decay_steps` exposes it.

As upstream, by default, where the suite once differed (issue 13): `done` = terminal OR timeout,
as in the OSRL `TransitionDataset` the authors train on, so no critic bootstraps through a
time-limit truncation. `bootstrap_timeouts=True` is the labelled alternative (done = terminal).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from benchmark.data.dataset import Dataset
from benchmark.interface import (
    Batch,
    Stage,
    TrainContext,
    TransitionSource,
    check_stage,
    transition_columns,
)
from benchmark.validation import Fraction, NonNegativeInt, PositiveFloat, PositiveInt


@dataclass
class Config:
    steps: PositiveInt = 100_000
    """Gradient steps (the authors' `update_steps`; 200k only for MetaDrive, not in our table)."""
    batch_size: PositiveInt = 512
    """Transitions per gradient step."""
    num_heads: PositiveInt = 2
    """K, the number of actor heads (the paper's main results use 2)."""
    hidden_dim: PositiveInt = 512
    """Width of the two hidden layers of every network (actor trunk, twin Qs, values)."""
    actor_lr: PositiveFloat = 3e-4
    """Adam learning rate of the multi-head actor."""
    q_lr: PositiveFloat = 3e-4
    """Adam learning rate of the twin Q networks (reward and negated cost)."""
    value_lr: PositiveFloat = 3e-4
    """Adam learning rate of the value networks V_r and V_c."""
    actor_lr_decay_steps: PositiveInt = 1_000_000
    """Period of the actor's cosine learning-rate schedule (the authors' `max_steps`, 1e6)."""
    iql_tau: Fraction = 0.7
    """Expectile of the reward value loss."""
    iql_tau_cost: Fraction = 0.7
    """Expectile of the negated-cost value loss."""
    beta: float = 3.0
    """Inverse temperature of the reward advantage weights."""
    beta_cost: float = 3.0
    """Inverse temperature of the (negated-)cost advantage weights."""
    exp_adv_max: PositiveFloat = 100.0
    """Clip of every exponentiated advantage weight."""
    tau: Fraction = 0.005
    """Polyak rate of the target Q networks."""
    gamma: Fraction = 0.99
    """Discount of both critics and of the test-time per-step budget."""
    reward_scale: PositiveFloat = 0.1
    """Rewards are multiplied by this before training (OSRL's convention)."""
    cost_scale: PositiveFloat = 1.0
    """Costs (and the test-time budget) are multiplied by this before use."""
    episode_len: NonNegativeInt = 0
    """T in the per-step budget formula; 0 means the task's horizon (what the authors use)."""
    bootstrap_timeouts: bool = False
    """How a time-limit truncation enters the TD targets. False (the authors' code, which trains
    on OSRL's `TransitionDataset`): done = terminal OR timeout, so neither critic bootstraps past
    the last step of a truncated episode. True: done = terminal only, i.e. the critics bootstrap
    through truncations (the textbook treatment, and the suite's behaviour before issue 13); on
    tasks whose episodes all end by timeout it raises the cost critic's values."""


def td_done(dataset: Dataset, bootstrap_timeouts: bool) -> np.ndarray:
    """The `done` flag of the TD targets (float32): terminals only when bootstrapping through
    time-limit truncations, else terminals OR timeouts (OSRL's `TransitionDataset`)."""
    if bootstrap_timeouts:
        return dataset.terminals.astype(np.float32)
    return np.logical_or(dataset.terminals, dataset.timeouts).astype(np.float32)


def mlp(sizes: list[int], out_act: nn.Module | None = None) -> nn.Sequential:
    """Linear layers with ReLU between them (and `out_act` after the last, if given)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if out_act is not None:
        layers.append(out_act)
    return nn.Sequential(*layers)


class TwinQ(nn.Module):
    """Two Q(s, a) networks; `forward` is their minimum, `both` returns each."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int):
        super().__init__()
        self.q1 = mlp([obs_dim + act_dim, hidden, hidden, 1])
        self.q2 = mlp([obs_dim + act_dim, hidden, hidden, 1])

    def both(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, act], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return torch.minimum(*self.both(obs, act))


class MultiHeadActor(nn.Module):
    """Shared ReLU trunk and K tanh-mean heads: obs (B, obs) -> head means (B, K, act)."""

    def __init__(self, obs_dim: int, act_dim: int, num_heads: int, hidden: int):
        super().__init__()
        self.num_heads = num_heads
        self.act_dim = act_dim
        self.trunk = nn.Sequential(mlp([obs_dim, hidden, hidden]), nn.ReLU())
        self.heads = nn.Linear(hidden, num_heads * act_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        means = torch.tanh(self.heads(self.trunk(obs)))
        return means.view(*obs.shape[:-1], self.num_heads, self.act_dim)


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """IQL's asymmetric squared loss: weight `expectile` above zero, 1 - expectile below."""
    weight = torch.abs(expectile - (diff < 0).float())
    return (weight * diff.pow(2)).mean()


def head_weights(
    exp_adv_r: torch.Tensor, exp_adv_c: torch.Tensor, num_heads: int
) -> list[torch.Tensor]:
    """Per-head sample weights: reward advantage for head 0, cost advantage for the last head,
    a mixture rising towards the cost side for the heads between (the authors' rule)."""
    weights = []
    for k in range(num_heads):
        if k == 0:
            weights.append(exp_adv_r)
        elif k == num_heads - 1:
            weights.append(exp_adv_c)
        else:
            weights.append(exp_adv_r + (k / ((num_heads - 1) / 2)) * exp_adv_c)
    return weights


def per_step_budget(
    remaining: np.ndarray, steps_done: np.ndarray, horizon: int, gamma: float
) -> np.ndarray:
    """Remaining episode budget -> the discounted budget a Q-value may spend from this step:
    max(b, 0) * (1 - gamma^(T-t)) / (1 - gamma) / (T-t)."""
    left = np.maximum(horizon - steps_done, 1).astype(np.float64)
    if gamma == 1.0:
        discount_sum = left
    else:
        discount_sum = (1.0 - gamma**left) / (1.0 - gamma)
    return np.maximum(remaining, 0.0) * discount_sum / left


def switch_heads(q_r: torch.Tensor, est_cost: torch.Tensor, budget: torch.Tensor) -> torch.Tensor:
    """The CAPS switch. q_r, est_cost: (B, K); budget: (B,). Among heads with est_cost < budget
    take the largest q_r; where no head fits, the head with the smallest est_cost."""
    feasible = est_cost < budget[:, None]
    best_feasible = torch.where(feasible, q_r, torch.full_like(q_r, -math.inf)).argmax(dim=1)
    safest = est_cost.argmin(dim=1)
    return torch.where(feasible.any(dim=1), best_feasible, safest)


class CAPSPolicy:
    """Batched test-time switching between the heads, one remaining budget per env."""

    def __init__(
        self,
        actor: nn.Module,
        reward_q: nn.Module,
        neg_cost_q: nn.Module,
        cost_limit: float,
        num_envs: int,
        horizon: int,
        gamma: float,
        cost_scale: float,
        device: torch.device,
    ):
        self.actor, self.reward_q, self.neg_cost_q = actor, reward_q, neg_cost_q
        self.cost_limit = float(cost_limit) * cost_scale
        self.horizon, self.gamma, self.cost_scale = horizon, gamma, cost_scale
        self.device = device
        self.remaining = np.full(num_envs, self.cost_limit)
        self.steps_done = np.zeros(num_envs, dtype=np.int64)
        self.last_heads = np.zeros(num_envs, dtype=np.int64)
        """The head each env used at the last `act` (for tests and diagnostics)."""

    def reset(self, obs: np.ndarray, mask: np.ndarray) -> None:
        self.remaining[mask] = self.cost_limit
        self.steps_done[mask] = 0

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        n = x.shape[0]
        actions = self.actor(x)  # (n, K, act)
        k = actions.shape[1]
        flat_obs = x.repeat_interleave(k, dim=0)
        flat_act = actions.reshape(n * k, -1)
        q_r = self.reward_q(flat_obs, flat_act).view(n, k)
        est_cost = -self.neg_cost_q(flat_obs, flat_act).view(n, k)
        budget = per_step_budget(self.remaining, self.steps_done, self.horizon, self.gamma)
        heads = switch_heads(q_r, est_cost, torch.as_tensor(budget, dtype=q_r.dtype).to(q_r))
        self.last_heads = heads.cpu().numpy()
        return actions[torch.arange(n, device=actions.device), heads].cpu().numpy()

    def observe(self, reward: np.ndarray, cost: np.ndarray, done: np.ndarray) -> None:
        self.remaining = self.remaining - np.asarray(cost, dtype=np.float64) * self.cost_scale
        self.steps_done = self.steps_done + 1


class CAPS:
    """CAPS(IQL): multi-head advantage-weighted actor + reward and negated-cost IQL critics."""

    cost_conditioned = True

    def __init__(self, config: Config, ctx: TrainContext):
        self.config = config
        self.ctx = ctx
        self.device = ctx.device
        obs_dim = ctx.dataset.observations.shape[1]
        act_dim = ctx.dataset.actions.shape[1]
        h = config.hidden_dim
        self.horizon = config.episode_len or ctx.task.horizon
        self.stages = (Stage("train", config.steps, config.batch_size),)

        self.actor = MultiHeadActor(obs_dim, act_dim, config.num_heads, h).to(self.device)
        self.reward_q = TwinQ(obs_dim, act_dim, h).to(self.device)
        self.cost_q = TwinQ(obs_dim, act_dim, h).to(self.device)
        self.reward_v = mlp([obs_dim, h, h, 1]).to(self.device)
        self.cost_v = mlp([obs_dim, h, h, 1]).to(self.device)
        self.reward_q_target = copy.deepcopy(self.reward_q).requires_grad_(False)
        self.cost_q_target = copy.deepcopy(self.cost_q).requires_grad_(False)

        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.actor_sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.actor_opt, T_max=config.actor_lr_decay_steps
        )
        self.reward_q_opt = torch.optim.Adam(self.reward_q.parameters(), lr=config.q_lr)
        self.cost_q_opt = torch.optim.Adam(self.cost_q.parameters(), lr=config.q_lr)
        self.reward_v_opt = torch.optim.Adam(self.reward_v.parameters(), lr=config.value_lr)
        self.cost_v_opt = torch.optim.Adam(self.cost_v.parameters(), lr=config.value_lr)
        self._source: TransitionSource | None = None

    # -- data ---------------------------------------------------------------------------------
    def batch_source(self, stage: str) -> TransitionSource:
        check_stage("caps", stage, self.stages)
        if self._source is None:
            columns = transition_columns(self.ctx.dataset)
            columns["done"] = td_done(self.ctx.dataset, self.config.bootstrap_timeouts)
            columns["rewards"] = (columns["rewards"] * self.config.reward_scale).astype(np.float32)
            columns["costs"] = (columns["costs"] * self.config.cost_scale).astype(np.float32)
            self._source = TransitionSource(columns)
        return self._source

    # -- one step -----------------------------------------------------------------------------
    def update(self, stage: str, batch: Batch) -> dict[str, float]:
        check_stage("caps", stage, self.stages)
        cfg = self.config
        obs, act, next_obs = batch["obs"], batch["actions"], batch["next_obs"]
        not_done = 1.0 - batch["done"]
        with torch.no_grad():
            # the authors take V(s') before the value step of this iteration
            next_v_r = self.reward_v(next_obs).squeeze(-1)
            next_v_c = self.cost_v(next_obs).squeeze(-1)

        adv_r, v_r_loss = _value_step(
            self.reward_v, self.reward_v_opt, self.reward_q_target, obs, act, cfg.iql_tau
        )
        adv_c, v_c_loss = _value_step(
            self.cost_v, self.cost_v_opt, self.cost_q_target, obs, act, cfg.iql_tau_cost
        )
        q_r_loss = _q_step(
            self.reward_q, self.reward_q_opt, obs, act,
            batch["rewards"] + cfg.gamma * not_done * next_v_r,
        )  # fmt: skip
        q_c_loss = _q_step(
            self.cost_q, self.cost_q_opt, obs, act,
            -batch["costs"] + cfg.gamma * not_done * next_v_c,
        )  # fmt: skip

        exp_r = torch.exp(cfg.beta * adv_r).clamp(max=cfg.exp_adv_max)
        exp_c = torch.exp(cfg.beta_cost * adv_c).clamp(max=cfg.exp_adv_max)
        means = self.actor(obs)  # (B, K, act)
        # unit-std Gaussian negative log-likelihood (see the header on the log-stds)
        nll = 0.5 * (means - act[:, None, :]).pow(2).sum(-1) + 0.5 * act.shape[-1] * math.log(
            2 * math.pi
        )
        weights = head_weights(exp_r, exp_c, cfg.num_heads)
        actor_loss = sum((w * nll[:, k]).mean() for k, w in enumerate(weights)) / cfg.num_heads
        self.actor_opt.zero_grad()
        actor_loss.backward()
        self.actor_opt.step()
        self.actor_sched.step()

        _polyak(self.reward_q_target, self.reward_q, cfg.tau)
        _polyak(self.cost_q_target, self.cost_q, cfg.tau)
        return {
            "loss/reward_value": v_r_loss,
            "loss/cost_value": v_c_loss,
            "loss/reward_q": q_r_loss,
            "loss/cost_q": q_c_loss,
            "loss/actor": float(actor_loss.item()),
            "adv/reward_mean": float(adv_r.mean().item()),
            "adv/cost_mean": float(adv_c.mean().item()),
        }

    # -- test time ----------------------------------------------------------------------------
    def policy(self, cost_limit: float, num_envs: int) -> CAPSPolicy:
        # the authors switch on the online (not target) critics
        return CAPSPolicy(
            self.actor,
            self.reward_q,
            self.cost_q,
            cost_limit=cost_limit,
            num_envs=num_envs,
            horizon=self.horizon,
            gamma=self.config.gamma,
            cost_scale=self.config.cost_scale,
            device=self.device,
        )

    # -- checkpoints --------------------------------------------------------------------------
    def _parts(self) -> dict:
        return {
            "actor": self.actor,
            "reward_q": self.reward_q,
            "cost_q": self.cost_q,
            "reward_v": self.reward_v,
            "cost_v": self.cost_v,
            "reward_q_target": self.reward_q_target,
            "cost_q_target": self.cost_q_target,
            "actor_opt": self.actor_opt,
            "actor_sched": self.actor_sched,
            "reward_q_opt": self.reward_q_opt,
            "cost_q_opt": self.cost_q_opt,
            "reward_v_opt": self.reward_v_opt,
            "cost_v_opt": self.cost_v_opt,
        }

    def state_dict(self) -> dict:
        state = {name: part.state_dict() for name, part in self._parts().items()}
        state["config"] = asdict(self.config)
        return state

    def load_state_dict(self, state: dict) -> None:
        for name, part in self._parts().items():
            part.load_state_dict(state[name])


def _value_step(value, optimiser, q_target, obs, act, expectile) -> tuple[torch.Tensor, float]:
    """One expectile-regression step of V towards min-twin target Q; returns the (pre-step,
    detached) advantage Q_target - V that weights the actor."""
    with torch.no_grad():
        target_q = q_target(obs, act)
    adv = target_q - value(obs).squeeze(-1)
    loss = expectile_loss(adv, expectile)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return adv.detach(), float(loss.item())


def _q_step(twin_q, optimiser, obs, act, target) -> float:
    q1, q2 = twin_q.both(obs, act)
    target = target.detach()
    loss = 0.5 * (nn.functional.mse_loss(q1, target) + nn.functional.mse_loss(q2, target))
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return float(loss.item())


@torch.no_grad()
def _polyak(target: nn.Module, source: nn.Module, tau: float) -> None:
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s, tau)
