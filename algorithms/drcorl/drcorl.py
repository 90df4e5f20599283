"""DRCORL: diffusion-regularised constrained offline RL, as its authors' code runs it.

Paper: Guo et al., "Don't Trade Off Safety: Diffusion Regularization for Constrained Offline
RL" (NeurIPS 2025). Code followed: `JamesJunyuGuo/DRCORL` @ 6535c55 as described in
`reference/drcorl.md` (§1 pipeline, §2 hyperparameters, §4 which behaviour we follow).

Stages (each `update` is one step / one iteration):
- `behavior` (phase A): VP-SDE diffusion model of the behaviour policy (diffusion.py).
- `critic` (phase B): IQL reward and cost critics (critics.py).
- `extract` (phase C-a, the authors' "pretrain"): the tanh policy trained by the score
  regulariser alone ("bc" loss, extraction.py).
- `adapt` (phase C-b): per iteration k, beta_k = 0.01 sqrt(k); a cost estimate; one TD step of
  both critics on the current policy; then a reward, "both" (projected) or cost step
  (adaptation.py). Iterations k <= `warmup_iterations` are reward steps: the authors' 500
  "explore" iterations belong to this loop, not to `extract`.
The first three stages do not depend on the cost limit and are shared across cost limits.

Deviations from the code (each a Config option where the code's behaviour is kept too;
profile `paper-code` sets every one of them back to the code's):
- The switching signal is offline by default (`switching="critic"`), from one of two
  estimates of L (1-gamma) mean_s Q_c(s, pi(s)) / kappa: `cost_signal="iql"` reads it off the
  IQL cost critic that also guides the policy (the code's unused `offline_evaluate_cost`);
  `cost_signal="policy_eval"` off a separate ensemble that evaluates the current policy
  (cost_eval.py). With `holdout_fraction` > 0 a fraction of whole trajectories is held out of
  every training batch and the estimate is read on their states. The code's one online
  episode per iteration is `switching="online"`: only under a protocol that allows
  interaction (`paper`), and then each adaptation iteration asks the runner for one episode
  through `ctx.rollout` (the runner runs it and counts its environment steps).
- No best-checkpoint selection by default: the final iterate is reported. The code's rule
  (keep the best single-episode online checkpoint with C/(kappa+0.1) < 1, drcorl.md §3) is
  `checkpoint_selection="online_best"`: the policy is offered to the runner as a candidate,
  which the runner evaluates on the fixed episodes beside the final iterate.
- "both" projects raw gradients and takes one Adam step (the poster); the code's projection
  of two Adam parameter deltas is `manipulation="adam_delta"`. Every "both" iteration logs
  the cosine of both (`cos_grad`, `cos_adam_delta`).
- Per-sample cost targets in IQL; the code's batch-mean bug is `cost_critic_batch_mean_bug`.
- The PID Lagrangian uses the threshold the authors intended (`pid_threshold="horizon"`);
  the code's effective 0.0 is `pid_threshold="zero"` (drcorl.md §1.3 C6, §4 #9). Its error
  reads the IQL cost critic as the code does; `pid_signal="policy_eval"` (ours, not a default)
  reads the policy-evaluation ensemble instead.
- Minibatches are drawn i.i.d. by the runner (the code cycles a permutation); phase B runs
  `critic_steps` (the code trains 1M and loads the 500k checkpoint).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch

from algorithms.drcorl.adaptation import (
    OnlineBest,
    PIDLagrangian,
    beta_at,
    choose_branch,
    code_adam_deltas,
    pid_threshold,
    project_conflicting,
)
from algorithms.drcorl.cost_eval import (
    CostEnsemble,
    combine,
    episode_cost_estimates,
    estimate_states,
    holdout_split,
    policy_eval_step,
)
from algorithms.drcorl.critics import Critic, iql_update, td_update
from algorithms.drcorl.diffusion import VPSDE, BehaviorLoss, ScoreNet, sample
from algorithms.drcorl.extraction import DiracPolicy, numpy_actor, q_guidance, surrogate_loss
from benchmark.data.dataset import Dataset
from benchmark.errors import ConfigError
from benchmark.interface import (
    Batch,
    Stage,
    StatelessPolicy,
    TrainContext,
    TransitionSource,
    check_stage,
    torch_actor,
    transition_columns,
    unknown_stage,
)
from benchmark.validation import (
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)


@dataclass
class Config:
    # --- phase A: diffusion behaviour model -------------------------------------------------
    behavior_steps: PositiveInt = 2_000_000
    """Gradient steps of the diffusion model (200 epochs x 10k, `safe_behavior.py:22,33`)."""
    behavior_batch_size: PositiveInt = 2048
    """Minibatch of the diffusion model (`safe_behavior.py:34`)."""
    behavior_lr: PositiveFloat = 3e-4
    """AdamW learning rate of the diffusion model (`Agents/SRPO.py:411-413`)."""
    behavior_weight_decay: NonNegativeFloat = 0.01
    """AdamW weight decay (PyTorch's default, which the code inherits)."""
    sde_beta_min: PositiveFloat = 0.1
    """VP-SDE beta(0) (`utils/utils.py:155`)."""
    sde_beta_max: PositiveFloat = 20.0
    """VP-SDE beta(1) (`safe_behavior.py:101`)."""
    score_hidden: PositiveInt = 256
    """Width of the score network's ResNet trunk (`Agents/model.py:352-402`)."""
    score_blocks: PositiveInt = 3
    """Number of LayerNorm-ResNet blocks (`actor_blocks=3`, `utils/utils.py:181`)."""
    score_expansion: PositiveInt = 4
    """Width multiplier inside each ResNet block (256 -> 1024 -> 256)."""
    score_dropout: Fraction = 0.1
    """Dropout at the start of each ResNet block (active while training phase A only)."""
    score_fourier_dim: PositiveInt = 64
    """Number of fixed Gaussian Fourier time features (32 sin + 32 cos)."""
    score_fourier_scale: PositiveFloat = 30.0
    """Standard deviation of the Fourier frequencies W."""
    score_cond_dim: PositiveInt = 128
    """Width of the time-embedding MLP 64 -> 128 -> 128."""
    behavior_speedup: Literal["eager", "compile", "bf16", "compile+bf16"] = "eager"
    """How the behaviour step runs (diffusion.BehaviorLoss): `eager` (plain PyTorch, the
    reference), `compile` (torch.compile of loss + network), `bf16` (bfloat16 autocast of the
    network), `compile+bf16`. Same noise draws in every variant. Default eager: no variant has
    been measured on a GPU yet (`make bench` section `gpu` times them and checks the loss curve
    against eager's seed noise; blocked: no GPU available), so none is known to be faster."""
    # --- phase B: IQL critics ---------------------------------------------------------------
    critic_steps: PositiveInt = 500_000
    """IQL steps (the code trains 1M but phase C loads the 500k checkpoint, epoch 50)."""
    critic_batch_size: PositiveInt = 256
    """IQL minibatch (`safe_critic.py:24`)."""
    critic_pretrain_lr: PositiveFloat = 3e-4
    """Adam lr of Q and V in phase B (no lr flags are passed there, so the 3e-4 default)."""
    critic_hidden: PositiveInt = 256
    """Hidden width of the twin Q and V MLPs."""
    critic_layers: PositiveInt = 2
    """Hidden layers of the twin Q and V MLPs (`q_layer=2`)."""
    expectile: Fraction = 0.7
    """IQL expectile tau of the V loss."""
    gamma: Fraction = 0.99
    """Discount (hard-coded in `Agents/SRPO.py:707`)."""
    polyak: Fraction = 0.005
    """Polyak rate of the target twin Q after every critic step."""
    cost_critic_batch_mean_bug: bool = False
    """Reproduce the code's phase-B cost target mean_j c_j + gamma V(s'_i) (drcorl.md §1.2)."""
    # --- phase C: extraction and adaptation ------------------------------------------------
    policy_hidden: PositiveInt = 256
    """Hidden width of the tanh policy MLP."""
    policy_layers: PositiveInt = 2
    """Hidden layers of the tanh policy MLP (`policy_layer=2`)."""
    policy_lr: PositiveFloat = 3e-4
    """Adam lr of the policy (`--policy_lr`; tuned per task, drcorl.md §2.3)."""
    policy_lr_cosine_steps: PositiveInt = 10_000_000
    """T_max of the policy's cosine lr decay (n_policy_epochs 1000 x 10k; ~constant lr)."""
    policy_batch_size: PositiveInt = 256
    """Policy minibatch (`--policy_batchsize`); `adapt` draws twice this: half for the critics'
    TD step, half for the policy step (the code samples one fresh minibatch for each)."""
    q_lr: PositiveFloat = 3e-4
    """Adam lr of both critics' Q in phase C (fresh optimizers; `--q_lr`, per task)."""
    v_lr: PositiveFloat = 3e-4
    """Adam lr of both critics' V in phase C (`--v_lr`, per task)."""
    extract_steps: PositiveInt = 50_000
    """Score-regularised extraction steps before adaptation (pretrain_epochs 50 x 1000)."""
    adapt_iterations: PositiveInt = 2000
    """Adaptation iterations (`--train_epochs`, per task)."""
    warmup_iterations: NonNegativeInt = 500
    """Adaptation iterations k <= this take reward steps whatever the cost (`k <= 500`)."""
    beta_schedule: Literal["sqrt", "sqrt_offset", "constant"] = "sqrt"
    """`sqrt`: beta_k = beta_coef sqrt(k) (the code); `sqrt_offset`: sqrt(0.01k+0.04);
    `constant`: beta_coef (the notebook's beta ablation)."""
    beta_coef: NonNegativeFloat = 0.01
    """Coefficient of the beta schedule (0.01 in `safe_policy.py:86`)."""
    cost_threshold: PositiveFloat = 1.0
    """Normalised cost limit of the switching rule (`--cost_limit 1.0`)."""
    slack_lower: NonNegativeFloat = 0.5
    """h-: reward step while the normalised cost is <= cost_threshold - h- (`--slack_bound`)."""
    slack_upper: NonNegativeFloat = 0.5
    """h+: "both" step while it is <= cost_threshold + h+, cost step above."""
    switching: Literal["critic", "online"] = "critic"
    """`critic`: offline cost estimate from Qc (default); `online`: one env episode per
    iteration as in the code (needs protocol `paper`; marks the run as interacting)."""
    checkpoint_selection: Literal["final", "online_best"] = "final"
    """`final`: the final iterate only. `online_best` (needs switching=online): the code's
    rule -- after each iteration's online episode (another one after the update at k = 0 and
    k % 10 = 9, whose score then counts, `safe_policy.py:158-176`) offer the updated policy to
    the runner when C/(kappa+0.1) < cost_threshold and its normalised return is the best so
    far (from 0); the runner evaluates the last one offered beside the final iterate."""
    cost_estimate_states: PositiveInt = 2048
    """Size of the fixed set of dataset states the critic-based cost estimate averages over."""
    cost_estimate_from: Literal["dataset", "initial"] = "dataset"
    """Where those states come from: `dataset` (any transition, as the code's unused
    `offline_evaluate_cost`) or `initial` (first states of the dataset's trajectories, so the
    estimate is the policy's cost from the start distribution, not from states the behaviour
    policies reached, e.g. inside hazards)."""
    cost_estimate_ema: Fraction = 0.0
    """EMA weight on the previous critic estimate (0 = no smoothing)."""
    cost_signal: Literal["iql", "policy_eval"] = "policy_eval"
    """switching=critic: `iql` reads the estimate off the IQL cost critic that guides the
    policy (expectile 0.7, one TD step per iteration: barely depends on pi, issue 12);
    `policy_eval` off a separate cost-critic ensemble fitted to the current policy
    (cost_eval.py: `cost_eval` stage, then `pe_steps_per_iteration` TD steps per iteration)."""
    holdout_fraction: Fraction = 0.1
    """switching=critic: fraction of whole trajectories held out of every training batch; the
    estimate is read on their states (0 = use the training data, as the code would)."""
    pe_members: PositiveInt = 2
    """policy_eval: ensemble members (independent initialisations, shared batches)."""
    pe_std_coef: NonNegativeFloat = 0.0
    """policy_eval: the estimate is the members' mean + this x their std."""
    pe_init_steps: PositiveInt = 5000
    """policy_eval: TD steps of the `cost_eval` stage, on the extracted policy."""
    pe_steps_per_iteration: PositiveInt = 2
    """policy_eval: TD steps per adaptation iteration (on the current policy)."""
    pe_batch_size: PositiveInt = 256
    """policy_eval: minibatch of each TD step."""
    pe_lr: PositiveFloat = 1e-3
    """policy_eval: Adam lr of the ensemble."""
    pe_polyak: Fraction = 0.05
    """policy_eval: Polyak rate of each member's target (time constant 20 steps; the IQL
    critics' 0.005 lags the policy by ~20k steps)."""
    manipulation: Literal["gradient", "adam_delta"] = "gradient"
    """"both" step: `gradient` projects raw gradients, one Adam step (the poster);
    `adam_delta` projects two Adam parameter deltas (the code, `safe_policy.py:126-145`)."""
    lagrangian: Literal["none", "fixed", "pid"] = "none"
    """Cost/"both" steps use `none`: reg + beta<g_c,a>; `fixed`: reg - beta<g_r - lambda g_c, a>
    with lambda = lagrangian_lambda; `pid`: the same with a PID-controlled lambda."""
    lagrangian_lambda: NonNegativeFloat = 0.1
    """The fixed lambda (`Agents/SRPO.py:322`)."""
    pid_kp: NonNegativeFloat = 0.1
    """PID proportional gain (`Agents/SRPO.py:38`)."""
    pid_ki: NonNegativeFloat = 0.003
    """PID integral gain."""
    pid_kd: NonNegativeFloat = 0.001
    """PID derivative gain."""
    pid_threshold: Literal["horizon", "zero"] = "horizon"
    """PID target for mean Qc: `horizon` = kappa (1-gamma^L)/((1-gamma) L), what the authors
    intended (12.99 on CarRun); `zero` = the 0.0 their code ends up with (drcorl.md §1.3 C6)."""
    pid_signal: Literal["critic", "policy_eval"] = "critic"
    """What the PID's error reads, mean Q_c(s, pi(s)) on the batch minus its target: `critic`
    = the IQL cost critic that guides the policy (the code); `policy_eval` = the
    policy-evaluation ensemble's targets (needs cost_signal=policy_eval; issue 12: on CarRun
    the IQL critic's Q_c stayed below the target, so lambda stayed ~0 while the cost rose)."""
    reward_rescale: Literal["authors", "episodes", "none"] = "authors"
    """`authors`: r * 1000 / (max - min) of returns over segments ending at terminals or every
    1000 steps (drcorl.md §1.0); `episodes`: the same over true episodes; `none`."""

    ID_NEUTRAL_DEFAULTS: ClassVar[dict[str, str]] = {"pid_signal": "critic"}
    """Options added after records existed, left out of the run id at these earlier values."""


AUTHORS_RETURN_WINDOW = 1000
"""The code's hard-coded `max_episode_steps` in `return_range` (`utils/dataset.py:8-21`)."""
AUTHORS_RETURN_SCALE = 1000.0
COSINE_KEYS = (("cos_grad", "grad/cos"), ("cos_adam_delta", "grad/cos_adam_delta"))
"""(summary counter, logged metric) of the two cosines a "both" iteration measures."""
ONLINE_SEED_BASE = 2_000_000
"""Reset seed of the online-switching episode of iteration k: this + 100000 seed + k, above
the evaluation seeds (1e6 + i, benchmark.evaluate) so no evaluation episode is seen."""
PERIODIC_SEED_OFFSET = 50_000
"""online_best: the code's periodic evaluation episode after iteration k's update resets
with ONLINE_SEED_BASE + 100000 seed + this + k (k < 50000)."""


def _check_config(config: Config, ctx: TrainContext) -> None:
    if config.switching == "online" and ctx.rollout is None:
        raise ConfigError(
            "drcorl: switching=online rolls out the policy in the simulator during training, "
            "which only a protocol that allows interaction (`paper`) provides; "
            f"this run has protocol={ctx.protocol!r}. Use switching=critic (the offline "
            "default) or run with the paper protocol."
        )
    if config.pid_signal == "policy_eval" and not (
        config.switching == "critic" and config.cost_signal == "policy_eval"
    ):
        raise ConfigError(
            "drcorl: pid_signal=policy_eval reads the policy-evaluation ensemble, which only "
            "switching=critic with cost_signal=policy_eval trains; set those or pid_signal=critic"
        )
    if config.checkpoint_selection == "online_best" and config.switching != "online":
        raise ConfigError(
            "drcorl: checkpoint_selection=online_best selects on the online episodes of "
            "switching=online; set switching=online (protocol paper) or checkpoint_selection=final"
        )


def reward_scale(dataset: Dataset, mode: str) -> float:
    """The factor the code multiplies rewards by (drcorl.md §1.0): 1000 / (max - min return)."""
    if mode == "none":
        return 1.0
    if mode == "episodes":
        returns = dataset.episode_returns
    else:
        returns = _authors_segment_returns(dataset.rewards, dataset.terminals)
    spread = float(np.max(returns) - np.min(returns)) if len(returns) else 0.0
    # A dataset whose segments all have one return has nothing to rescale against.
    return AUTHORS_RETURN_SCALE / spread if spread > 0 else 1.0


def _authors_segment_returns(rewards: np.ndarray, terminals: np.ndarray) -> np.ndarray:
    """Returns of segments ending at a terminal or after 1000 steps, timeouts ignored; a
    trailing segment that ends neither way is not counted (the code's `return_range`)."""
    window = AUTHORS_RETURN_WINDOW
    rewards = rewards.astype(np.float64)
    ends = list(np.flatnonzero(terminals) + 1)
    trailing = len(rewards) not in ends
    out: list[np.ndarray] = []
    start = 0
    for i, end in enumerate([*ends, len(rewards)] if trailing else ends):
        chunk = rewards[start:end]
        full = len(chunk) // window
        out.append(chunk[: full * window].reshape(full, window).sum(axis=1))
        rest = chunk[full * window :]
        if len(rest) and not (trailing and i == len(ends)):
            out.append(np.array([rest.sum()]))
        start = end
    returns = np.concatenate(out) if out else np.zeros(0)
    return returns if len(returns) else np.array([rewards.sum()])


class DRCORL:
    """DRCORL's four stages behind the suite's `Algorithm` interface (see the module docs)."""

    cost_conditioned = False

    def __init__(self, config: Config, ctx: TrainContext):
        _check_config(config, ctx)
        self.config = config
        self.ctx = ctx
        self.device = torch.device(ctx.device)
        data = ctx.dataset
        obs_dim, act_dim = data.observations.shape[1], data.actions.shape[1]
        c = config
        # All of the algorithm's own randomness (diffusion times, noise, dropout) comes from
        # this generator, saved in state_dict, so a resumed run is bit-exact.
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(int(ctx.seed) * 7919 + 17)

        self.sde = VPSDE(c.sde_beta_min, c.sde_beta_max)
        self.score = ScoreNet(
            obs_dim,
            act_dim,
            hidden=c.score_hidden,
            blocks=c.score_blocks,
            expansion=c.score_expansion,
            dropout=c.score_dropout,
            fourier_dim=c.score_fourier_dim,
            cond_dim=c.score_cond_dim,
            fourier_scale=c.score_fourier_scale,
        ).to(self.device)
        self.score.eval()  # dropout only inside the behaviour update
        self.behavior_loss = BehaviorLoss(self.score, self.sde, c.behavior_speedup)
        self.reward_critic = Critic(obs_dim, act_dim, c.critic_hidden, c.critic_layers)
        self.cost_critic = Critic(obs_dim, act_dim, c.critic_hidden, c.critic_layers)
        self.reward_critic.to(self.device)
        self.cost_critic.to(self.device)
        self.actor = DiracPolicy(obs_dim, act_dim, c.policy_hidden, c.policy_layers)
        self.actor.to(self.device)

        adam = torch.optim.Adam
        self.opts: dict[str, torch.optim.Optimizer] = {
            "behavior": torch.optim.AdamW(
                self.score.parameters(), lr=c.behavior_lr, weight_decay=c.behavior_weight_decay
            ),
            "policy": adam(self.actor.parameters(), lr=c.policy_lr),
        }
        for name, critic in (("reward", self.reward_critic), ("cost", self.cost_critic)):
            # Phase C builds fresh optimizers with the run's q_lr / v_lr (drcorl.md §1.3 C0).
            self.opts[f"{name}_q_pre"] = adam(critic.q.parameters(), lr=c.critic_pretrain_lr)
            self.opts[f"{name}_v_pre"] = adam(critic.v.parameters(), lr=c.critic_pretrain_lr)
            self.opts[f"{name}_q"] = adam(critic.q.parameters(), lr=c.q_lr)
            self.opts[f"{name}_v"] = adam(critic.v.parameters(), lr=c.v_lr)

        # Held-out trajectories (offline switching only) never enter a training batch; the
        # cost estimate is read on their states. Without them, on the training data.
        offline = c.switching == "critic"
        self.pe_active = offline and c.cost_signal == "policy_eval"
        train_data, held = holdout_split(data, c.holdout_fraction if offline else 0.0, ctx.seed)
        self.reward_scale = reward_scale(train_data, c.reward_rescale)
        self.columns = transition_columns(train_data)
        self.columns["rewards"] = (train_data.rewards * self.reward_scale).astype(np.float32)
        # The fixed states of the offline cost estimate: drawn from the seed alone (never from
        # the runner's batches), identical for every cost limit.
        self.estimate_obs = estimate_states(
            held if held is not None else train_data,
            c.cost_estimate_states,
            c.cost_estimate_from,
            ctx.seed,
            self.device,
        )
        self.pe: CostEnsemble | None = None
        if self.pe_active:
            self.pe = CostEnsemble(obs_dim, act_dim, c.critic_hidden, c.critic_layers, c.pe_members)
            self.pe.to(self.device)
            self.opts["cost_eval"] = adam(self.pe.members.parameters(), lr=c.pe_lr)
        # Upper end of the per-step cost, for the ensemble's target clipping.
        self.max_cost = float(train_data.costs.max()) if len(train_data) else 1.0

        # Cost-limit-dependent values live here, never in state_dict (artifact cache).
        self.horizon = int(ctx.task.horizon)
        self.pid_target = pid_threshold(
            float(ctx.cost_limit), c.gamma, self.horizon, c.pid_threshold
        )
        self.selector = OnlineBest(c.cost_threshold)
        self.pid = PIDLagrangian(c.pid_kp, c.pid_ki, c.pid_kd)
        self.counters = {"policy_steps": 0, "adapt_k": 0, "reward": 0, "both": 0, "cost": 0}
        # Sums over every "both" iteration (the log samples only every log_every-th one).
        self.counters.update({"cos_grad_sum": 0.0, "cos_adam_delta_sum": 0.0})
        self.cost_ema: float | None = None
        self.last_online_return = 0.0
        self.last_estimates: dict[str, float] = {}

        stages = [
            Stage("behavior", c.behavior_steps, c.behavior_batch_size, True),
            Stage("critic", c.critic_steps, c.critic_batch_size, True),
            Stage("extract", c.extract_steps, c.policy_batch_size, True),
        ]
        # `adapt` draws [critic TD | policy step | pe_steps x ensemble TD] in one batch.
        adapt_batch = 2 * c.policy_batch_size
        if self.pe_active:
            # Depends on the extracted policy, not on the cost limit: shared like the others.
            stages.append(Stage("cost_eval", c.pe_init_steps, c.pe_batch_size, True))
            adapt_batch += c.pe_steps_per_iteration * c.pe_batch_size
        stages.append(Stage("adapt", c.adapt_iterations, adapt_batch, False))
        self.stages = tuple(stages)

    # ---------------------------------------------------------------- runner interface
    def batch_source(self, stage: str) -> TransitionSource:
        keys = {
            "behavior": ("obs", "actions"),
            "extract": ("obs",),
            "critic": ("obs", "actions", "rewards", "costs", "next_obs", "done"),
            "adapt": ("obs", "actions", "rewards", "costs", "next_obs", "done"),
        }
        if self.pe_active:
            keys["cost_eval"] = ("obs", "actions", "costs", "next_obs", "done")
        if stage not in keys:
            raise unknown_stage("drcorl", stage, list(keys))
        return TransitionSource({k: self.columns[k] for k in keys[stage]})

    def update(self, stage: str, batch: Batch) -> dict[str, float]:
        check_stage("drcorl", stage, self.stages)
        if stage == "behavior":
            return self._behavior_step(batch)
        if stage == "critic":
            return self._critic_step(batch)
        if stage == "extract":
            loss = self._policy_step(batch["obs"], guidance_fn=None, beta=0.0)
            return {"loss/bc": loss}
        if stage == "cost_eval" and self.pe_active:
            return {"loss/cost_eval_td": self._pe_step(batch)}
        if stage == "adapt":
            return self._adapt_iteration(batch)
        raise unknown_stage("drcorl", stage, self.stages)

    def policy(self, cost_limit: float, num_envs: int) -> StatelessPolicy:
        """The deterministic tanh actor (cost_limit unused: DRCORL trains one per limit)."""
        if self.device.type == "cpu":
            return StatelessPolicy(numpy_actor(self.actor))
        return StatelessPolicy(torch_actor(self.actor, self.device))

    def sample_behavior(self, obs: np.ndarray, n_steps: int = 25, seed: int = 0) -> np.ndarray:
        """Actions drawn from the diffusion behaviour model (one per row of `obs`)."""
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device).reshape(len(obs), -1)
        return sample(self.score, self.sde, x, n_steps, gen).cpu().numpy()

    def state_dict(self) -> dict:
        return {
            "score": self.score.state_dict(),
            "reward_critic": self.reward_critic.state_dict(),
            "cost_critic": self.cost_critic.state_dict(),
            "actor": self.actor.state_dict(),
            "opts": {k: o.state_dict() for k, o in self.opts.items()},
            "generator": self.gen.get_state(),
            "counters": dict(self.counters),
            "pid": self.pid.state_dict(),
            "cost_ema": self.cost_ema,
            "selector": self.selector.state_dict(),
            **({"cost_eval": self.pe.state_dict()} if self.pe is not None else {}),
        }

    def load_state_dict(self, state: dict) -> None:
        self.score.load_state_dict(state["score"])
        self.reward_critic.load_state_dict(state["reward_critic"])
        self.cost_critic.load_state_dict(state["cost_critic"])
        self.actor.load_state_dict(state["actor"])
        for key, opt in self.opts.items():
            opt.load_state_dict(state["opts"][key])
        self.gen.set_state(state["generator"].cpu())
        self.counters = dict(state["counters"])
        self.pid.load_state_dict(state["pid"])
        self.cost_ema = state["cost_ema"]
        self.selector.load_state_dict(state["selector"])
        if self.pe is not None:
            self.pe.load_state_dict(state["cost_eval"])

    # ---------------------------------------------------------------- stages
    def _behavior_step(self, batch: Batch) -> dict[str, float]:
        self.score.train()
        loss = self.behavior_loss(batch["obs"], batch["actions"], self.gen)
        self.score.eval()
        opt = self.opts["behavior"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss/diffusion": loss.item()}

    def _critic_step(self, batch: Batch) -> dict[str, float]:
        c = self.config
        out = {}
        for name, critic, signal, bug in (
            ("reward", self.reward_critic, batch["rewards"], False),
            ("cost", self.cost_critic, batch["costs"], c.cost_critic_batch_mean_bug),
        ):
            losses = iql_update(
                critic,
                self.opts[f"{name}_q_pre"],
                self.opts[f"{name}_v_pre"],
                batch,
                signal,
                c.gamma,
                c.expectile,
                c.polyak,
                batch_mean_bug=bug,
            )
            out.update({_loss_key(name, k): v.item() for k, v in losses.items()})
        return out

    def _set_policy_lr(self) -> None:
        c = self.config
        progress = min(self.counters["policy_steps"], c.policy_lr_cosine_steps)
        lr = c.policy_lr * 0.5 * (1.0 + math.cos(math.pi * progress / c.policy_lr_cosine_steps))
        for group in self.opts["policy"].param_groups:
            group["lr"] = lr
        self.counters["policy_steps"] += 1

    def _policy_step(self, obs: torch.Tensor, guidance_fn, beta: float) -> float:
        """One Adam step on the surrogate; `guidance_fn(actions)` gives the Q-gradient term."""
        actions = self.actor(obs)
        guidance = guidance_fn(actions) if guidance_fn is not None else None
        loss = surrogate_loss(actions, obs, self.score, self.sde, self.gen, guidance, beta)
        opt = self.opts["policy"]
        self._set_policy_lr()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    def _pe_step(self, batch: Batch) -> float:
        """One TD step of the policy-evaluation ensemble on the current policy."""
        with torch.no_grad():
            next_act = self.actor(batch["next_obs"])
        c = self.config
        opt = self.opts["cost_eval"]
        return policy_eval_step(self.pe, opt, batch, next_act, c.gamma, c.pe_polyak, self.max_cost)

    @torch.no_grad()
    def offline_estimates(self) -> dict[str, float]:
        """Both offline episode-cost estimates of the current policy on the estimate states:
        `iql` (the guiding cost critic's target twins) and, when active, `policy_eval` (the
        ensemble's combined estimate, with its members' mean and std)."""
        obs = self.estimate_obs
        act = self.actor(obs)
        scale = self.horizon * (1.0 - self.config.gamma)
        out = {"iql": scale * self.cost_critic.q_target.mean(obs, act).mean().item()}
        if self.pe is not None:
            members = episode_cost_estimates(self.pe(obs, act), self.horizon, self.config.gamma)
            combined, mean, std = combine(members, self.config.pe_std_coef)
            out.update({"policy_eval": combined, "policy_eval_mean": mean, "policy_eval_std": std})
        return out

    def _cost_estimate(self, k: int) -> float:
        """The raw (episode-cost) estimate the switching rule compares with the limit."""
        if self.config.switching == "online":
            return self._online_episode_cost(k)
        self.last_estimates = self.offline_estimates()
        raw = self.last_estimates[self.config.cost_signal if self.pe is not None else "iql"]
        ema = self.config.cost_estimate_ema
        if self.cost_ema is not None and ema > 0:
            raw = ema * self.cost_ema + (1.0 - ema) * raw
        self.cost_ema = raw
        return raw

    def _adapt_iteration(self, batch: Batch) -> dict[str, float]:
        c = self.config
        k = self.counters["adapt_k"]
        half = c.policy_batch_size
        critic_batch = {key: v[:half] for key, v in batch.items()}
        obs = batch["obs"][half : 2 * half]
        beta = beta_at(k, c.beta_schedule, c.beta_coef)
        pe_losses = []
        if self.pe_active:
            # The ensemble first catches up with the current policy, then is read.
            size = c.pe_batch_size
            for i in range(c.pe_steps_per_iteration):
                start = 2 * half + i * size
                pe_losses.append(
                    self._pe_step({key: v[start : start + size] for key, v in batch.items()})
                )
        raw_cost = self._cost_estimate(k)
        cost = self.ctx.normalise_cost(raw_cost, float(self.ctx.cost_limit))
        branch = choose_branch(
            k, cost, c.warmup_iterations, c.cost_threshold, c.slack_lower, c.slack_upper
        )
        out = {"adapt/beta": beta, "cost/estimate": cost, "cost/estimate_raw": raw_cost}
        if c.switching == "online":
            out["online/return"] = self.last_online_return
        out.update({f"cost/{name}": v for name, v in self.last_estimates.items()})
        if pe_losses:
            out["loss/cost_eval_td"] = float(np.mean(pe_losses))

        with torch.no_grad():
            next_act = self.actor(critic_batch["next_obs"])
        for name, critic, signal in (
            ("reward", self.reward_critic, critic_batch["rewards"]),
            ("cost", self.cost_critic, critic_batch["costs"]),
        ):
            losses = td_update(
                critic,
                self.opts[f"{name}_q"],
                self.opts[f"{name}_v"],
                critic_batch,
                signal,
                next_act,
                c.gamma,
                c.expectile,
                c.polyak,
            )
            out.update({_loss_key(name, key): v.item() for key, v in losses.items()})

        q_r = self.reward_critic.q_target

        def reward_guidance(a: torch.Tensor) -> torch.Tensor:
            return q_guidance(q_r, obs, a)

        cost_guidance = self._cost_guidance_fn(obs, out)
        if branch == "reward":
            out["loss/policy"] = self._policy_step(obs, reward_guidance, beta)
        elif branch == "cost":
            out["loss/policy"] = self._policy_step(obs, cost_guidance, beta)
        else:
            out.update(self._both_step(obs, reward_guidance, cost_guidance, beta))
            for key, logged in COSINE_KEYS:
                self.counters[f"{key}_sum"] = self.counters.get(f"{key}_sum", 0.0) + out[logged]
        self.counters[branch] += 1
        for b in ("reward", "both", "cost"):
            out[f"branch/{b}"] = float(branch == b)
            # Running totals, so a log sampled every N steps still shows every branch taken.
            out[f"branch/{b}_total"] = float(self.counters[b])
        self.counters["adapt_k"] = k + 1
        if c.checkpoint_selection == "online_best":
            self._consider_candidate(k, raw_cost, out)
        return out

    def _consider_candidate(self, k: int, episode_cost: float, out: dict[str, float]) -> None:
        """The code's checkpoint rule after iteration k's update (`safe_policy.py:158-176`):
        the scores are those of the episode run before the update, except at k = 0 and
        k % 10 = 9, where a periodic episode of the updated policy overwrites them."""
        episode_return = self.last_online_return
        if k == 0 or k % 10 == 9:
            seed = ONLINE_SEED_BASE + 100_000 * int(self.ctx.seed) + PERIODIC_SEED_OFFSET + k
            episode_return, episode_cost = self._online_episode(seed)
        norm_reward = float(self.ctx.task.normalise_reward(episode_return))
        norm_cost = self.ctx.normalise_cost(episode_cost, float(self.ctx.cost_limit))
        if self.selector.consider(norm_reward, norm_cost):
            self.ctx.offer_candidate(
                {
                    "return": float(episode_return),
                    "cost": float(episode_cost),
                    "normalised_reward": norm_reward,
                    "normalised_cost": float(norm_cost),
                    "iteration": float(k),
                }
            )
        out["online/best_reward"] = self.selector.best_reward

    def summary(self) -> dict[str, float]:
        """What the record carries beside the evaluation (runner: `algorithm_summary`): the
        final policy's offline cost estimates (episode cost, for calibration against the
        evaluated cost) and the fraction of adaptation iterations on each branch, over all
        of them and over those after the warm-up."""
        out: dict[str, float] = {}
        if self.config.switching == "critic":
            out.update({f"final_estimate_{k}": v for k, v in self.offline_estimates().items()})
            signal = self.config.cost_signal if self.pe is not None else "iql"
            out["final_estimate"] = out[f"final_estimate_{signal}"]
        total = max(self.counters["adapt_k"], 1)
        after = max(self.counters["adapt_k"] - self.config.warmup_iterations - 1, 0)
        warm = min(self.counters["adapt_k"], self.config.warmup_iterations + 1)
        for b in ("reward", "both", "cost"):
            out[f"branch_{b}"] = self.counters[b] / total
            # every warm-up iteration (k <= warmup) is a reward step
            n_after = self.counters[b] - (warm if b == "reward" else 0)
            out[f"branch_{b}_after_warmup"] = n_after / after if after else 0.0
        out["adapt_iterations"] = float(self.counters["adapt_k"])
        if self.counters["both"]:
            for key in ("cos_grad", "cos_adam_delta"):
                out[f"mean_{key}"] = self.counters.get(f"{key}_sum", 0.0) / self.counters["both"]
        return out

    def _cost_guidance_fn(self, obs: torch.Tensor, out: dict[str, float]):
        """The guidance of a cost step: -g_c, or g_r - lambda g_c under a Lagrangian."""
        c = self.config
        q_r, q_c = self.reward_critic.q_target, self.cost_critic.q_target
        if c.lagrangian == "none":
            return lambda a: -q_guidance(q_c, obs, a)

        def lagrangian_guidance(a: torch.Tensor) -> torch.Tensor:
            if c.lagrangian == "pid":
                with torch.no_grad():
                    error = self._pid_q(obs, a) - self.pid_target
                lam = self.pid.update(error)
            else:
                lam = c.lagrangian_lambda
            out["lagrangian/lambda"] = lam
            return q_guidance(q_r, obs, a) - lam * q_guidance(q_c, obs, a)

        return lagrangian_guidance

    def _pid_q(self, obs: torch.Tensor, act: torch.Tensor) -> float:
        """mean Q_c(s, a) over the batch, from the critic `pid_signal` names."""
        if self.config.pid_signal == "policy_eval":
            return self.pe.target(obs, act).mean().item()
        return self.cost_critic.q_target.mean(obs, act).mean().item()

    def _both_step(self, obs, reward_guidance, cost_guidance, beta: float) -> dict[str, float]:
        params = list(self.actor.parameters())
        opt = self.opts["policy"]
        if self.config.manipulation == "adam_delta":
            # The code: two Adam steps from the same start, combine the parameter deltas;
            # Adam's moments, step count and the lr schedule advance twice.
            start = [p.detach().clone() for p in params]
            loss_r = self._policy_step(obs, reward_guidance, beta)
            grad_r = _flat([p.grad for p in params])  # the raw gradient, kept after the step
            delta_r = _flat([p.detach() - s for p, s in zip(params, start)])
            _assign(params, start)
            loss_c = self._policy_step(obs, cost_guidance, beta)
            grad_c = _flat([p.grad for p in params])
            delta_c = _flat([p.detach() - s for p, s in zip(params, start)])
            combined = project_conflicting(delta_r, delta_c)
            _assign(params, _unflat(_flat(start) + combined, params))
            return {
                "loss/policy": 0.5 * (loss_r + loss_c),
                "grad/cos": _cos(grad_r, grad_c),
                "grad/cos_adam_delta": _cos(delta_r, delta_c),
            }
        actions = self.actor(obs)
        loss_r = surrogate_loss(
            actions, obs, self.score, self.sde, self.gen, reward_guidance(actions), beta
        )
        loss_c = surrogate_loss(
            actions, obs, self.score, self.sde, self.gen, cost_guidance(actions), beta
        )
        grad_r = _flat(torch.autograd.grad(loss_r, params, retain_graph=True))
        grad_c = _flat(torch.autograd.grad(loss_c, params))
        combined = project_conflicting(grad_r, grad_c)
        # What the code's two Adam steps would have combined, from the same Adam state.
        delta_r, delta_c = code_adam_deltas(opt, params, grad_r, grad_c)
        for p, g in zip(params, _unflat(combined, params)):
            p.grad = g
        self._set_policy_lr()
        opt.step()
        return {
            "loss/policy": 0.5 * (loss_r.item() + loss_c.item()),
            "grad/cos": _cos(grad_r, grad_c),
            "grad/cos_adam_delta": _cos(delta_r, delta_c),
        }

    def _online_episode_cost(self, k: int) -> float:
        """switching=online only: the cost of ONE episode of the current policy in the real
        environment, as the authors' code does every iteration (drcorl.md §0.2), run by the
        runner through `ctx.rollout` (only under a protocol that allows it, checked at
        construction)."""
        seed = ONLINE_SEED_BASE + 100_000 * int(self.ctx.seed) + k
        self.last_online_return, cost = self._online_episode(seed)
        return cost

    def _online_episode(self, seed: int) -> tuple[float, float]:
        """(return, cost) of one runner-run episode of the current policy."""
        episode = self.ctx.rollout(torch_actor(self.actor, self.device), [seed])
        return float(episode.returns[0]), float(episode.costs[0])


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflat(flat: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    out, i = [], 0
    for p in like:
        out.append(flat[i : i + p.numel()].view_as(p))
        i += p.numel()
    return out


def _assign(params: list[torch.Tensor], values: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for p, v in zip(params, values):
            p.copy_(v)


def _loss_key(critic: str, loss: str) -> str:
    """`loss/reward_q`, `loss/cost_v`: one critic's loss under the `group/name` convention."""
    return f"loss/{critic}_{loss.removesuffix('_loss')}"


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0).item())
