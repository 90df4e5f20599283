"""DRCORL's safe adaptation: beta schedule, switching rule, gradient projection, Lagrangian.

Paper: Guo et al., "Don't Trade Off Safety: Diffusion Regularization for Constrained Offline
RL" (NeurIPS 2025). Follows `reference/drcorl.md` §1.3 C4-C7 (`safe_policy.py:15-24,85-153`,
`Agents/SRPO.py:38,65-69,314-322`, `utils/utils.py:403-434`):
- beta_k = 0.01 sqrt(k) multiplies the Q-gradient (the KL weight stays 1);
- k <= warm-up: reward step; C <= limit - h-: reward step; C <= limit + h+: "both";
  else cost step (checked in that order);
- "both" combines the two directions by the poster's projection: if g_r . g_c < 0 each is
  projected onto the normal plane of the other and the two are averaged, else plain average;
- the PID Lagrangian lambda = relu(KP relu(e) + KI I + KD D), e = mean Qc - threshold,
  I <- relu(I + e), D = relu(e - e_prev).

- the code's best-checkpoint rule (`safe_policy.py:171-176`): keep the policy when the online
  episode's normalised cost C/(kappa+0.1) < cost_limit and its normalised return is above the
  best so far (which starts at 0, so a return <= R_min is never kept).

Deviations: separate h+ and h- (the code has one symmetric slack; defaults equal it); the PID
threshold defaults to the one the authors intended, kappa (1-gamma^L)/((1-gamma) L)
(`pid_threshold="horizon"`); their code ends up using 0.0 (`"zero"`, drcorl.md §1.3 C6, §4 #9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

BRANCHES = ("reward", "both", "cost")
BETA_SCHEDULES = ("sqrt", "sqrt_offset", "constant")


def beta_at(k: int, schedule: str, coef: float) -> float:
    """The Q-gradient weight at adaptation iteration k (0-based).

    `sqrt`: coef sqrt(k) (the code, coef 0.01); `sqrt_offset`: sqrt(0.01 k + 0.04) and
    `constant`: coef (the notebook's beta ablation, `scripts/plot.ipynb` cell 10).
    """
    if schedule == "sqrt":
        return coef * math.sqrt(k)
    if schedule == "sqrt_offset":
        return math.sqrt(0.01 * k + 0.04)
    if schedule == "constant":
        return coef
    raise ValueError(f"unknown beta schedule {schedule!r}; choose one of {BETA_SCHEDULES}")


def choose_branch(
    k: int,
    cost: float,
    warmup: int,
    threshold: float,
    slack_lower: float,
    slack_upper: float,
) -> str:
    """Which policy step iteration k takes, given the normalised cost estimate `cost`."""
    if k <= warmup:
        return "reward"  # the authors' "explore" phase ignores cost (`safe_policy.py:115`)
    if cost <= threshold - slack_lower:
        return "reward"
    if cost <= threshold + slack_upper:
        return "both"
    return "cost"


def project_conflicting(g_r: torch.Tensor, g_c: torch.Tensor) -> torch.Tensor:
    """The poster's combination of two flat directions (`pcgrad`, `safe_policy.py:15-24`).

    Conflicting (g_r . g_c < 0): each is projected onto the normal plane of the other,
    1/2 [(g_r - (g_r.g_c/|g_c|^2) g_c) + (g_c - (g_r.g_c/|g_r|^2) g_r)], which has a
    non-negative inner product with both. Otherwise their mean.
    """
    dot = torch.dot(g_r, g_c)
    if dot >= 0:
        return 0.5 * (g_r + g_c)
    # dot < 0 implies both norms are non-zero.
    r_perp = g_r - dot / torch.dot(g_c, g_c) * g_c
    c_perp = g_c - dot / torch.dot(g_r, g_r) * g_r
    return 0.5 * (r_perp + c_perp)


PID_THRESHOLDS = ("horizon", "zero")


def pid_threshold(cost_limit: float, gamma: float, horizon: int, mode: str = "horizon") -> float:
    """The PID's target for mean Qc: `horizon` is the per-state Q_c level of an episode cost
    kappa spread evenly over L steps (what the authors intended); `zero` is the 0.0 their code
    ends up with (it reads `args.qc_thres` before setting it, `safe_policy.py:78-83,254`)."""
    if mode == "zero":
        return 0.0
    if mode == "horizon":
        return cost_limit * (1.0 - gamma**horizon) / ((1.0 - gamma) * horizon)
    raise ValueError(f"unknown pid_threshold {mode!r}; choose one of {PID_THRESHOLDS}")


@dataclass
class OnlineBest:
    """The code's online checkpoint rule (`safe_policy.py:171-176`, drcorl.md §1.3 C4.7).

    After an iteration's online episode, the policy is kept when the episode's normalised
    cost is below `threshold` (strictly) and its normalised return beats the best kept so
    far; the best starts at 0, so an episode with normalised return <= 0 is never kept."""

    threshold: float
    best_reward: float = 0.0

    def consider(self, normalised_reward: float, normalised_cost: float) -> bool:
        """Whether this episode's policy becomes the new candidate (and remember it if so)."""
        if normalised_cost < self.threshold and normalised_reward > self.best_reward:
            self.best_reward = float(normalised_reward)
            return True
        return False

    def state_dict(self) -> dict:
        return {"best_reward": self.best_reward}

    def load_state_dict(self, state: dict) -> None:
        self.best_reward = float(state["best_reward"])


@dataclass
class PIDLagrangian:
    """The authors' PID controller on e = mean_batch Qc(s, pi(s)) - threshold."""

    kp: float
    ki: float
    kd: float
    integral: float = 0.0
    prev_error: float = 0.0

    def update(self, error: float) -> float:
        self.integral = max(0.0, self.integral + error)
        derivative = max(0.0, error - self.prev_error)
        self.prev_error = error
        return max(0.0, self.kp * max(0.0, error) + self.ki * self.integral + self.kd * derivative)

    def state_dict(self) -> dict:
        return {"integral": self.integral, "prev_error": self.prev_error}

    def load_state_dict(self, state: dict) -> None:
        self.integral = float(state["integral"])
        self.prev_error = float(state["prev_error"])


def code_adam_deltas(
    opt: torch.optim.Optimizer, params: list[torch.Tensor], g_r: torch.Tensor, g_c: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two flat parameter deltas the code's "both" step would take from `opt`'s current
    Adam state (`safe_policy.py:126-145`): delta_r from one Adam step on g_r, then delta_c from
    the next step on g_c, whose moments and step count the first step has already advanced.
    Computed, not taken: for logging their cosine whichever manipulation the run uses."""
    group = opt.param_groups[0]
    (beta1, beta2), eps, lr = group["betas"], group["eps"], group["lr"]
    m = torch.cat([_adam_state(opt, p, "exp_avg").reshape(-1) for p in params])
    v = torch.cat([_adam_state(opt, p, "exp_avg_sq").reshape(-1) for p in params])
    step = float(opt.state[params[0]]["step"]) if opt.state.get(params[0]) else 0.0
    deltas = []
    for g in (g_r, g_c):
        step += 1.0
        m = beta1 * m + (1.0 - beta1) * g
        v = beta2 * v + (1.0 - beta2) * g * g
        denom = (v / (1.0 - beta2**step)).sqrt() + eps
        deltas.append(-lr / (1.0 - beta1**step) * m / denom)
    return deltas[0], deltas[1]


def _adam_state(opt: torch.optim.Optimizer, p: torch.Tensor, key: str) -> torch.Tensor:
    state = opt.state.get(p)
    return state[key].detach() if state else torch.zeros_like(p)
