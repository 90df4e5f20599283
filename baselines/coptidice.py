"""COptiDICE: offline constrained RL by stationary distribution correction estimation.

Paper: Lee, Paduraru, Mankowitz, Heess, Precup, Kim, Guez, "COptiDICE: Offline Constrained
Reinforcement Learning via Stationary Distribution Correction Estimation" (ICLR 2022), as
benchmarked by Liu et al., "Datasets and Benchmarks for Offline Safe RL" (DMLR 2024).
Code followed: osrl-lib 0.1.0 used as a library (`osrl.algorithms.COptiDICE`,
`COptiDICETrainer`), settings from OSRL's `examples/configs/coptidice_configs.py` and
`examples/train/train_coptidice.py` (baselines.md 2.3.5).

Initial states: OSRL builds `TransitionDataset(state_init=True)`, whose `is_init` flag is 1 on
the first transition of every trajectory (`done` shifted by one, first row set), and passes
`get_dataset_states()` -- the fraction of initial states and the per-dimension std of
observations and actions -- to the model. `baselines.osrl_common.osrl_is_init` and
`dataset_state_stats` compute the same arrays with the same numpy calls (float32); every batch
carries `is_init`, sampled uniformly with the rest of the transition as in OSRL.

Around osrl-lib: `done = terminals OR timeouts` and float64 scaled rewards/costs as OSRL's
`TransitionDataset`; the update runs on a private, checkpointed torch RNG stream (the policy
extraction's observation/action noise); the checkpoint adds the softplus parameters `tau` and
`lmbda` (plain tensors outside the model's state dict) and all five Adam states.

Evaluation: the deterministic action tanh(mean), as OSRL's `act(obs, deterministic=True)`
(which ignores `max_action`; it is 1 on every task). Deviations: runner batches instead of a
DataLoader, the suite's evaluator, a cost limit <= 0 is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from osrl.algorithms import COptiDICE as OSRLCOptiDICE
from osrl.algorithms import COptiDICETrainer

from baselines.osrl_common import (
    MAX_ACTION,
    OSRLAdapter,
    RecordingLogger,
    TorchRNGStream,
    actor_policy_fn,
    check_cost_limit,
    dataset_state_stats,
    episode_len,
    scaled,
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
    """Adam learning rate of the weighted-BC actor (OSRL config; trainer default 1e-3)."""
    critic_lr: PositiveFloat = 1e-4
    """Adam learning rate of the nu and chi networks (OSRL config; trainer default 1e-3)."""
    scalar_lr: PositiveFloat = 1e-4
    """Adam learning rate of tau and lambda (OSRL config; trainer default 1e-3)."""
    reward_scale: PositiveFloat = 0.1
    """Rewards are multiplied by this before the losses see them (OSRL `reward_scale`)."""
    cost_scale: PositiveFloat = 1.0
    """Costs are multiplied by this before the losses see them (OSRL `cost_scale`)."""
    a_hidden_sizes: Sizes = field(default_factory=lambda: [256, 256])
    """Hidden layers of the squashed Gaussian actor (OSRL config; constructor [128, 128])."""
    c_hidden_sizes: Sizes = field(default_factory=lambda: [256, 256])
    """Hidden layers of the state-only nu and chi networks (OSRL config; constructor [128, 128])."""
    alpha: NonNegativeFloat = 0.5
    """Weight of the f-divergence regulariser (OSRL `alpha`)."""
    gamma: Fraction = 0.99
    """Discount factor (OSRL `gamma`)."""
    cost_ub_epsilon: NonNegativeFloat = 0.01
    """KL budget of the cost upper bound; 0 uses the plain weighted cost (OSRL)."""
    f_type: Literal["softchi", "chi2", "kl"] = "softchi"
    """f-divergence: `softchi`, `chi2` or `kl` (OSRL `f_type`)."""
    num_nu: PositiveInt = 2
    """Networks in the nu ensemble, min over them (OSRL config; constructor default 1)."""
    num_chi: PositiveInt = 2
    """Networks in the chi ensemble, min over them (OSRL config; constructor default 1)."""
    episode_len: NonNegativeInt = 0
    """OSRL `episode_len` (sets qc_thres); 0 = the task's horizon (OSRL's per-task value)."""


class COptiDICE(OSRLAdapter):
    """OSRL's COptiDICE model and trainer, trained at one cost limit."""

    name = "coptidice"
    optimizer_names = ("actor_optim", "nu_optim", "chi_optim", "lmbda_optim", "tau_optim")

    def __init__(self, config: Config, ctx: TrainContext):
        self.config = config
        self.device = ctx.device
        cost_limit = check_cost_limit(ctx.cost_limit, self.name)
        dataset = ctx.dataset
        self._source = TransitionSource(transition_columns(dataset, with_init=True))
        init_proportion, obs_std, act_std = dataset_state_stats(dataset)
        self.model = OSRLCOptiDICE(
            state_dim=dataset.observations.shape[1],
            action_dim=dataset.actions.shape[1],
            max_action=MAX_ACTION,
            f_type=config.f_type,
            init_state_propotion=init_proportion,
            observations_std=obs_std,
            actions_std=act_std,
            a_hidden_sizes=list(config.a_hidden_sizes),
            c_hidden_sizes=list(config.c_hidden_sizes),
            gamma=config.gamma,
            alpha=config.alpha,
            cost_ub_epsilon=config.cost_ub_epsilon,
            num_nu=config.num_nu,
            num_chi=config.num_chi,
            cost_limit=cost_limit,
            episode_len=episode_len(config.episode_len, ctx.task),
            device=str(ctx.device),
        )
        self.logger = RecordingLogger()
        self.trainer = COptiDICETrainer(
            self.model,
            None,  # the env is only used by COptiDICETrainer.evaluate, which the suite replaces
            logger=self.logger,
            actor_lr=config.actor_lr,
            critic_lr=config.critic_lr,
            scalar_lr=config.scalar_lr,
            reward_scale=config.reward_scale,
            cost_scale=config.cost_scale,
            device=str(ctx.device),
        )
        self.rng = TorchRNGStream(ctx.device)
        self.stages = (Stage("train", config.steps, config.batch_size),)

    def update(self, stage: str, batch: Batch) -> dict[str, float]:
        self._check_stage(stage)
        return self._train_step(
            [
                batch["obs"],
                batch["next_obs"],
                batch["actions"],
                scaled(batch["rewards"], self.config.reward_scale),
                scaled(batch["costs"], self.config.cost_scale),
                batch["done"],
                batch["is_init"],
            ]
        )

    def policy(self, cost_limit: float, num_envs: int) -> Policy:
        def deterministic(obs):
            return self.model.actor(obs, True, False)[0]

        return StatelessPolicy(actor_policy_fn(deterministic, self.model, self.device))

    def _tensors(self):
        return {"tau": self.model.tau, "lmbda": self.model.lmbda}
