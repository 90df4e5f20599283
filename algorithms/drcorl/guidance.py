"""Which way DRCORL's policy steps: the cost critic a cost step follows (`cost_guidance`),
and the flat-vector helpers of the "both" step's projection.

A cost critic here is a function (obs, actions) -> Q_c of shape (B,). The cost step descends
its action-gradient, the "both" step projects that gradient against the reward's, and the PID
Lagrangian reads its batch mean, so one option decides all three (issue 27: the switching rule
read the ensemble while the step followed the IQL critic, which does not see the policy).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from algorithms.drcorl.cost_eval import CostEnsemble
from algorithms.drcorl.critics import Critic

CostQ = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(obs, actions) -> the cost critic's Q_c(s, a), shape (B,)."""


def iql_cost_q(critic: Critic) -> CostQ:
    """The IQL cost critic's target twins, averaged (the authors' guidance)."""
    return critic.q_target.mean


def ensemble_cost_q(ensemble: CostEnsemble, std_coef: float) -> CostQ:
    """The policy-evaluation ensemble's targets: mean + std_coef x std over its members, per
    state-action (std_coef > 0: pessimistic where the members disagree)."""

    def q(obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        members = ensemble.target(obs, actions)  # (M, B)
        mean = members.mean(dim=0)
        if std_coef == 0 or len(members) < 2:
            return mean
        return mean + std_coef * members.std(dim=0, unbiased=False)

    return q


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def unflat(flat: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    out, i = [], 0
    for p in like:
        out.append(flat[i : i + p.numel()].view_as(p))
        i += p.numel()
    return out


def assign(params: list[torch.Tensor], values: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for p, v in zip(params, values):
            p.copy_(v)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0).item())
