"""BEAR-Lag: bootstrapping-error reduction (MMD support matching) with a PID-Lagrangian cost
penalty.

Paper: BEAR (Kumar, Fu, Tucker, Levine, "Stabilizing Off-Policy Q-Learning via Bootstrapping
Error Reduction", NeurIPS 2019) with the PID Lagrangian of Stooke et al. (ICML 2020), as
benchmarked by Liu et al., "Datasets and Benchmarks for Offline Safe RL" (DMLR 2024).
Code followed: osrl-lib 0.1.0 used as a library (`osrl.algorithms.BEARL`, `BEARLTrainer`),
settings from OSRL's `examples/configs/bearl_configs.py` and `examples/train/train_bearl.py`
(baselines.md 2.3.3).

Delayed policy start: `BEARL`'s constructor default is `start_update_policy_step=20000`, but
OSRL's training script passes its config value 0, so the actor optimises -Q from the first
step; that is our default. `alpha_lr` is the trainer's default 1e-3 (the script passes none).
BEAR-Lag runs 300k steps in OSRL, three times the other baselines.

Around osrl-lib: transition batches with OSRL's `done = terminals OR timeouts` and float64
rewards/costs scaled as OSRL's `TransitionDataset`; the update runs on a private, checkpointed
torch RNG stream; the checkpoint adds what osrl-lib keeps outside `state_dict()`: `log_alpha`,
the step counter `n_train_steps` (which gates the delayed start), the PID controller's
integral and previous error, and the four Adam states.

Evaluation: the deterministic action tanh(mean) of the squashed Gaussian actor, as OSRL's
`act(obs, deterministic=True)`. Deviations: runner batches instead of a DataLoader, the
suite's evaluator instead of `BEARLTrainer.evaluate`, a cost limit <= 0 is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from osrl.algorithms import BEARL, BEARLTrainer

from baselines.osrl_common import (
    MAX_ACTION,
    Q_LEARNING_OPTIMIZERS,
    OSRLAdapter,
    RecordingLogger,
    TorchRNGStream,
    actor_policy_fn,
    check_cost_limit,
    episode_len,
    load_pid_state,
    pid_state,
    transition_columns,
)
from benchmark.interface import (
    Batch,
    Policy,
    Stage,
    StatelessPolicy,
    TrainContext,
    TransitionSource,
)
from benchmark.validation import (
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Sizes,
)


@dataclass
class Config:
    steps: PositiveInt = 300_000
    """Gradient steps (OSRL `update_steps`: 300k for BEAR-Lag, 100k for the others)."""
    batch_size: PositiveInt = 512
    """Transitions per batch (OSRL `batch_size`)."""
    actor_lr: PositiveFloat = 1e-3
    """Adam learning rate of the actor (OSRL `actor_lr`)."""
    critic_lr: PositiveFloat = 1e-3
    """Adam learning rate of the reward and cost critics (OSRL `critic_lr`)."""
    vae_lr: PositiveFloat = 1e-3
    """Adam learning rate of the behaviour VAE (OSRL `vae_lr`)."""
    alpha_lr: PositiveFloat = 1e-3
    """Step size of the log-alpha (MMD multiplier) update (trainer default; not in the config)."""
    reward_scale: PositiveFloat = 0.1
    """Rewards are multiplied by this before the critic sees them (OSRL `reward_scale`)."""
    cost_scale: PositiveFloat = 1.0
    """Costs are multiplied by this before the cost critic sees them (OSRL `cost_scale`)."""
    a_hidden_sizes: Sizes = field(default_factory=lambda: [256, 256])
    """Hidden layers of the squashed Gaussian actor (OSRL config; constructor [128, 128])."""
    c_hidden_sizes: Sizes = field(default_factory=lambda: [256, 256])
    """Hidden layers of every Q network (OSRL config; constructor [128, 128])."""
    vae_hidden_sizes: PositiveInt = 400
    """Width of the VAE's hidden layers (OSRL config; constructor default 64)."""
    sample_action_num: PositiveInt = 10
    """Actor samples per next state in the critic targets (OSRL `sample_action_num`)."""
    gamma: Fraction = 0.99
    """Discount factor (OSRL `gamma`)."""
    tau: Fraction = 0.005
    """Polyak rate of the target networks (OSRL `tau`)."""
    beta: float = 0.5
    """Weight of the KL term of the VAE loss (OSRL `beta`)."""
    lmbda: Fraction = 0.75
    """Weight of the min in the soft clipped double-Q target (OSRL `lmbda`)."""
    mmd_sigma: PositiveFloat = 50.0
    """Width of the MMD kernel, on pre-tanh actions (OSRL `mmd_sigma`)."""
    target_mmd_thresh: NonNegativeFloat = 0.05
    """MMD level the log-alpha multiplier enforces (OSRL `target_mmd_thresh`)."""
    num_samples_mmd_match: PositiveInt = 10
    """Actor and VAE samples per state in the MMD estimate (OSRL `num_samples_mmd_match`)."""
    start_update_policy_step: NonNegativeInt = 0
    """Steps before the actor's loss includes -Q (OSRL config 0; constructor default 20000)."""
    kernel: Literal["gaussian", "laplacian"] = "gaussian"
    """MMD kernel, `gaussian` or `laplacian` (OSRL `kernel`)."""
    num_q: PositiveInt = 2
    """Q networks per head of the double reward critic (OSRL config; constructor default 1)."""
    num_qc: PositiveInt = 2
    """Q networks per head of the double cost critic (OSRL config; constructor default 1)."""
    pid: list[float] = field(default_factory=lambda: [0.1, 0.003, 0.001])
    """KP, KI, KD of the PID Lagrangian multiplier (OSRL `PID`)."""
    episode_len: NonNegativeInt = 0
    """OSRL `episode_len` (sets qc_thres); 0 = the task's horizon (OSRL's per-task value)."""


class BEARLag(OSRLAdapter):
    """OSRL's BEARL model and trainer, trained at one cost limit."""

    name = "bear_lag"
    optimizer_names = Q_LEARNING_OPTIMIZERS

    def __init__(self, config: Config, ctx: TrainContext):
        self.config = config
        self.device = ctx.device
        cost_limit = check_cost_limit(ctx.cost_limit, self.name)
        dataset = ctx.dataset
        self._source = TransitionSource(transition_columns(dataset))
        self.model = BEARL(
            state_dim=dataset.observations.shape[1],
            action_dim=dataset.actions.shape[1],
            max_action=MAX_ACTION,
            a_hidden_sizes=list(config.a_hidden_sizes),
            c_hidden_sizes=list(config.c_hidden_sizes),
            vae_hidden_sizes=config.vae_hidden_sizes,
            sample_action_num=config.sample_action_num,
            gamma=config.gamma,
            tau=config.tau,
            beta=config.beta,
            lmbda=config.lmbda,
            mmd_sigma=config.mmd_sigma,
            target_mmd_thresh=config.target_mmd_thresh,
            num_samples_mmd_match=config.num_samples_mmd_match,
            PID=list(config.pid),
            kernel=config.kernel,
            num_q=config.num_q,
            num_qc=config.num_qc,
            cost_limit=cost_limit,
            episode_len=episode_len(config.episode_len, ctx.task),
            start_update_policy_step=config.start_update_policy_step,
            device=str(ctx.device),
        )
        self.logger = RecordingLogger()
        self.trainer = BEARLTrainer(
            self.model,
            None,  # the env is only used by BEARLTrainer.evaluate, which the suite replaces
            logger=self.logger,
            actor_lr=config.actor_lr,
            critic_lr=config.critic_lr,
            alpha_lr=config.alpha_lr,
            vae_lr=config.vae_lr,
            reward_scale=config.reward_scale,
            cost_scale=config.cost_scale,
            device=str(ctx.device),
        )
        self.rng = TorchRNGStream(ctx.device)
        self.stages = (Stage("train", config.steps, config.batch_size),)

    def update(self, stage: str, batch: Batch) -> dict[str, float]:
        self._check_stage(stage)
        return self._offline_q_step(batch)

    def policy(self, cost_limit: float, num_envs: int) -> Policy:
        def deterministic(obs):
            return self.model._actor_forward(obs, True, False)[0]

        return StatelessPolicy(actor_policy_fn(deterministic, self.model, self.device))

    def _tensors(self):
        return {"log_alpha": self.model.log_alpha}

    def _extra_state(self) -> dict:
        return {
            "pid": pid_state(self.model.controller),
            "n_train_steps": int(self.model.n_train_steps),
        }

    def _load_extra_state(self, state: dict) -> None:
        load_pid_state(self.model.controller, state["pid"], self.device)
        self.model.n_train_steps = int(state["n_train_steps"])
