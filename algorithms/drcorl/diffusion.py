"""DRCORL's diffusion behaviour model: VP-SDE, IDQL-style score network, loss and sampler.

Paper: Guo et al., "Don't Trade Off Safety: Diffusion Regularization for Constrained Offline
RL" (NeurIPS 2025). Follows the authors' code as described in
`reference/drcorl.md` §1.1 (`Agents/model.py:7-25,254-402`, `Agents/SRPO.py:422-457`,
`utils/utils.py:155-162`):
- VP-SDE with linear beta(t) from 0.1 to 20 on t in [0, 1];
- unweighted epsilon-prediction loss with t ~ U(1e-3, 1);
- `ScoreNet_IDQL`: fixed Gaussian Fourier time features (scale 30) -> MLP, concatenated with
  the noisy action and the state, then an MLPResNet (Dropout -> LayerNorm -> Linear x4 -> Mish
  -> Linear, residual), Mish, Linear.

Deviations:
- The per-block `residual` Linear that the authors allocate but never call is not allocated
  (same function, ~0.2M fewer parameters; AdamW's decay on unused weights had no effect).
- Dropout draws its mask from an explicit `torch.Generator` so a resumed run is bit-exact.
- The sampler is a deterministic DDIM / DPM-Solver-1 integrator of the probability-flow ODE.
  The authors' 1000-step sampler (`Agents/SRPO.py:459-518`) is never used by DRCORL; ours is
  only for checking the model (tests) and for the poster's timing contrast (bench).

Speed-ups of the behaviour step (`BehaviorLoss`, Config `behavior_speedup`): `eager` is the
plain `diffusion_loss`; `compile` (torch.compile), `bf16` (bfloat16 autocast of the network) and
`compile+bf16` draw the same noise in the same order first (`draw_noise`) so the compiled graph
holds no generator, then run `loss_from_noise`. Without compile or autocast that path is
bit-identical to `eager` (tests), so a variant differs from eager only by its arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

TRAIN_T_MIN = 1e-3
"""Lower end of the training time range t ~ U(1e-3, 1) (`Agents/SRPO.py:440`)."""
SPEEDUPS = ("eager", "compile", "bf16", "compile+bf16")
"""The behaviour-step variants `BehaviorLoss` runs (Config `behavior_speedup`)."""


@dataclass(frozen=True)
class VPSDE:
    """Variance-preserving SDE with linear beta(t) = beta_min + t (beta_max - beta_min)."""

    beta_min: float = 0.1
    beta_max: float = 20.0

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        """Mean coefficient alpha_t = exp(-t^2 (b1 - b0) / 4 - t b0 / 2)."""
        log_mean = -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min
        return torch.exp(log_mean)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """Noise scale sigma_t = sqrt(1 - alpha_t^2)."""
        return torch.sqrt(1.0 - self.alpha(t) ** 2)


class GaussianFourierProjection(nn.Module):
    """Fixed random Fourier features [sin(2 pi W t), cos(2 pi W t)] with W ~ N(0, scale^2)."""

    def __init__(self, embed_dim: int, scale: float):
        super().__init__()
        # A buffer, not a parameter: the authors' W is frozen (requires_grad=False) but saved.
        self.register_buffer("W", torch.randn(embed_dim // 2) * scale)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        proj = t.reshape(-1, 1) * self.W[None, :] * 2.0 * math.pi
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


def _dropout(x: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Inverted dropout with an explicit generator (the global RNG is the runner's)."""
    if p <= 0.0:
        return x
    keep = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) >= p
    return x * keep / (1.0 - p)


class ResNetBlock(nn.Module):
    """Dropout -> LayerNorm -> Linear(h, e h) -> Mish -> Linear(e h, h), plus identity."""

    def __init__(self, hidden: int, expansion: int, dropout: float):
        super().__init__()
        self.dropout = dropout
        self.norm = nn.LayerNorm(hidden)
        self.dense1 = nn.Linear(hidden, expansion * hidden)
        self.dense2 = nn.Linear(expansion * hidden, hidden)

    def forward(
        self,
        x: torch.Tensor,
        generator: torch.Generator | None,
        keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        h = x
        if self.training and keep is not None:  # a mask drawn beforehand (draw_noise)
            h = x * keep / (1.0 - self.dropout)
        elif self.training:
            h = _dropout(x, self.dropout, generator)
        h = self.dense2(F.mish(self.dense1(self.norm(h))))
        return x + h


class ScoreNet(nn.Module):
    """epsilon_phi(a_t, t, s): the IDQL-style noise-prediction network of the authors' code."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: int = 256,
        blocks: int = 3,
        expansion: int = 4,
        dropout: float = 0.1,
        fourier_dim: int = 64,
        cond_dim: int = 128,
        fourier_scale: float = 30.0,
    ):
        super().__init__()
        self.time_embed = GaussianFourierProjection(fourier_dim, fourier_scale)
        self.cond = nn.Sequential(
            nn.Linear(fourier_dim, cond_dim), nn.Mish(), nn.Linear(cond_dim, cond_dim)
        )
        self.inp = nn.Linear(act_dim + obs_dim + cond_dim, hidden)
        self.blocks = nn.ModuleList(ResNetBlock(hidden, expansion, dropout) for _ in range(blocks))
        self.out = nn.Linear(hidden, act_dim)

    def forward(
        self,
        a_t: torch.Tensor,
        t: torch.Tensor,
        obs: torch.Tensor,
        generator: torch.Generator | None = None,
        keeps: tuple[torch.Tensor, ...] | None = None,
    ) -> torch.Tensor:
        """`keeps`: one dropout keep-mask per block (from `draw_noise`) instead of drawing."""
        embed = self.cond(self.time_embed(t))
        x = self.inp(torch.cat([a_t, obs, embed], dim=-1))
        for i, block in enumerate(self.blocks):
            x = block(x, generator, None if keeps is None else keeps[i])
        return self.out(F.mish(x))


def diffusion_loss(
    net: ScoreNet,
    sde: VPSDE,
    obs: torch.Tensor,
    actions: torch.Tensor,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Unweighted epsilon-prediction loss: mean over the batch of ||eps(a_t,t,s) - z||^2."""
    batch = actions.shape[0]
    kw = {"generator": generator, "device": actions.device, "dtype": actions.dtype}
    t = torch.rand((batch, 1), **kw) * (1.0 - TRAIN_T_MIN) + TRAIN_T_MIN
    z = torch.randn(actions.shape, **kw)
    a_t = sde.alpha(t) * actions + sde.sigma(t) * z
    eps = net(a_t, t, obs, generator)
    return ((eps - z) ** 2).sum(dim=-1).mean()


def draw_noise(
    net: ScoreNet, actions: torch.Tensor, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...] | None]:
    """(t, z, dropout keep-masks): the draws `diffusion_loss` makes, in its order (t, z, then
    one mask per block as the forward pass reaches it), so the results are the same numbers."""
    batch = actions.shape[0]
    kw = {"generator": generator, "device": actions.device, "dtype": actions.dtype}
    t = torch.rand((batch, 1), **kw) * (1.0 - TRAIN_T_MIN) + TRAIN_T_MIN
    z = torch.randn(actions.shape, **kw)
    keeps = None
    if net.training and any(block.dropout > 0.0 for block in net.blocks):
        keeps = tuple(
            torch.rand((batch, block.norm.normalized_shape[0]), **kw) >= block.dropout
            for block in net.blocks
        )
    return t, z, keeps


def loss_from_noise(
    net: ScoreNet,
    sde: VPSDE,
    obs: torch.Tensor,
    actions: torch.Tensor,
    t: torch.Tensor,
    z: torch.Tensor,
    keeps: tuple[torch.Tensor, ...] | None,
    autocast_bf16: bool = False,
) -> torch.Tensor:
    """`diffusion_loss` on noise drawn beforehand; the network optionally in bf16 autocast
    (the loss itself is always float32)."""
    a_t = sde.alpha(t) * actions + sde.sigma(t) * z
    with torch.autocast(actions.device.type, dtype=torch.bfloat16, enabled=autocast_bf16):
        eps = net(a_t, t, obs, None, keeps)
    return ((eps.float() - z) ** 2).sum(dim=-1).mean()


class BehaviorLoss:
    """The behaviour loss of one step, by `speedup` (one of SPEEDUPS): `eager` calls
    `diffusion_loss` (the reference path, unchanged); the others draw the noise first and run
    `loss_from_noise`, compiled with `torch.compile` and/or with the network in bf16 autocast.
    The compiled function is built on first use (compiling takes seconds to a minute)."""

    def __init__(self, net: ScoreNet, sde: VPSDE, speedup: str = "eager"):
        if speedup not in SPEEDUPS:
            raise ValueError(f"behaviour speed-up {speedup!r} is not one of {SPEEDUPS}")
        self.net, self.sde, self.speedup = net, sde, speedup
        self._compiled = None

    def _fn(self):
        bf16 = "bf16" in self.speedup

        def fn(obs, actions, t, z, keeps):
            return loss_from_noise(self.net, self.sde, obs, actions, t, z, keeps, bf16)

        if "compile" not in self.speedup:
            return fn
        if self._compiled is None:
            self._compiled = torch.compile(fn)
        return self._compiled

    def __call__(
        self, obs: torch.Tensor, actions: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        if self.speedup == "eager":
            return diffusion_loss(self.net, self.sde, obs, actions, generator)
        t, z, keeps = draw_noise(self.net, actions, generator)
        return self._fn()(obs, actions, t, z, keeps)


@torch.no_grad()
def sample(
    net: ScoreNet,
    sde: VPSDE,
    obs: torch.Tensor,
    n_steps: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one action per state by DDIM (DPM-Solver-1) steps from t=1 down to t=1e-3.

    Each step predicts a_0 = (a_t - sigma_t eps) / alpha_t and re-noises it to the next time
    with the same eps (the exact solution of the probability-flow ODE for a constant eps).
    """
    act_dim = net.out.out_features
    kw = {"device": obs.device, "dtype": obs.dtype}
    a = torch.randn((obs.shape[0], act_dim), generator=generator, **kw)
    times = torch.linspace(1.0, TRAIN_T_MIN, n_steps + 1, **kw)
    for i in range(n_steps):
        t, s = times[i], times[i + 1]
        eps = net(a, t.expand(obs.shape[0], 1), obs)
        a0 = (a - sde.sigma(t) * eps) / sde.alpha(t)
        a = sde.alpha(s) * a0 + sde.sigma(s) * eps
    # The last step lands at t=1e-3 where sigma ~ 0.045; report its a_0 estimate.
    return a0.clamp(-1.0, 1.0)
