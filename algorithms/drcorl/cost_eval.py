"""An offline estimate of the current policy's episode cost, for DRCORL's switching rule.

Not in the authors' code: their switching signal is one online episode per iteration
(`reference/drcorl.md` §0.2, §1.3 C7); their unused `offline_evaluate_cost` reads
L (1-gamma) mean_s Qbar_c(s, pi(s)) off the IQL cost critic that also guides the policy.
That critic barely depends on pi (an upper-expectile, behaviour-data continuation, moved toward
pi by one TD step with Polyak 0.005 per iteration) and is read on states the cost step pushes
down, so the policy can lower the estimate without lowering its cost (issue 12).

This module is the suite's alternative (`cost_signal="policy_eval"`):
- a separate ensemble of cost critics Q_m(s, a) that evaluates the *current* policy: plain
  MSE (expectile 0.5) onto the SARSA-style target c + gamma (1-d) Qtarg_m(s', pi(s')), several
  TD steps per iteration, each member with its own Polyak target; it never guides the policy;
- the estimate L (1-gamma) mean_s Q_m(s, pi(s)) per member, over states of held-out
  trajectories that no training batch ever contains (`holdout_split`), combined across the
  ensemble as mean + k std (k = 0: the mean).
L (1-gamma) Q is the per-step cost rate of pi from the behaviour's states times the horizon:
a stationary approximation of the episode cost (exact for a constant rate).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from algorithms.drcorl.critics import mlp
from benchmark.data.dataset import Dataset


def holdout_split(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """(training trajectories, held-out trajectories): a `fraction` of whole trajectories,
    drawn from the seed alone; at least one is held out and one kept when fraction > 0."""
    n = dataset.num_episodes
    if fraction <= 0 or n < 2:
        return dataset, None
    count = min(max(1, int(round(fraction * n))), n - 1)
    rng = np.random.default_rng([int(seed), 31337])
    held = np.zeros(n, dtype=bool)
    held[rng.choice(n, size=count, replace=False)] = True
    return dataset.select_episodes(~held), dataset.select_episodes(held)


def estimate_states(
    dataset: Dataset, count: int, origin: str, seed: int, device: torch.device
) -> torch.Tensor:
    """A fixed set of `count` states of `dataset`: any transition (`dataset`) or first states
    of its trajectories (`initial`), drawn from the seed alone (never from training batches)."""
    pool = np.arange(len(dataset)) if origin == "dataset" else dataset.episode_starts
    picker = np.random.default_rng([int(seed), 20250])
    rows = picker.choice(pool, size=min(count, len(pool)), replace=False)
    return torch.as_tensor(dataset.observations[np.sort(rows)], dtype=torch.float32, device=device)


class CostEnsemble(nn.Module):
    """M independent Q_c(s, a) MLPs on concat[a, s] and their Polyak targets."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, layers: int, members: int):
        super().__init__()
        sizes = [act_dim + obs_dim] + [hidden] * layers + [1]
        self.members = nn.ModuleList(mlp(sizes) for _ in range(members))
        self.targets = copy.deepcopy(self.members).requires_grad_(False)

    @staticmethod
    def _stack(nets: nn.ModuleList, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        x = torch.cat([act, obs], dim=-1)
        return torch.stack([net(x).squeeze(-1) for net in nets])  # (M, B)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self._stack(self.members, obs, act)

    def target(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self._stack(self.targets, obs, act)

    @torch.no_grad()
    def polyak(self, tau: float) -> None:
        for p, tp in zip(self.members.parameters(), self.targets.parameters()):
            tp.mul_(1.0 - tau).add_(p, alpha=tau)


def policy_eval_step(
    ensemble: CostEnsemble,
    opt: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    next_act: torch.Tensor,
    gamma: float,
    polyak: float,
    max_cost: float,
) -> float:
    """One TD step of every member onto c + gamma (1-d) Qtarg_m(s', pi(s')) on dataset (s, a);
    returns the mean squared TD error. The members share the batch, not their parameters.

    Targets are clipped to [0, max_cost / (1-gamma)], the range any policy's discounted cost
    lies in when per-step costs lie in [0, max_cost]: bootstrapping on pi's actions can
    otherwise overshoot that bound (measured on ToyVelocity with full throttle: 1.3x)."""
    not_done = 1.0 - batch["done"].reshape(1, -1)
    with torch.no_grad():
        target = batch["costs"].reshape(1, -1) + gamma * not_done * ensemble.target(
            batch["next_obs"], next_act
        )
        target = target.clamp(0.0, max_cost / (1.0 - gamma))
    loss = ((ensemble(batch["obs"], batch["actions"]) - target) ** 2).mean(dim=1).sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    ensemble.polyak(polyak)
    return loss.item() / len(ensemble.members)


@torch.no_grad()
def episode_cost_estimates(q: torch.Tensor, horizon: int, gamma: float) -> np.ndarray:
    """Per-member episode-cost estimates L (1-gamma) mean_s Q_m from Q of shape (M, S)."""
    return (horizon * (1.0 - gamma) * q.mean(dim=1)).cpu().numpy().astype(np.float64)


def combine(estimates: np.ndarray, std_coef: float) -> tuple[float, float, float]:
    """(mean + k std, mean, std) of the members' estimates (std 0 for one member)."""
    mean = float(np.mean(estimates))
    std = float(np.std(estimates)) if len(estimates) > 1 else 0.0
    return mean + std_coef * std, mean, std
