"""CCAC: cost-to-go labels, the budget decrement of its policy, the two-stage schedule, the OOD
penalty, exact resume, and one learning test on ToyVelocity through the runner."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from baselines.ccac import CCAC, CCACPolicy, Config, cost_to_go_labels, straight_through_clamp
from benchmark.data.dataset import from_arrays
from benchmark.errors import ConfigError
from benchmark.interface import TrainContext
from benchmark.tasks import get_task


def _dataset(costs: list[list[float]], obs_dim: int = 3, seed: int = 0, terminal_last=()):
    """Trajectories back to back, one per list of per-step costs; the i-th ends on a terminal
    when i is in `terminal_last`, else on a timeout."""
    rng = np.random.default_rng(seed)
    n = sum(len(c) for c in costs)
    terminals, timeouts = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    end = 0
    for i, episode in enumerate(costs):
        end += len(episode)
        (terminals if i in terminal_last else timeouts)[end - 1] = True
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    actions = rng.uniform(-1.2, 1.2, size=(n, 1)).astype(np.float32)
    arrays = {
        "observations": obs,
        "next_observations": np.roll(obs, -1, axis=0),
        "actions": actions,
        "rewards": rng.uniform(0, 1, size=n).astype(np.float32),
        "costs": np.concatenate([np.asarray(c, dtype=np.float32) for c in costs]),
        "terminals": terminals,
        "timeouts": timeouts,
    }
    return from_arrays("ToyVelocity", arrays, source="toy")


def test_defaults_are_the_authors():
    cfg = Config()
    assert (cfg.steps, cfg.warmup_steps, cfg.batch_size) == (200_000, 200_000, 512)
    assert (cfg.actor_lr, cfg.critic_lr, cfg.vae_lr) == (1e-4, 1e-3, 1e-3)
    assert (cfg.a_hidden_sizes, cfg.c_hidden_sizes) == ([256, 256], [256, 256])
    assert (cfg.vae_hidden_size, cfg.vae_latent_size, cfg.num_q, cfg.num_qc) == (512, 64, 4, 4)
    assert (cfg.ood_threshold, cfg.max_lag, cfg.reward_scale, cfg.gamma) == (0.5, 5.0, 0.1, 0.99)


def test_cost_to_go_labels_on_hand_made_trajectories():
    data = _dataset([[1, 0, 2], [0, 0], [3], [0, 1, 1, 0]], terminal_last=(1,))
    kappa, next_kappa = cost_to_go_labels(data)
    assert kappa.tolist() == [3, 2, 2, 0, 0, 3, 2, 2, 1, 0]
    # next step's cost-to-go inside a trajectory, 0 after its last step (terminal or timeout)
    assert next_kappa.tolist() == [2, 2, 0, 0, 0, 0, 2, 1, 0, 0]
    assert np.allclose(kappa - next_kappa, data.costs)
    assert kappa.dtype == next_kappa.dtype == np.float32
    scaled, _ = cost_to_go_labels(data, cost_scale=0.5)
    assert np.allclose(scaled, 0.5 * kappa)


def _context(data, seed: int = 0) -> TrainContext:
    return TrainContext(
        task=get_task("ToyVelocity"), dataset=data, cost_limit=20.0, seed=seed,
        device=torch.device("cpu"), cost_limits=(5.0, 10.0, 20.0),
    )  # fmt: skip


def _small(**changes) -> Config:
    cfg = Config(
        steps=5, warmup_steps=3, batch_size=16, a_hidden_sizes=[16, 16], c_hidden_sizes=[16, 16],
        vae_hidden_size=16, vae_latent_size=4, num_q=2, num_qc=3,
    )  # fmt: skip
    for key, value in changes.items():
        setattr(cfg, key, value)
    return cfg


def _toy_data():
    rng = np.random.default_rng(1)
    return _dataset([list((rng.uniform(size=12) < 0.4).astype(float)) for _ in range(6)])


def test_batch_source_carries_labels_and_clips_actions():
    data = _toy_data()
    algo = CCAC(_small(), _context(data))
    columns = algo.batch_source("cvae").columns
    kappa, next_kappa = cost_to_go_labels(data)
    assert np.array_equal(columns["kappa"], kappa)
    assert np.array_equal(columns["next_kappa"], next_kappa)
    assert np.abs(columns["actions"]).max() <= 1.0 < np.abs(data.actions).max()
    assert np.allclose(columns["rewards"], 0.1 * data.rewards)
    assert [(s.name, s.steps) for s in algo.stages] == [("cvae", 3), ("joint", 5)]


def _batches(algo: CCAC, count: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    source = algo.batch_source("joint")
    return [
        {k: torch.as_tensor(v) for k, v in source.sample(rng, 16).items()} for _ in range(count)
    ]


def test_cvae_stage_trains_only_the_cvae_and_classifier():
    algo = CCAC(_small(), _context(_toy_data()))
    before = copy.deepcopy(algo.state_dict())
    stats = algo.update("cvae", _batches(algo, 1)[0])
    assert set(stats) == {"loss/recon", "loss/kl", "loss/classifier", "classifier/accuracy"}
    after = algo.state_dict()
    for name in ("actor", "critic", "cost_critic", "qc_lag", "actor_lag"):
        for key, value in before[name].items():
            assert torch.equal(value, after[name][key]), f"{name}.{key} moved in the cvae stage"
    changed = any(not torch.equal(v, after["cvae"][k]) for k, v in before["cvae"].items())
    assert changed


def test_joint_stage_is_finite_and_pushes_ood_cost_up():
    torch.manual_seed(0)
    # an always-OOD classifier (threshold 0) makes every generated pair OOD
    algo = CCAC(_small(ood_threshold=0.0), _context(_toy_data()))
    for batch in _batches(algo, 4):
        stats = algo.update("joint", batch)
        assert all(math.isfinite(v) for v in stats.values()), stats
    assert stats["ood/fraction"] == 1.0 and stats["ood/lambda1"] > 0


def test_straight_through_clamp():
    x = torch.tensor([-30.0, 0.0, 9.0], requires_grad=True)
    y = straight_through_clamp(x, -20.0, 5.0)
    assert y.tolist() == [-20.0, 0.0, 5.0]
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]


class _SpyActor(nn.Module):
    """Returns the kappa column it was given, squashed, and remembers it."""

    def __init__(self):
        super().__init__()
        self.seen: list[np.ndarray] = []

    def forward(self, sc, deterministic=True, generator=None):
        self.seen.append(sc[:, -1].numpy().copy())
        return torch.tanh(sc[:, -1:] / 100.0)


def test_policy_decrements_kappa_by_incurred_cost():
    actor = _SpyActor()
    policy = CCACPolicy(actor, cost_limit=10.0, num_envs=3, cost_scale=1.0, device="cpu")
    obs = np.zeros((3, 3), dtype=np.float32)
    policy.reset(obs, np.ones(3, dtype=bool))
    policy.act(obs)
    assert actor.seen[-1].tolist() == [10.0, 10.0, 10.0]  # kappa starts at the target

    policy.observe(np.zeros(3), np.array([1.0, 0.0, 4.0]), np.zeros(3, dtype=bool))
    policy.observe(np.zeros(3), np.array([2.0, 0.0, 9.0]), np.zeros(3, dtype=bool))
    actions = policy.act(obs)
    assert actor.seen[-1].tolist() == [7.0, 10.0, 0.0]  # floored at zero once overspent
    assert actions.shape == (3, 1)
    assert np.array_equal(actions, policy.act(obs)), "act does not change the budget"

    policy.reset(obs, np.array([False, False, True]))  # a new episode in env 2 only
    policy.act(obs)
    assert actor.seen[-1].tolist() == [7.0, 10.0, 10.0]


def test_policy_scales_the_budget_like_the_labels():
    actor = _SpyActor()
    policy = CCACPolicy(actor, cost_limit=10.0, num_envs=1, cost_scale=0.5, device="cpu")
    obs = np.zeros((1, 3), dtype=np.float32)
    policy.reset(obs, np.ones(1, dtype=bool))
    policy.observe(np.zeros(1), np.array([4.0]), np.zeros(1, dtype=bool))
    policy.act(obs)
    assert actor.seen[-1].tolist() == [3.0]


def test_done_is_terminal_or_timeout_by_default_like_osrl():
    """The authors train on their OSRL copy's TransitionDataset: done = terminal OR timeout."""
    data = _dataset([[1, 0, 2], [0, 0], [3], [0, 1, 1, 0]], terminal_last=(1,))
    assert np.flatnonzero(data.timeouts).tolist() == [2, 5, 9]
    assert np.flatnonzero(data.terminals).tolist() == [4]
    done = CCAC(_small(), _context(data)).batch_source("cvae").columns["done"]
    assert done.dtype == np.float32
    assert np.flatnonzero(done).tolist() == [2, 4, 5, 9]
    bootstrapping = CCAC(_small(bootstrap_timeouts=True), _context(data))
    assert np.flatnonzero(bootstrapping.batch_source("cvae").columns["done"]).tolist() == [4]


def _adam_step_one(grad: torch.Tensor, lr: float) -> torch.Tensor:
    """Adam's first step from zero moments: lr * g / (|g| + eps) (bias-corrected)."""
    return lr * grad / (grad.abs() + 1e-8)


def _adam_step_two_zero_grad(grad: torch.Tensor, lr: float) -> torch.Tensor:
    """Adam's second step when the second gradient is zero: the moments of step one decay,
    m = b1 (1 - b1) g, v = b2 (1 - b2) g^2, then the usual bias-corrected update."""
    b1, b2 = 0.9, 0.999
    m_hat = b1 * (1 - b1) * grad / (1 - b1**2)
    v_hat = b2 * (1 - b2) * grad.pow(2) / (1 - b2**2)
    return lr * m_hat / (v_hat.sqrt() + 1e-8)


def _params(net: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def test_shared_lagrangian_adam_moves_the_idle_network_on_momentum():
    """Two steps of the shared optimiser against a hand computation: the cost-critic step moves
    lambda_1's network (Adam step one); the actor step then moves lambda_3's network on its own
    loss and lambda_1's network again, on a zero gradient, by the decayed moments alone."""
    torch.manual_seed(0)
    algo = CCAC(_small(ood_threshold=0.0), _context(_toy_data()))  # every generated pair is OOD
    assert algo.config.lagrangian_optimizer == "shared" and set(algo.lag_opts) == {"lag"}
    lr = algo.config.actor_lr
    batch = _batches(algo, 1)[0]
    qc0, actor0 = _params(algo.qc_lag), _params(algo.actor_lag)

    algo._cost_critic_step(batch)  # step 1: lambda_1's loss
    grads = [p.grad.detach().clone() for p in algo.qc_lag.parameters()]
    assert all(g.abs().sum() > 0 for g in grads)
    qc1 = _params(algo.qc_lag)
    for before, after, g in zip(qc0, qc1, grads):
        assert torch.allclose(after, before - _adam_step_one(g, lr), atol=1e-9, rtol=1e-5)
    # lambda_3's network never had a gradient (None): Adam skips it, as upstream
    assert all(torch.equal(a, b) for a, b in zip(actor0, _params(algo.actor_lag)))

    algo._actor_step(batch)  # step 2: lambda_3's loss; lambda_1's gradient is now zero
    assert all(torch.count_nonzero(p.grad) == 0 for p in algo.qc_lag.parameters())
    qc2 = _params(algo.qc_lag)
    for before, after, g in zip(qc1, qc2, grads):
        assert torch.allclose(after, before - _adam_step_two_zero_grad(g, lr), rtol=1e-4)
    assert any(not torch.equal(a, b) for a, b in zip(qc1, qc2)), "the idle network stayed put"
    assert any(not torch.equal(a, b) for a, b in zip(actor0, _params(algo.actor_lag)))


def test_separate_lagrangian_optimisers_leave_the_idle_network_alone():
    torch.manual_seed(0)
    algo = CCAC(_small(ood_threshold=0.0, lagrangian_optimizer="separate"), _context(_toy_data()))
    assert set(algo.lag_opts) == {"qc_lag", "actor_lag"}
    batch = _batches(algo, 1)[0]
    algo._cost_critic_step(batch)
    qc1 = _params(algo.qc_lag)
    algo._actor_step(batch)
    assert all(torch.equal(a, b) for a, b in zip(qc1, _params(algo.qc_lag)))
    state = algo.state_dict()
    assert {"qc_lag_opt", "actor_lag_opt"} <= set(state) and "lag_opt" not in state


def test_unknown_lagrangian_optimizer_is_a_config_error():
    with pytest.raises(ConfigError, match="lagrangian_optimizer"):
        CCAC(_small(lagrangian_optimizer="both"), _context(_toy_data()))
