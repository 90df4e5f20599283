"""PPO-Lagrangian with an annealed cost limit: the behaviour-policy learner of the collector.

Paper: Ray, Achiam & Amodei, "Benchmarking Safe Exploration in Deep RL" (2019), PPO-Lagrangian;
PID Lagrangian from Stooke, Achiam & Abbeel, "Responsive Safety in RL by PID Lagrangian
Methods" (ICML 2020). Follows the recipe of DSRL's data collection (FSRL's TRPO-Lagrangian with
a PID multiplier and `rescaling=True`, a cost limit moved linearly over training) as described in
`reference/datasets.md` 1.1 and 3.2; written from those descriptions, no code copied.

Deviations from DSRL's expert: PPO instead of TRPO (clipped surrogate, a KL early stop), a
64x64 tanh MLP, running observation normalisation, and a few times fewer env steps.
The maths only: rollouts, logging and files live in `benchmark/data/collect.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn


@dataclass
class PPOLagConfig:
    """Hyper-parameters of the learner (defaults: the measured prototype of datasets.md 2.3)."""

    hidden: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layer widths of the policy and both value networks (tanh)."""
    lr: float = 3e-4
    """Adam learning rate of the policy and the value networks."""
    gamma: float = 0.99
    """Discount of the reward."""
    cost_gamma: float = 0.99
    """Discount of the cost."""
    gae_lambda: float = 0.95
    """GAE lambda, for both advantages."""
    clip: float = 0.2
    """PPO ratio clip."""
    epochs: int = 10
    """Passes over each rollout."""
    minibatch: int = 512
    """Minibatch size of the PPO updates."""
    target_kl: float = 0.02
    """Stop the epochs of an update early once the approximate KL exceeds 1.5x this."""
    max_grad_norm: float = 0.5
    """Gradient-norm clip."""
    init_log_std: float = -0.5
    """Initial log standard deviation of the Gaussian policy (sigma about 0.6)."""
    entropy_coef: float = 0.0
    """Entropy bonus weight."""
    obs_clip: float = 10.0
    """Normalised observations are clipped to [-obs_clip, obs_clip]."""
    lagrangian: str = "pid"
    """`pid` (PID Lagrangian, as DSRL's expert) or `plain` (gradient ascent on lambda)."""
    pid_gains: list[float] = field(default_factory=lambda: [0.05, 0.005, 0.1])
    """(kp, ki, kd) of the PID multiplier; FSRL's `lagrangian_pid` used by DSRL."""
    lambda_lr: float = 0.01
    """Step size of the plain multiplier update (per unit of episode-cost excess)."""
    lambda_max: float = 100.0
    """Upper clip of the multiplier."""


class RunningMeanStd:
    """Running mean and variance of observations (parallel-merge formula)."""

    def __init__(self, dim: int) -> None:
        self.mean = np.zeros(dim, dtype=np.float64)
        self.var = np.ones(dim, dtype=np.float64)
        self.count = 1e-4

    def update(self, batch: np.ndarray) -> None:
        batch = np.asarray(batch, dtype=np.float64).reshape(-1, self.mean.shape[0])
        b_mean, b_var, b_count = batch.mean(0), batch.var(0), batch.shape[0]
        delta = b_mean - self.mean
        total = self.count + b_count
        self.mean = self.mean + delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.var = m2 / total
        self.count = total

    def normalise(self, obs: np.ndarray, clip: float) -> np.ndarray:
        out = (np.asarray(obs, dtype=np.float64) - self.mean) / np.sqrt(self.var + 1e-8)
        return np.clip(out, -clip, clip).astype(np.float32)

    def state_dict(self) -> dict:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.mean = np.array(state["mean"], dtype=np.float64)
        self.var = np.array(state["var"], dtype=np.float64)
        self.count = float(state["count"])


class Lagrangian:
    """The multiplier lambda, driven by (mean episode cost - cost limit) once per update."""

    def __init__(self, config: PPOLagConfig) -> None:
        if config.lagrangian not in ("pid", "plain"):
            raise ValueError(f"lagrangian must be 'pid' or 'plain', got {config.lagrangian!r}")
        self.config = config
        self.value = 0.0
        self.integral = 0.0
        self.previous_cost = None

    def update(self, episode_cost: float, cost_limit: float) -> float:
        error = episode_cost - cost_limit
        cfg = self.config
        if cfg.lagrangian == "plain":
            self.value = self.value + cfg.lambda_lr * error
        else:
            kp, ki, kd = cfg.pid_gains
            self.integral = max(0.0, self.integral + ki * error)
            # Only a rising cost pushes lambda up through D (Stooke et al.): no derivative kick
            # when costs fall, so lambda does not collapse while the policy is improving.
            previous = episode_cost if self.previous_cost is None else self.previous_cost
            derivative = max(0.0, episode_cost - previous)
            self.value = kp * error + self.integral + kd * derivative
        self.value = float(np.clip(self.value, 0.0, cfg.lambda_max))
        self.previous_cost = episode_cost
        return self.value

    def state_dict(self) -> dict:
        return {"value": self.value, "integral": self.integral, "previous": self.previous_cost}

    def load_state_dict(self, state: dict) -> None:
        self.value = float(state["value"])
        self.integral = float(state["integral"])
        self.previous_cost = state["previous"]


def _mlp(sizes: list[int], out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.Tanh()]
    layers.append(nn.Linear(sizes[-1], out))
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Gaussian policy with a state-independent log-std, plus reward and cost value networks."""

    def __init__(self, obs_dim: int, act_dim: int, config: PPOLagConfig) -> None:
        super().__init__()
        sizes = [obs_dim, *config.hidden]
        self.mean = _mlp(sizes, act_dim)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(config.init_log_std)))
        self.value_reward = _mlp(sizes, 1)
        self.value_cost = _mlp(sizes, 1)
        # Small last layer: initial actions near 0 with the chosen sigma (a common PPO choice).
        with torch.no_grad():
            self.mean[-1].weight.mul_(0.01)
            self.mean[-1].bias.zero_()

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.mean(obs), self.log_std.exp())

    def values(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.value_reward(obs).squeeze(-1), self.value_cost(obs).squeeze(-1)


@dataclass
class Rollout:
    """One update's worth of on-policy data, arrays of shape (T, n_envs[, dim])."""

    obs: np.ndarray
    """Normalised observations the policy saw."""
    actions: np.ndarray
    """Unclipped Gaussian samples (their log-prob is what PPO needs)."""
    log_probs: np.ndarray
    rewards: np.ndarray
    """Rewards, with gamma * V(final obs) added on truncated (not terminated) steps."""
    costs: np.ndarray
    """Costs, bootstrapped the same way."""
    dones: np.ndarray
    """Episode ended after this step (terminated or truncated)."""
    values_reward: np.ndarray
    values_cost: np.ndarray
    last_value_reward: np.ndarray
    """V(obs) after the last step, shape (n_envs,): bootstraps the unfinished episodes."""
    last_value_cost: np.ndarray


def gae(rewards, values, dones, last_value, gamma: float, lam: float):
    """Generalised advantage estimates and value targets over a (T, n_envs) rollout."""
    steps = rewards.shape[0]
    advantages = np.zeros_like(rewards, dtype=np.float64)
    running = np.zeros(rewards.shape[1], dtype=np.float64)
    next_value = last_value.astype(np.float64)
    for t in range(steps - 1, -1, -1):
        alive = 1.0 - dones[t].astype(np.float64)
        delta = rewards[t] + gamma * next_value * alive - values[t]
        running = delta + gamma * lam * alive * running
        advantages[t] = running
        next_value = values[t]
    return advantages, advantages + values


class PPOLagrangian:
    """The learner: acts on raw observations, updates from a `Rollout` at a given cost limit."""

    def __init__(self, obs_dim: int, act_dim: int, config: PPOLagConfig, seed: int = 0) -> None:
        self.config = config
        torch.manual_seed(seed)
        self.model = ActorCritic(obs_dim, act_dim, config)
        self.optimiser = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.obs_rms = RunningMeanStd(obs_dim)
        self.lagrangian = Lagrangian(config)

    @property
    def lagrange_multiplier(self) -> float:
        return self.lagrangian.value

    def normalise(self, obs: np.ndarray, update: bool = False) -> np.ndarray:
        if update:
            self.obs_rms.update(obs)
        return self.obs_rms.normalise(obs, self.config.obs_clip)

    @torch.no_grad()
    def act(self, obs_norm: np.ndarray):
        """Sample actions for normalised observations: (actions, log_probs, v_reward, v_cost)."""
        obs_t = torch.as_tensor(obs_norm, dtype=torch.float32)
        dist = self.model.distribution(obs_t)
        actions = dist.sample()
        log_probs = dist.log_prob(actions).sum(-1)
        v_r, v_c = self.model.values(obs_t)
        return actions.numpy(), log_probs.numpy(), v_r.numpy(), v_c.numpy()

    @torch.no_grad()
    def values(self, obs_norm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v_r, v_c = self.model.values(torch.as_tensor(obs_norm, dtype=torch.float32))
        return v_r.numpy(), v_c.numpy()

    def update(self, rollout: Rollout, episode_cost: float, cost_limit: float) -> dict[str, float]:
        """Move lambda towards the limit, then run the clipped PPO epochs on the rollout."""
        cfg = self.config
        lam = self.lagrangian.update(episode_cost, cost_limit)
        adv_r, ret_r = gae(
            rollout.rewards,
            rollout.values_reward,
            rollout.dones,
            rollout.last_value_reward,
            cfg.gamma,
            cfg.gae_lambda,
        )
        adv_c, ret_c = gae(
            rollout.costs,
            rollout.values_cost,
            rollout.dones,
            rollout.last_value_cost,
            cfg.cost_gamma,
            cfg.gae_lambda,
        )
        # Rescaled Lagrangian advantage (FSRL's `rescaling=True`): the step size stays bounded
        # however large lambda grows; the cost advantage is centred so lambda acts on its sign.
        adv_r = (adv_r - adv_r.mean()) / (adv_r.std() + 1e-8)
        adv_c = adv_c - adv_c.mean()
        advantage = (adv_r - lam * adv_c / (adv_c.std() + 1e-8)) / (1.0 + lam)

        def flat(x, dtype=torch.float32):
            x = np.asarray(x)
            return torch.as_tensor(x.reshape(-1, *x.shape[2:]), dtype=dtype)

        obs, actions, old_logp = flat(rollout.obs), flat(rollout.actions), flat(rollout.log_probs)
        adv, target_r, target_c = flat(advantage), flat(ret_r), flat(ret_c)
        n = obs.shape[0]
        stats = {"policy_loss": 0.0, "value_loss": 0.0, "approx_kl": 0.0, "epochs": 0.0}
        batches = 0
        for epoch in range(cfg.epochs):
            perm = torch.randperm(n)
            kls = []
            for start in range(0, n, cfg.minibatch):
                idx = perm[start : start + cfg.minibatch]
                dist = self.model.distribution(obs[idx])
                logp = dist.log_prob(actions[idx]).sum(-1)
                ratio = (logp - old_logp[idx]).exp()
                clipped = ratio.clamp(1.0 - cfg.clip, 1.0 + cfg.clip)
                policy_loss = -torch.min(ratio * adv[idx], clipped * adv[idx]).mean()
                v_r, v_c = self.model.values(obs[idx])
                value_loss = ((v_r - target_r[idx]) ** 2).mean() + (
                    (v_c - target_c[idx]) ** 2
                ).mean()
                entropy = dist.entropy().sum(-1).mean()
                loss = policy_loss + 0.5 * value_loss - cfg.entropy_coef * entropy
                self.optimiser.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                self.optimiser.step()
                with torch.no_grad():
                    kls.append(float(((ratio - 1.0) - (logp - old_logp[idx])).mean()))
                stats["policy_loss"] += float(policy_loss.detach())
                stats["value_loss"] += float(value_loss.detach())
                batches += 1
            stats["approx_kl"] = float(np.mean(kls))
            stats["epochs"] = float(epoch + 1)
            if stats["approx_kl"] > 1.5 * cfg.target_kl:
                break
        stats["policy_loss"] /= max(batches, 1)
        stats["value_loss"] /= max(batches, 1)
        stats["lagrange"] = lam
        stats["std"] = float(self.model.log_std.detach().exp().mean())
        return stats

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimiser": self.optimiser.state_dict(),
            "obs_rms": self.obs_rms.state_dict(),
            "lagrangian": self.lagrangian.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.obs_rms.load_state_dict(state["obs_rms"])
        self.lagrangian.load_state_dict(state["lagrangian"])


def linear_cost_limit(step: int, total: int, start: float, end: float, hold: float = 0.1) -> float:
    """DSRL-style schedule: hold `start` for the first `hold` of steps, move linearly to `end`
    over the middle, hold `end` for the last `hold`."""
    if total <= 0:
        return float(end)
    frac = (step / total - hold) / max(1.0 - 2.0 * hold, 1e-9)
    frac = float(np.clip(frac, 0.0, 1.0))
    return float(start + (end - start) * frac)
