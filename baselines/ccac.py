"""CCAC: Constraint-Conditioned Actor-Critic.

Paper: Guo, Zhou, Wang, Li, "Constraint-Conditioned Actor-Critic for Offline Safe Reinforcement
Learning", ICLR 2025. Code followed (read for understanding, nothing copied): `BU-DEPEND-Lab/CCAC`
@ 4707c1f, `OSRL/osrl/algorithms/ccac.py`, `OSRL/osrl/common/dataset.py` (`set_cost_thresholds`),
`OSRL/examples/train/train_ccac.py` and `OSRL/examples/configs/ccac_configs.py`, as summarised in
`reference/baselines.md` §3.2. Pure torch; no OSRL code.

What it does. Every transition is labelled with kappa, its trajectory's undiscounted cost-to-go
from that step, and kappa', the cost-to-go from the next step (0 after the last step). Actor,
reward critic and cost critic all take kappa as an extra input. A kappa-conditioned CVAE learns
(s, a) given kappa and a classifier learns, for a reference budget kappa_ref (the batch's first
kappa), which (s, a) belong to trajectories with more cost-to-go than kappa_ref ("out of
distribution" for that budget). Decoder samples the classifier calls OOD get their cost Q pushed
above kappa by a penalty -lambda_1(kappa) * (Q_c - kappa); the actor maximises
Q_r - lambda_3(kappa) * (Q_c - kappa). lambda_1 and lambda_3 are small networks of kappa (log
lambda clamped to [-20, max_lag]) trained as Lagrange multipliers with an L2 penalty on their
weights. Training is two stages: CVAE + classifier only (`cvae`), then everything (`joint`).
At test time kappa starts at the target cost limit and is decremented by the incurred cost,
floored at 0 (`CCACPolicy`), so one model serves every limit.

Deviations from the authors' code, and why:
- Critic ensembles are one batched ("ensemble linear") MLP instead of `num_q` separate MLPs: the
  same maths and the same per-member initial distribution, fewer kernel launches.
- The classifier is trained with BCE on logits rather than on sigmoid outputs (numerically
  safer, same loss).
- The reconstruction loss sees the decoder's raw output; the data-box clamp ([s_min, s_max] for
  states, [-1, 1] for actions) is applied to decoder *samples* (the reconstructions the classifier
  sees and the generated OOD pairs), so reconstruction gradients never die at the box edge.
- The log-lambda clamp keeps the clamped value forward and passes gradients straight through,
  which is what the authors' in-place `.data.clamp_` does; we write it as a straight-through
  clamp instead of mutating `.data`.
- The authors keep a Polyak copy of the actor that nothing reads; we drop it.
- Randomness of the updates (actor sampling, CVAE reparameterisation, OOD latent noise) comes
  from the algorithm's own torch Generator seeded from the run seed and saved in the state, so a
  resumed run continues bit-for-bit.
- The depth of the classifier, CVAE and lambda networks (two hidden layers of `vae_hidden_size`)
  is our reading of the authors' `net.py`; the widths are theirs.

As upstream, by default, where the suite once differed (issue 13):
- `done` = terminal OR timeout, as in the `TransitionDataset` of the authors' OSRL copy, so no
  critic bootstraps through a time-limit truncation; `bootstrap_timeouts=True` is the labelled
  alternative (done = terminal).
- Both lambda networks share one Adam whose gradients are zeroed in place between steps, as
  torch 1.13's `zero_grad()` did in the authors' runs: at every multiplier step the idle network
  keeps moving on its Adam moments. `lagrangian_optimizer="separate"` is the labelled
  alternative (one Adam each, so only the network whose loss was computed moves).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from benchmark.data.dataset import Dataset
from benchmark.errors import ConfigError
from benchmark.interface import (
    Batch,
    Stage,
    TrainContext,
    TransitionSource,
    check_stage,
    transition_columns,
)
from benchmark.validation import (
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Sizes,
)

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
"""Actor log-std clamp (OSRL's squashed Gaussian actor)."""
VAE_LOG_STD_MIN, VAE_LOG_STD_MAX = -4.0, 15.0
"""CVAE encoder log-std clamp (the BCQ-style VAE convention OSRL uses)."""
LOG_LAMBDA_MIN = -20.0
"""Lower clamp of log lambda (the upper is `Config.max_lag`)."""


@dataclass
class Config:
    steps: PositiveInt = 200_000
    """Joint-stage gradient steps (the authors' `update_steps`; CarRun uses 100k)."""
    warmup_steps: NonNegativeInt = 200_000
    """CVAE-and-classifier-only steps before the joint stage (the authors repeat
    `update_steps`)."""
    batch_size: PositiveInt = 512
    """Transitions per gradient step (CarRun uses 1024)."""
    actor_lr: PositiveFloat = 1e-4
    """Adam learning rate of the actor and of both lambda networks."""
    critic_lr: PositiveFloat = 1e-3
    """Adam learning rate of the reward and cost critic ensembles."""
    vae_lr: PositiveFloat = 1e-3
    """Adam learning rate of the CVAE and of the OOD classifier."""
    a_hidden_sizes: Sizes = field(default_factory=lambda: [256, 256])
    """Hidden layer widths of the actor."""
    c_hidden_sizes: Sizes = field(default_factory=lambda: [256, 256])
    """Hidden layer widths of every critic ensemble member."""
    vae_hidden_size: PositiveInt = 512
    """Width of the CVAE's, the classifier's and the lambda networks' hidden layers."""
    vae_latent_size: PositiveInt = 64
    """Latent dimension of the CVAE."""
    gamma: Fraction = 0.99
    """Discount of both critics."""
    tau: Fraction = 0.005
    """Polyak rate of the target critics."""
    kl_weight: NonNegativeFloat = 0.5
    """Weight of the KL term in the CVAE loss (the authors' `beta`)."""
    num_q: PositiveInt = 4
    """Reward critic ensemble size; the critic value is the ensemble minimum."""
    num_qc: PositiveInt = 4
    """Cost critic ensemble size; the critic value is the ensemble minimum."""
    ood_threshold: NonNegativeFloat = 0.5
    """Classifier probability above which a generated (s, a) counts as out of distribution."""
    max_lag: PositiveFloat = 5.0
    """Upper clamp of log lambda for both Lagrange networks."""
    lag_l2: NonNegativeFloat = 0.01
    """Weight of the squared L2 norm of each lambda network's parameters in its loss."""
    softplus_critics: bool = True
    """Softplus on critic outputs (Q >= 0), as in the authors' modified `EnsembleQCritic`."""
    reward_scale: PositiveFloat = 0.1
    """Rewards are multiplied by this before training (OSRL's convention)."""
    cost_scale: PositiveFloat = 1.0
    """Costs, cost-to-go labels and the test-time budget are multiplied by this."""
    bootstrap_timeouts: bool = False
    """How a time-limit truncation enters the TD targets. False (the authors' code, which trains
    on its OSRL copy's `TransitionDataset`): done = terminal OR timeout, so neither critic
    bootstraps past the last step of a truncated episode. True: done = terminal only, i.e. the
    critics bootstrap through truncations (the textbook treatment, and the suite's behaviour
    before issue 13); on tasks whose episodes all end by timeout it raises the cost critic."""
    lagrangian_optimizer: Literal["shared", "separate"] = "shared"
    """`shared` (the authors' code): one Adam over both lambda networks, whose gradients are
    zeroed, not freed, between steps (torch 1.13's `zero_grad()`), so at every lambda step the
    idle network also moves, on its Adam moments alone. `separate`: one Adam per network, so a
    network moves only on its own loss (the suite's behaviour before issue 13)."""


LAGRANGIAN_OPTIMIZERS = ("shared", "separate")


# -- data ------------------------------------------------------------------------------------


def cost_to_go_labels(dataset: Dataset, cost_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """kappa (undiscounted cost-to-go from each step) and kappa' (from the next step of the same
    trajectory; 0 after a trajectory's last step), both times `cost_scale`, float32."""
    kappa = dataset.cost_to_go(1.0) * cost_scale
    next_kappa = np.zeros_like(kappa)
    next_kappa[:-1] = kappa[1:]
    next_kappa[dataset.episode_ends - 1] = 0.0
    return kappa.astype(np.float32), next_kappa.astype(np.float32)


def td_done(dataset: Dataset, bootstrap_timeouts: bool) -> np.ndarray:
    """The `done` flag of the TD targets (float32): terminals only when bootstrapping through
    time-limit truncations, else terminals OR timeouts (OSRL's `TransitionDataset`)."""
    if bootstrap_timeouts:
        return dataset.terminals.astype(np.float32)
    return np.logical_or(dataset.terminals, dataset.timeouts).astype(np.float32)


# -- networks --------------------------------------------------------------------------------


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


class EnsembleLinear(nn.Module):
    """`members` independent Linear layers applied as one batched matmul: (E, B, in) -> (E, B, out).
    Each member is initialised like `nn.Linear` (uniform in +-1/sqrt(fan_in))."""

    def __init__(self, members: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleCritic(nn.Module):
    """`members` Q(s, kappa, a) networks; `forward` returns all of them, (E, B)."""

    def __init__(self, in_dim: int, hidden: list[int], members: int, softplus: bool):
        super().__init__()
        sizes = [in_dim, *hidden, 1]
        self.layers = nn.ModuleList(
            EnsembleLinear(members, sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)
        )
        self.members = members
        self.softplus = softplus

    def forward(self, sc: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        x = torch.cat([sc, act], dim=-1).unsqueeze(0).expand(self.members, -1, -1)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        q = x.squeeze(-1)
        return F.softplus(q) if self.softplus else q

    def min(self, sc: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self(sc, act).min(dim=0).values


def ensemble_td_loss(q_all: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum over members of each member's mean squared TD error (OSRL's ensemble loss)."""
    return (q_all - target.unsqueeze(0)).pow(2).mean(dim=1).sum()


class SquashedGaussianActor(nn.Module):
    """pi(a | s, kappa): tanh of a Gaussian; deterministic = tanh of its mean."""

    def __init__(self, in_dim: int, act_dim: int, hidden: list[int]):
        super().__init__()
        self.trunk = nn.Sequential(mlp([in_dim, *hidden]), nn.ReLU())
        self.mu = nn.Linear(hidden[-1], act_dim)
        self.log_std = nn.Linear(hidden[-1], act_dim)

    def forward(
        self, sc: torch.Tensor, deterministic: bool, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        h = self.trunk(sc)
        mu = self.mu(h)
        if deterministic:
            return torch.tanh(mu)
        std = self.log_std(h).clamp(LOG_STD_MIN, LOG_STD_MAX).exp()
        noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return torch.tanh(mu + std * noise)


class CVAE(nn.Module):
    """(s, a, kappa) -> z -> (s, a) given kappa; samples are clamped to the data's box."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, latent: int, s_min, s_max):
        super().__init__()
        self.obs_dim, self.latent = obs_dim, latent
        self.encoder = nn.Sequential(mlp([obs_dim + act_dim + 1, hidden, hidden]), nn.ReLU())
        self.mean = nn.Linear(hidden, latent)
        self.log_std = nn.Linear(hidden, latent)
        self.decoder = mlp([latent + 1, hidden, hidden, obs_dim + act_dim])
        low = torch.cat([torch.as_tensor(s_min, dtype=torch.float32), -torch.ones(act_dim)])
        high = torch.cat([torch.as_tensor(s_max, dtype=torch.float32), torch.ones(act_dim)])
        self.register_buffer("low", low)
        self.register_buffer("high", high)

    def encode(self, sa: torch.Tensor, kappa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(torch.cat([sa, kappa[:, None]], dim=-1))
        std = self.log_std(h).clamp(VAE_LOG_STD_MIN, VAE_LOG_STD_MAX).exp()
        return self.mean(h), std

    def decode_raw(self, z: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([z, kappa[:, None]], dim=-1))

    def to_box(self, sa: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(sa, self.high), self.low)


def straight_through_clamp(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Clamped value forward, identity gradient backward (the authors' `.data.clamp_`)."""
    return x + (x.clamp(low, high) - x).detach()


class CCACPolicy:
    """Deterministic actor on (obs, kappa); kappa starts at the limit and falls with the cost."""

    def __init__(
        self,
        actor: SquashedGaussianActor,
        cost_limit: float,
        num_envs: int,
        cost_scale: float,
        device: torch.device,
    ):
        self.actor = actor
        self.cost_limit = float(cost_limit) * cost_scale
        self.cost_scale = cost_scale
        self.device = device
        self.kappa = np.full(num_envs, self.cost_limit, dtype=np.float64)
        """Each env's remaining budget, the kappa the actor is conditioned on."""

    def reset(self, obs: np.ndarray, mask: np.ndarray) -> None:
        self.kappa[mask] = self.cost_limit

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        x = np.concatenate([obs, self.kappa[:, None]], axis=1)
        sc = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        return self.actor(sc, deterministic=True).cpu().numpy()

    def observe(self, reward: np.ndarray, cost: np.ndarray, done: np.ndarray) -> None:
        spent = np.asarray(cost, dtype=np.float64) * self.cost_scale
        self.kappa = np.maximum(self.kappa - spent, 0.0)


# -- the algorithm ---------------------------------------------------------------------------


class CCAC:
    """kappa-conditioned actor-critic with CVAE/classifier OOD penalties on the cost critic."""

    cost_conditioned = True

    def __init__(self, config: Config, ctx: TrainContext):
        self.config = config
        self.ctx = ctx
        self.device = ctx.device
        cfg = config
        data = ctx.dataset
        obs_dim, act_dim = data.observations.shape[1], data.actions.shape[1]
        self.obs_dim = obs_dim
        self.stages = (
            Stage("cvae", cfg.warmup_steps, cfg.batch_size),
            Stage("joint", cfg.steps, cfg.batch_size),
        )
        dev = self.device
        self.actor = SquashedGaussianActor(obs_dim + 1, act_dim, cfg.a_hidden_sizes).to(dev)
        critic_in = obs_dim + 1 + act_dim
        self.critic = EnsembleCritic(critic_in, cfg.c_hidden_sizes, cfg.num_q, cfg.softplus_critics)
        self.cost_critic = EnsembleCritic(
            critic_in, cfg.c_hidden_sizes, cfg.num_qc, cfg.softplus_critics
        )
        self.critic, self.cost_critic = self.critic.to(dev), self.cost_critic.to(dev)
        self.critic_target = _frozen_copy(self.critic)
        self.cost_critic_target = _frozen_copy(self.cost_critic)
        h = cfg.vae_hidden_size
        s_min, s_max = data.observations.min(axis=0), data.observations.max(axis=0)
        self.cvae = CVAE(obs_dim, act_dim, h, cfg.vae_latent_size, s_min, s_max).to(dev)
        self.classifier = mlp([obs_dim + act_dim + 1, h, h, 1]).to(dev)
        self.qc_lag = mlp([1, h, h, 1]).to(dev)
        self.actor_lag = mlp([1, h, h, 1]).to(dev)

        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.cost_critic_opt = torch.optim.Adam(self.cost_critic.parameters(), lr=cfg.critic_lr)
        self.cvae_opt = torch.optim.Adam(self.cvae.parameters(), lr=cfg.vae_lr)
        self.classifier_opt = torch.optim.Adam(self.classifier.parameters(), lr=cfg.vae_lr)
        self.lag_opts = _lagrangian_optimizers(
            cfg.lagrangian_optimizer, self.qc_lag, self.actor_lag, cfg.actor_lr
        )

        self.generator = torch.Generator(device=dev)
        self.generator.manual_seed(int(ctx.seed) + 7919)  # offset: not the runner's own stream
        self._source: TransitionSource | None = None

    # -- data ---------------------------------------------------------------------------------
    def batch_source(self, stage: str) -> TransitionSource:
        check_stage("ccac", stage, self.stages)
        if self._source is None:
            cfg = self.config
            columns = transition_columns(self.ctx.dataset)
            columns["done"] = td_done(self.ctx.dataset, cfg.bootstrap_timeouts)
            # the authors clip the dataset actions to the action box in place
            columns["actions"] = np.clip(columns["actions"], -1.0, 1.0).astype(np.float32)
            columns["rewards"] = (columns["rewards"] * cfg.reward_scale).astype(np.float32)
            columns["costs"] = (columns["costs"] * cfg.cost_scale).astype(np.float32)
            columns["kappa"], columns["next_kappa"] = cost_to_go_labels(
                self.ctx.dataset, cfg.cost_scale
            )
            self._source = TransitionSource(columns)
        return self._source

    # -- one step -----------------------------------------------------------------------------
    def update(self, stage: str, batch: Batch) -> dict[str, float]:
        check_stage("ccac", stage, self.stages)
        if stage == "cvae":
            return self._cvae_step(batch)
        stats = self._cvae_step(batch)
        stats.update(self._critic_step(batch))
        stats.update(self._cost_critic_step(batch))
        stats.update(self._actor_step(batch))
        _polyak(self.critic_target, self.critic, self.config.tau)
        _polyak(self.cost_critic_target, self.cost_critic, self.config.tau)
        return stats

    def _randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.device)

    def _cvae_step(self, batch: Batch) -> dict[str, float]:
        obs, act, kappa = batch["obs"], batch["actions"], batch["kappa"]
        sa = torch.cat([obs, act], dim=-1)
        mean, std = self.cvae.encode(sa, kappa)
        z = mean + std * self._randn(*mean.shape)
        recon = self.cvae.decode_raw(z, kappa)
        recon_loss = F.mse_loss(recon, sa)
        kl = -0.5 * (1 + torch.log(std.pow(2)) - mean.pow(2) - std.pow(2)).mean()
        vae_loss = recon_loss + self.config.kl_weight * kl
        self.cvae_opt.zero_grad()
        vae_loss.backward()
        self.cvae_opt.step()

        # classifier: real and reconstructed pairs, both paired with the batch's first kappa;
        # a pair is OOD for that budget when its own cost-to-go exceeds it
        kappa_ref = kappa[0].expand_as(kappa)
        pairs = torch.cat([sa, self.cvae.to_box(recon.detach())], dim=0)
        inputs = torch.cat([pairs, kappa_ref.repeat(2)[:, None]], dim=-1)
        labels = (kappa > kappa[0]).float().repeat(2)
        logits = self.classifier(inputs).squeeze(-1)
        class_loss = F.binary_cross_entropy_with_logits(logits, labels)
        self.classifier_opt.zero_grad()
        class_loss.backward()
        self.classifier_opt.step()
        with torch.no_grad():
            accuracy = (torch.sigmoid(logits) > self.config.ood_threshold).float() == labels
        return {
            "loss/recon": float(recon_loss.item()),
            "loss/kl": float(kl.item()),
            "loss/classifier": float(class_loss.item()),
            "classifier/accuracy": float(accuracy.float().mean().item()),
        }

    def _next_sc_and_action(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        next_sc = torch.cat([batch["next_obs"], batch["next_kappa"][:, None]], dim=-1)
        next_act = self.actor(next_sc, deterministic=False, generator=self.generator)
        return next_sc, next_act

    def _critic_step(self, batch: Batch) -> dict[str, float]:
        sc = torch.cat([batch["obs"], batch["kappa"][:, None]], dim=-1)
        with torch.no_grad():
            next_sc, next_act = self._next_sc_and_action(batch)
            q_next = self.critic_target.min(next_sc, next_act)
            backup = batch["rewards"] + self.config.gamma * (1 - batch["done"]) * q_next
        loss = ensemble_td_loss(self.critic(sc, batch["actions"]), backup)
        self.critic_opt.zero_grad()
        loss.backward()
        self.critic_opt.step()
        return {"loss/critic": float(loss.item()), "q/reward_target": float(q_next.mean().item())}

    def _cost_critic_step(self, batch: Batch) -> dict[str, float]:
        cfg = self.config
        obs, kappa = batch["obs"], batch["kappa"]
        sc = torch.cat([obs, kappa[:, None]], dim=-1)
        with torch.no_grad():
            next_sc, next_act = self._next_sc_and_action(batch)
            qc_next = self.cost_critic_target.min(next_sc, next_act)
            backup = batch["costs"] + cfg.gamma * (1 - batch["done"]) * qc_next
            # generated (s, a) for each kappa; the classifier picks the OOD ones
            z = self._randn(obs.shape[0], cfg.vae_latent_size).clamp(-1.0, 1.0)
            generated = self.cvae.to_box(self.cvae.decode_raw(z, kappa))
            prob = torch.sigmoid(self.classifier(torch.cat([generated, kappa[:, None]], -1)))
            ood = prob.squeeze(-1) > cfg.ood_threshold
        loss = ensemble_td_loss(self.cost_critic(sc, batch["actions"]), backup)
        stats = {"q/cost_target": float(qc_next.mean().item()), "ood/fraction": 0.0}
        lag_loss_value = 0.0
        if bool(ood.any()):
            ood_sa, ood_kappa = generated[ood], kappa[ood]
            ood_sc = torch.cat([ood_sa[:, : self.obs_dim], ood_kappa[:, None]], dim=-1)
            qc_ood = self.cost_critic.min(ood_sc, ood_sa[:, self.obs_dim :])
            lam = self._lambda(self.qc_lag, ood_kappa)
            # push Q_c above kappa on OOD pairs, harder where lambda_1(kappa) is large
            loss = loss + (-lam.detach() * (qc_ood - ood_kappa)).mean()
            self.cost_critic_opt.zero_grad()
            loss.backward()
            self.cost_critic_opt.step()
            # lambda_1 grows while OOD Q_c is still below kappa
            lag_loss = (lam * (qc_ood.detach() - ood_kappa)).mean() + _l2(self.qc_lag, cfg.lag_l2)
            self._lagrangian_step("qc_lag", lag_loss)
            lag_loss_value = float(lag_loss.item())
            stats["ood/fraction"] = float(ood.float().mean().item())
            stats["ood/lambda1"] = float(lam.mean().item())
        else:
            self.cost_critic_opt.zero_grad()
            loss.backward()
            self.cost_critic_opt.step()
            stats["ood/lambda1"] = 0.0
        stats["loss/cost_critic"] = float(loss.item())
        stats["loss/qc_lag"] = lag_loss_value
        return stats

    def _actor_step(self, batch: Batch) -> dict[str, float]:
        cfg = self.config
        kappa = batch["kappa"]
        sc = torch.cat([batch["obs"], kappa[:, None]], dim=-1)
        self.critic.requires_grad_(False)
        self.cost_critic.requires_grad_(False)
        try:
            act = self.actor(sc, deterministic=False, generator=self.generator)
            q_r = self.critic.min(sc, act)
            q_c = self.cost_critic.min(sc, act)
        finally:
            self.critic.requires_grad_(True)
            self.cost_critic.requires_grad_(True)
        lam = self._lambda(self.actor_lag, kappa)
        loss = (-q_r).mean() + (lam.detach() * (q_c - kappa)).mean()
        self.actor_opt.zero_grad()
        loss.backward()
        self.actor_opt.step()
        # lambda_3 grows while the policy's Q_c exceeds its kappa
        lag_loss = (-lam * (q_c.detach() - kappa)).mean() + _l2(self.actor_lag, cfg.lag_l2)
        self._lagrangian_step("actor_lag", lag_loss)
        return {
            "loss/actor": float(loss.item()),
            "loss/actor_lag": float(lag_loss.item()),
            "actor/lambda3": float(lam.mean().item()),
            "actor/qc_minus_kappa": float((q_c - kappa).mean().item()),
        }

    def _lagrangian_step(self, net: str, loss: torch.Tensor) -> None:
        """One Adam step on a lambda network's loss. With the shared optimiser the gradients of
        both networks are zeroed in place (not set to None), so Adam also steps the idle network
        with a zero gradient: it moves on its first and second moments, as in the authors' code
        under torch 1.13. (A network that never had a gradient still has `.grad` None and
        stays put, as there.)"""
        optimiser = self.lag_opts.get(net, self.lag_opts.get("lag"))
        optimiser.zero_grad(set_to_none=False)
        loss.backward()
        optimiser.step()

    def _lambda(self, net: nn.Module, kappa: torch.Tensor) -> torch.Tensor:
        log_lam = net(kappa[:, None]).squeeze(-1)
        return straight_through_clamp(log_lam, LOG_LAMBDA_MIN, self.config.max_lag).exp()

    # -- test time ----------------------------------------------------------------------------
    def policy(self, cost_limit: float, num_envs: int) -> CCACPolicy:
        return CCACPolicy(
            self.actor, cost_limit, num_envs, cost_scale=self.config.cost_scale, device=self.device
        )

    # -- checkpoints --------------------------------------------------------------------------
    def _parts(self) -> dict:
        return {
            "actor": self.actor,
            "critic": self.critic,
            "cost_critic": self.cost_critic,
            "critic_target": self.critic_target,
            "cost_critic_target": self.cost_critic_target,
            "cvae": self.cvae,
            "classifier": self.classifier,
            "qc_lag": self.qc_lag,
            "actor_lag": self.actor_lag,
            "actor_opt": self.actor_opt,
            "critic_opt": self.critic_opt,
            "cost_critic_opt": self.cost_critic_opt,
            "cvae_opt": self.cvae_opt,
            "classifier_opt": self.classifier_opt,
            **{f"{name}_opt": optimiser for name, optimiser in self.lag_opts.items()},
        }

    def state_dict(self) -> dict:
        state = {name: part.state_dict() for name, part in self._parts().items()}
        state["generator"] = self.generator.get_state()
        state["config"] = asdict(self.config)
        return state

    def load_state_dict(self, state: dict) -> None:
        for name, part in self._parts().items():
            part.load_state_dict(state[name])
        self.generator.set_state(state["generator"].cpu())
        _restore_zero_grads(self.lag_opts.values())


def _lagrangian_optimizers(
    kind: str, qc_lag: nn.Module, actor_lag: nn.Module, lr: float
) -> dict[str, torch.optim.Optimizer]:
    """`shared`: {"lag": one Adam over both networks}; `separate`: one Adam per network."""
    if kind == "shared":
        params = [*qc_lag.parameters(), *actor_lag.parameters()]
        return {"lag": torch.optim.Adam(params, lr=lr)}
    if kind == "separate":
        return {
            "qc_lag": torch.optim.Adam(qc_lag.parameters(), lr=lr),
            "actor_lag": torch.optim.Adam(actor_lag.parameters(), lr=lr),
        }
    raise ConfigError(
        f"ccac: lagrangian_optimizer must be one of {list(LAGRANGIAN_OPTIMIZERS)}, got {kind!r}"
    )


def _restore_zero_grads(optimisers) -> None:
    """After a resume, give every parameter that has Adam state (so has had a gradient) a zero
    gradient again: whether `.grad` is zero or None decides whether Adam steps the idle lambda
    network, and a state dict keeps neither."""
    for optimiser in optimisers:
        for group in optimiser.param_groups:
            for param in group["params"]:
                if optimiser.state.get(param) and param.grad is None:
                    param.grad = torch.zeros_like(param)


def _frozen_copy(module: nn.Module) -> nn.Module:
    return copy.deepcopy(module).requires_grad_(False)


def _l2(net: nn.Module, weight: float) -> torch.Tensor:
    return weight * sum(p.pow(2).sum() for p in net.parameters())


@torch.no_grad()
def _polyak(target: nn.Module, source: nn.Module, tau: float) -> None:
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s, tau)
