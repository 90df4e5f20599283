"""CPQ: constraints penalized Q-learning.

Paper: Xu, Zhan, Zhu, "Constraints Penalized Q-learning for Safe Offline Reinforcement
Learning" (AAAI 2022), as benchmarked by Liu et al., "Datasets and Benchmarks for Offline Safe
RL" (DMLR 2024).
Code followed: osrl-lib 0.1.0 used as a library (`osrl.algorithms.CPQ`, `CPQTrainer`),
settings from OSRL's `examples/configs/cpq_configs.py` (baselines.md 2.3.4): actor lr 1e-4,
critic and VAE lr 1e-3, alpha lr 1e-4, VAE beta 0.5 (the constructor's default is 1.5),
`q_thres = kappa (1 - gamma^T) / (1 - gamma) / T` and `qc_thres = 1.5 q_thres`.

Around osrl-lib: transition batches with OSRL's `done = terminals OR timeouts` (the reward
backup masks with it; the cost backup, as in OSRL, does not) and float64 rewards/costs scaled
as OSRL's `TransitionDataset`; the update runs on a private, checkpointed torch RNG stream
(policy samples for the OOD penalty, VAE noise); the checkpoint adds `log_alpha` and the four
Adam states to the model's state dict.

Evaluation: the deterministic action tanh(mean) of the squashed Gaussian actor, as OSRL's
`act(obs, deterministic=True)`. Deviations: runner batches instead of a DataLoader, the
suite's evaluator instead of `CPQTrainer.evaluate`, a cost limit <= 0 is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from osrl.algorithms import CPQ as OSRLCPQ
from osrl.algorithms import CPQTrainer

from baselines.osrl_common import (
    MAX_ACTION,
    Q_LEARNING_OPTIMIZERS,
    OSRLAdapter,
    RecordingLogger,
    TorchRNGStream,
    actor_policy_fn,
    check_cost_limit,
    episode_len,
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
    steps: PositiveInt = 100_000
    """Gradient steps (OSRL `update_steps`)."""
    batch_size: PositiveInt = 512
    """Transitions per batch (OSRL `batch_size`)."""
    actor_lr: PositiveFloat = 1e-4
    """Adam learning rate of the actor (OSRL `actor_lr`)."""
    critic_lr: PositiveFloat = 1e-3
    """Adam learning rate of the reward and cost critics (OSRL `critic_lr`)."""
    alpha_lr: PositiveFloat = 1e-4
    """Step size of the log-alpha (OOD cost penalty) update (OSRL `alpha_lr`)."""
    vae_lr: PositiveFloat = 1e-3
    """Adam learning rate of the VAE that scores out-of-distribution actions (OSRL `vae_lr`)."""
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
    """Policy samples per state for the OOD cost penalty (OSRL `sample_action_num`)."""
    gamma: Fraction = 0.99
    """Discount factor (OSRL `gamma`)."""
    tau: Fraction = 0.005
    """Polyak rate of the target networks (OSRL `tau`)."""
    beta: float = 0.5
    """Weight of the KL term of the VAE loss (OSRL config; constructor default 1.5)."""
    num_q: PositiveInt = 2
    """Q networks of the reward critic ensemble, min over them (OSRL config; constructor 1)."""
    num_qc: PositiveInt = 2
    """Q networks of the cost critic ensemble, min over them (OSRL config; constructor 1)."""
    qc_scalar: NonNegativeFloat = 1.5
    """qc_thres = qc_scalar * q_thres, the OOD penalty's target (OSRL `qc_scalar`)."""
    episode_len: NonNegativeInt = 0
    """OSRL `episode_len` (sets q_thres); 0 = the task's horizon (OSRL's per-task value)."""


class CPQ(OSRLAdapter):
    """OSRL's CPQ model and trainer, trained at one cost limit."""

    name = "cpq"
    optimizer_names = Q_LEARNING_OPTIMIZERS

    def __init__(self, config: Config, ctx: TrainContext):
        self.config = config
        self.device = ctx.device
        cost_limit = check_cost_limit(ctx.cost_limit, self.name)
        dataset = ctx.dataset
        self._source = TransitionSource(transition_columns(dataset))
        self.model = OSRLCPQ(
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
            num_q=config.num_q,
            num_qc=config.num_qc,
            qc_scalar=config.qc_scalar,
            cost_limit=cost_limit,
            episode_len=episode_len(config.episode_len, ctx.task),
            device=str(ctx.device),
        )
        self.logger = RecordingLogger()
        self.trainer = CPQTrainer(
            self.model,
            None,  # the env is only used by CPQTrainer.evaluate, which the suite replaces
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
