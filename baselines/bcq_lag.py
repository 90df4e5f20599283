"""BCQ-Lag: batch-constrained Q-learning with a PID-Lagrangian cost penalty.

Paper: BCQ (Fujimoto, Meger, Precup, "Off-Policy Deep Reinforcement Learning without
Exploration", ICML 2019) with the PID Lagrangian of Stooke, Achiam, Abbeel (ICML 2020), as
benchmarked by Liu et al., "Datasets and Benchmarks for Offline Safe RL" (DMLR 2024).
Code followed: osrl-lib 0.1.0 used as a library (`osrl.algorithms.BCQL`, `BCQLTrainer`),
settings from OSRL's `examples/configs/bcql_configs.py` (baselines.md 2.3.2).

What the adapter does around osrl-lib: transition batches with OSRL's `done = terminals OR
timeouts` and rewards/costs scaled by `reward_scale`/`cost_scale` in float64, exactly as
OSRL's `TransitionDataset`; the update runs on a private torch RNG stream that is checkpointed
(with the PID controller's integral and previous error, the target networks and all four Adam
states), so a resumed run continues bit for bit.

Evaluation: OSRL's `BCQL.act` decodes the VAE with fresh global-RNG noise
z ~ clip(N(0, I), -0.5, 0.5) at every step. The suite's policy draws the same noise from a
`torch.Generator` seeded with the run seed, one draw per environment step (in `reset` and
`observe`, not in `act`), so evaluation is deterministic and repeatable and `act` is a pure
function of the observation and the step.

Deviations: batches come from the suite's runner (uniform with replacement, as OSRL's
`TransitionDataset`), not a DataLoader; evaluation is the suite's, not `BCQLTrainer.evaluate`;
a cost limit <= 0 is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from osrl.algorithms import BCQL, BCQLTrainer

from baselines.osrl_common import (
    MAX_ACTION,
    Q_LEARNING_OPTIMIZERS,
    OSRLAdapter,
    RecordingLogger,
    TorchRNGStream,
    check_cost_limit,
    episode_len,
    eval_mode,
    load_pid_state,
    pid_state,
    transition_columns,
)
from benchmark.interface import Batch, Policy, Stage, TrainContext, TransitionSource
from benchmark.validation import Fraction, NonNegativeInt, PositiveFloat, PositiveInt, Sizes


@dataclass
class Config:
    steps: PositiveInt = 100_000
    """Gradient steps (OSRL `update_steps`)."""
    batch_size: PositiveInt = 512
    """Transitions per batch (OSRL `batch_size`)."""
    actor_lr: PositiveFloat = 1e-3
    """Adam learning rate of the perturbation actor (OSRL config; trainer default 1e-4)."""
    critic_lr: PositiveFloat = 1e-3
    """Adam learning rate of the reward and cost critics (OSRL config; trainer default 1e-4)."""
    vae_lr: PositiveFloat = 1e-3
    """Adam learning rate of the behaviour VAE (OSRL config; trainer default 1e-4)."""
    reward_scale: PositiveFloat = 0.1
    """Rewards are multiplied by this before the critic sees them (OSRL `reward_scale`)."""
    cost_scale: PositiveFloat = 1.0
    """Costs are multiplied by this before the cost critic sees them (OSRL `cost_scale`)."""
    phi: Fraction = 0.05
    """Perturbation range of the actor, as a fraction of the action bound (OSRL `phi`)."""
    lmbda: Fraction = 0.75
    """Weight of the min in the soft clipped double-Q target (OSRL `lmbda`)."""
    beta: float = 0.5
    """Weight of the KL term of the VAE loss (OSRL `beta`)."""
    a_hidden_sizes: Sizes = field(default_factory=lambda: [256, 256])
    """Hidden layers of the perturbation actor, tanh (OSRL config; constructor [128, 128])."""
    c_hidden_sizes: Sizes = field(default_factory=lambda: [256, 256])
    """Hidden layers of every Q network, ReLU (OSRL config; constructor [128, 128])."""
    vae_hidden_sizes: PositiveInt = 400
    """Width of the VAE's hidden layers (OSRL config; constructor default 64)."""
    sample_action_num: PositiveInt = 10
    """VAE proposals per next state in the critic targets (OSRL `sample_action_num`)."""
    gamma: Fraction = 0.99
    """Discount factor (OSRL `gamma`)."""
    tau: Fraction = 0.005
    """Polyak rate of the target networks (OSRL `tau`)."""
    num_q: PositiveInt = 2
    """Q networks per head of the double reward critic (OSRL config; constructor default 1)."""
    num_qc: PositiveInt = 2
    """Q networks per head of the double cost critic (OSRL config; constructor default 1)."""
    pid: list[float] = field(default_factory=lambda: [0.1, 0.003, 0.001])
    """KP, KI, KD of the PID Lagrangian multiplier (OSRL `PID`)."""
    episode_len: NonNegativeInt = 0
    """OSRL `episode_len` (sets qc_thres); 0 = the task's horizon (OSRL's per-task value)."""


class BCQLagPolicy:
    """`a = actor(s, vae.decode(s, z))` with z from a seeded generator, one draw per step."""

    def __init__(self, model: BCQL, device: torch.device, seed: int, num_envs: int):
        self._model = model
        self._device = device
        self._generator = torch.Generator().manual_seed(int(seed))
        self._z = self._draw(num_envs)

    def _draw(self, n: int) -> torch.Tensor:
        # the distribution of osrl's VAE.decode(obs, z=None): N(0, I) clipped to [-0.5, 0.5]
        z = torch.randn((n, self._model.latent_dim), generator=self._generator)
        return z.clamp(-0.5, 0.5).to(self._device)

    def reset(self, obs: np.ndarray, mask: np.ndarray) -> None:
        self._z = self._draw(len(obs))

    def act(self, obs: np.ndarray) -> np.ndarray:
        if self._z.shape[0] != len(obs):
            self._z = self._draw(len(obs))
        with eval_mode(self._model):
            x = torch.as_tensor(np.asarray(obs), dtype=torch.float32, device=self._device)
            return self._model.actor(x, self._model.vae.decode(x, self._z)).cpu().numpy()

    def observe(self, reward: np.ndarray, cost: np.ndarray, done: np.ndarray) -> None:
        self._z = self._draw(self._z.shape[0])


class BCQLag(OSRLAdapter):
    """OSRL's BCQL model and trainer, trained at one cost limit."""

    name = "bcq_lag"
    optimizer_names = Q_LEARNING_OPTIMIZERS

    def __init__(self, config: Config, ctx: TrainContext):
        self.config = config
        self.device = ctx.device
        self.seed = ctx.seed
        cost_limit = check_cost_limit(ctx.cost_limit, self.name)
        dataset = ctx.dataset
        self._source = TransitionSource(transition_columns(dataset))
        self.model = BCQL(
            state_dim=dataset.observations.shape[1],
            action_dim=dataset.actions.shape[1],
            max_action=MAX_ACTION,
            a_hidden_sizes=list(config.a_hidden_sizes),
            c_hidden_sizes=list(config.c_hidden_sizes),
            vae_hidden_sizes=config.vae_hidden_sizes,
            sample_action_num=config.sample_action_num,
            PID=list(config.pid),
            gamma=config.gamma,
            tau=config.tau,
            lmbda=config.lmbda,
            beta=config.beta,
            phi=config.phi,
            num_q=config.num_q,
            num_qc=config.num_qc,
            cost_limit=cost_limit,
            episode_len=episode_len(config.episode_len, ctx.task),
            device=str(ctx.device),
        )
        self.logger = RecordingLogger()
        self.trainer = BCQLTrainer(
            self.model,
            None,  # the env is only used by BCQLTrainer.evaluate, which the suite replaces
            logger=self.logger,
            actor_lr=config.actor_lr,
            critic_lr=config.critic_lr,
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
        return BCQLagPolicy(self.model, self.device, self.seed, num_envs)

    def _extra_state(self) -> dict:
        # the evaluation noise seed travels with the weights: a loaded model acts as it did
        return {"pid": pid_state(self.model.controller), "eval_noise_seed": self.seed}

    def _load_extra_state(self, state: dict) -> None:
        load_pid_state(self.model.controller, state["pid"], self.device)
        self.seed = int(state["eval_noise_seed"])
