"""DRCORL's policy and its score-regularised (SRPO) surrogate losses.

Paper: Guo et al., "Don't Trade Off Safety: Diffusion Regularization for Constrained Offline
RL" (NeurIPS 2025). Follows the authors' code, not the poster (`reference/drcorl.md` §1.3 C1-C2,
§4 #1): the policy is a deterministic tanh MLP (`Dirac_Policy`, `Agents/model.py:145-170`), and
the KL to the behaviour model enters through SRPO's surrogate (`Agents/SRPO.py:100-339`):

    reg(s) = w_t <eps_phi(alpha_t a + sigma_t z, t, s), a>,  a = pi(s),  w_t = sigma_t^2,
    t ~ U(0.02, 0.98), eps_phi frozen and in eval mode ("VDS" weighting, no "-z" baseline).

Descending reg pulls a towards high diffused behaviour density. The guidance g = grad_a Qbar
uses the MEAN of the two target twins, unnormalised (regq=0). Losses (batch means):
    bc: reg;  reward: reg - beta <g_r, a>;  cost: reg + beta <g_c, a>;
    lagrangian: reg - beta <g_r - lambda g_c, a>.

Deviation: none in the maths; noise comes from an explicit generator (exact resume).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from algorithms.drcorl.critics import TwinQ, mlp
from algorithms.drcorl.diffusion import VPSDE, ScoreNet

QFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(obs, actions) -> Q(s, a) of shape (B,)."""

EXTRACT_T_MIN = 0.02
"""Extraction time range t ~ U(0.02, 0.98) (`Agents/SRPO.py:125`)."""
EXTRACT_T_MAX = 0.98


class DiracPolicy(nn.Module):
    """Deterministic policy a = tanh(MLP(s)): the authors' `Dirac_Policy`."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, layers: int):
        super().__init__()
        self.net = mlp([obs_dim] + [hidden] * layers + [act_dim], out_act=nn.Tanh)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


def numpy_actor(policy: DiracPolicy):
    """A numpy copy of the policy's forward pass for CPU evaluation: the same maths, without
    torch's per-call overhead (~3x faster for single-state actions). A snapshot: later
    training does not change it."""
    layers = [m for m in policy.net if isinstance(m, nn.Linear)]
    weights = [
        (m.weight.detach().cpu().numpy().T.copy(), m.bias.detach().cpu().numpy().copy())
        for m in layers
    ]

    def act(obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float32)
        for i, (w, b) in enumerate(weights):
            x = x @ w + b
            x = np.maximum(x, 0.0) if i < len(weights) - 1 else np.tanh(x)
        return x

    return act


def score_regulariser(
    actions: torch.Tensor,
    obs: torch.Tensor,
    score_net: ScoreNet,
    sde: VPSDE,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Per-sample w_t <eps_hat, a> (shape (B,)); its gradient flows through `actions` only."""
    kw = {"generator": generator, "device": actions.device, "dtype": actions.dtype}
    t = torch.rand((actions.shape[0], 1), **kw) * (EXTRACT_T_MAX - EXTRACT_T_MIN) + EXTRACT_T_MIN
    z = torch.randn(actions.shape, **kw)
    sigma = sde.sigma(t)
    with torch.no_grad():
        eps = score_net(sde.alpha(t) * actions.detach() + sigma * z, t, obs)
    return (sigma**2 * eps * actions).sum(dim=-1)


def q_guidance(q: TwinQ | QFunction, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """grad_a of Q at the policy's actions, detached (shape (B, act_dim)): the twin mean for
    a `TwinQ`, else `q(obs, a)` itself (a cost critic of guidance.py)."""
    value = q.mean if isinstance(q, TwinQ) else q
    with torch.enable_grad():
        a = actions.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(value(obs, a).sum(), a)
    return grad.detach()


def surrogate_loss(
    actions: torch.Tensor,
    obs: torch.Tensor,
    score_net: ScoreNet,
    sde: VPSDE,
    generator: torch.Generator | None,
    guidance: torch.Tensor | None = None,
    beta: float = 0.0,
) -> torch.Tensor:
    """mean(reg - beta <guidance, a>); `guidance` is g_r, -g_c or g_r - lambda g_c (or None: bc)."""
    loss = score_regulariser(actions, obs, score_net, sde, generator)
    if guidance is not None and beta != 0.0:
        loss = loss - beta * (guidance * actions).sum(dim=-1)
    return loss.mean()
