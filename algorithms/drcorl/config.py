"""DRCORL's options (`Config`) and the combinations refused before training.

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
- The cost step follows the IQL cost critic as the code does; `cost_guidance="policy_eval"`
  (ours, not a default) follows the policy-evaluation ensemble the switching rule reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from benchmark.errors import ConfigError
from benchmark.interface import TrainContext
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

    cost_guidance: Literal["iql", "policy_eval"] = "iql"
    """The critic whose action-gradient a cost step, and the cost half of a "both" step,
    follow, and that the PID Lagrangian reads: `iql` = the IQL cost critic (the code; it is
    trained toward the behaviour data's continuation and barely sees the current policy);
    `policy_eval` = the policy-evaluation ensemble the switching rule reads (needs
    cost_signal=policy_eval), as mean + pe_std_coef x std over its members' targets, so the
    cost the step lowers is the cost the rule measured. Under `policy_eval` the PID reads the
    ensemble whatever `pid_signal` says."""

    ID_NEUTRAL_DEFAULTS: ClassVar[dict[str, str]] = {"pid_signal": "critic", "cost_guidance": "iql"}
    """Options added after records existed, left out of the run id at these earlier values."""


def check_config(config: Config, ctx: TrainContext) -> None:
    """Refuse option combinations that cannot run, before any stage trains."""
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
    if config.cost_guidance == "policy_eval" and not (
        config.switching == "critic" and config.cost_signal == "policy_eval"
    ):
        raise ConfigError(
            "drcorl: cost_guidance=policy_eval follows the policy-evaluation ensemble, which only "
            "switching=critic with cost_signal=policy_eval trains; set those or cost_guidance=iql"
        )
    if config.checkpoint_selection == "online_best" and config.switching != "online":
        raise ConfigError(
            "drcorl: checkpoint_selection=online_best selects on the online episodes of "
            "switching=online; set switching=online (protocol paper) or checkpoint_selection=final"
        )


STRUCTURE = (
    "score_hidden",
    "score_blocks",
    "score_expansion",
    "score_dropout",
    "score_fourier_dim",
    "score_fourier_scale",
    "score_cond_dim",
    "critic_hidden",
    "critic_layers",
    "policy_hidden",
    "policy_layers",
    "pe_members",
    "switching",
    "cost_signal",
    "holdout_fraction",
)
"""Options that shape every saved state (network sizes, whether the ensemble exists) or the
training data itself (offline switching holds trajectories out of every stage's batches)."""
STAGE_READS: dict[str, tuple[str, ...]] = {
    "behavior": (
        "behavior_steps",
        "behavior_batch_size",
        "behavior_lr",
        "behavior_weight_decay",
        "sde_beta_min",
        "sde_beta_max",
        "behavior_speedup",
    ),
    "critic": (
        "critic_steps",
        "critic_batch_size",
        "critic_pretrain_lr",
        "expectile",
        "gamma",
        "polyak",
        "cost_critic_batch_mean_bug",
        "reward_rescale",
    ),
    "extract": ("extract_steps", "policy_batch_size", "policy_lr", "policy_lr_cosine_steps"),
    "cost_eval": ("pe_init_steps", "pe_batch_size", "pe_lr", "pe_polyak"),
}
"""The options each shared stage reads beyond STRUCTURE (Stage.reads): the runner keys the
artifact after a stage by these and the earlier stages' options, so variants that differ
only in adaptation share phases A, B and C-a (issue 29)."""
ADAPT_ONLY = (
    "adapt_iterations",
    "warmup_iterations",
    "beta_schedule",
    "beta_coef",
    "cost_threshold",
    "slack_lower",
    "slack_upper",
    "checkpoint_selection",
    "cost_estimate_states",
    "cost_estimate_from",
    "cost_estimate_ema",
    "pe_std_coef",
    "pe_steps_per_iteration",
    "manipulation",
    "lagrangian",
    "lagrangian_lambda",
    "pid_kp",
    "pid_ki",
    "pid_kd",
    "pid_threshold",
    "pid_signal",
    "q_lr",
    "v_lr",
    "cost_guidance",
)
"""Options only the (unshared) `adapt` stage reads; every Config field is in exactly one of
STRUCTURE, STAGE_READS or this (tested), so a new option cannot silently join no key."""


def reads(stage: str) -> tuple[str, ...]:
    """What shared stage `stage` reads: STRUCTURE and its own options."""
    return STRUCTURE + STAGE_READS[stage]
