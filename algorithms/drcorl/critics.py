"""DRCORL's critics: IQL pretraining and SARSA-style TD on the current policy.

Paper: Guo et al., "Don't Trade Off Safety: Diffusion Regularization for Constrained Offline
RL" (NeurIPS 2025). Follows the authors' `IQL_Critic` (`Agents/SRPO.py:666-871`,
`Agents/model.py:60-142`), see `reference/drcorl.md` §1.2 and §1.3 C4.4:
- twin Q MLPs on concat[a, s] with a Polyak target copy, and a state value V;
- phase B (IQL): V by expectile regression (tau=0.7) on min of the target twins,
  each Q_i by MSE onto x + gamma (1-d) V(s'), averaged over the twins;
- phase C (TD): the same V update, and each Q_i onto x + gamma (1-d) Q_targ,i(s', pi(s')).

Deviation: the cost targets are per sample by default. The authors' IQL update regresses the
cost critic onto the batch-mean cost through a (B,)-vs-(B,1) broadcast (drcorl.md §0.4, §1.2);
`batch_mean_bug=True` reproduces it exactly, for comparison.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def mlp(sizes: list[int], out_act: type[nn.Module] | None = None) -> nn.Sequential:
    """Linear layers with ReLU between them (and `out_act` after the last one, if given)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if out_act is not None:
        layers.append(out_act())
    return nn.Sequential(*layers)


class TwinQ(nn.Module):
    """Two independent Q(s, a) MLPs; `forward` is their minimum, `both` the pair."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, layers: int):
        super().__init__()
        sizes = [act_dim + obs_dim] + [hidden] * layers + [1]
        self.q1 = mlp(sizes)
        self.q2 = mlp(sizes)

    def both(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([act, obs], dim=-1)
        return self.q1(x), self.q2(x)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return torch.minimum(*self.both(obs, act))

    def mean(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Mean of the twins: what the policy's guidance uses (`Agents/SRPO.py:153-154`)."""
        q1, q2 = self.both(obs, act)
        return 0.5 * (q1 + q2)


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """mean(|tau - 1[u<0]| u^2): IQL's asymmetric L2 loss."""
    weight = torch.where(diff > 0, expectile, 1.0 - expectile)
    return (weight * diff**2).mean()


class Critic(nn.Module):
    """One IQL critic (reward or cost): twin Q, its Polyak target, and V."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, layers: int):
        super().__init__()
        self.q = TwinQ(obs_dim, act_dim, hidden, layers)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.v = mlp([obs_dim] + [hidden] * layers + [1])

    @torch.no_grad()
    def polyak(self, tau: float) -> None:
        for p, tp in zip(self.q.parameters(), self.q_target.parameters()):
            tp.mul_(1.0 - tau).add_(p, alpha=tau)


def _step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _v_update(
    critic: Critic,
    v_opt: torch.optim.Optimizer,
    obs: torch.Tensor,
    act: torch.Tensor,
    expectile: float,
) -> torch.Tensor:
    with torch.no_grad():
        target_q = critic.q_target(obs, act)
    v_loss = expectile_loss(target_q - critic.v(obs), expectile)
    _step(v_opt, v_loss)
    return v_loss.detach()


def iql_update(
    critic: Critic,
    q_opt: torch.optim.Optimizer,
    v_opt: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    signal: torch.Tensor,
    gamma: float,
    expectile: float,
    polyak: float,
    batch_mean_bug: bool = False,
) -> dict[str, torch.Tensor]:
    """One IQL step of `critic` on dataset actions; `signal` is the reward or cost, shape (B,).

    `batch_mean_bug` reproduces the authors' cost target: a (B,) signal added to a (B,1)
    bootstrap broadcasts to (B,B), so each Q(s_i,a_i) regresses onto mean_j x_j + ...
    """
    obs, act, next_obs = batch["obs"], batch["actions"], batch["next_obs"]
    not_done = 1.0 - batch["done"].reshape(-1, 1)
    with torch.no_grad():
        # V(s') before this step's V update, as the authors compute it.
        next_v = critic.v(next_obs)
    v_loss = _v_update(critic, v_opt, obs, act, expectile)
    if batch_mean_bug:
        target = signal.reshape(1, -1) + gamma * not_done * next_v  # (B, B)
    else:
        target = signal.reshape(-1, 1) + gamma * not_done * next_v  # (B, 1)
    q1, q2 = critic.q.both(obs, act)
    # Written out rather than F.mse_loss so the (B,1)-vs-(B,B) broadcast is explicit.
    q_loss = 0.5 * (((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean())
    _step(q_opt, q_loss)
    critic.polyak(polyak)
    return {"q_loss": q_loss.detach(), "v_loss": v_loss}


def td_update(
    critic: Critic,
    q_opt: torch.optim.Optimizer,
    v_opt: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    signal: torch.Tensor,
    next_act: torch.Tensor,
    gamma: float,
    expectile: float,
    polyak: float,
) -> dict[str, torch.Tensor]:
    """One phase-C step: V as in IQL (unused by the target), each Q_i onto its own target twin
    at (s', pi(s')) -- a SARSA-style evaluation of the current policy (`Agents/SRPO.py:790-871`).
    """
    obs, act, next_obs = batch["obs"], batch["actions"], batch["next_obs"]
    not_done = 1.0 - batch["done"].reshape(-1, 1)
    v_loss = _v_update(critic, v_opt, obs, act, expectile)
    with torch.no_grad():
        tq1, tq2 = critic.q_target.both(next_obs, next_act)
        x = signal.reshape(-1, 1)
        y1, y2 = x + gamma * not_done * tq1, x + gamma * not_done * tq2
    q1, q2 = critic.q.both(obs, act)
    q_loss = 0.5 * (((q1 - y1) ** 2).mean() + ((q2 - y2) ** 2).mean())
    _step(q_opt, q_loss)
    critic.polyak(polyak)
    return {"q_loss": q_loss.detach(), "v_loss": v_loss}
