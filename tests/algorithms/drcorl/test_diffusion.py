"""DRCORL's diffusion behaviour model: VP-SDE, network size, and a bimodal behaviour."""

from __future__ import annotations

import numpy as np
import torch

from algorithms.drcorl.diffusion import VPSDE, ScoreNet

from .conftest import build, toy_dataset, train


def test_vp_sde_endpoints():
    sde = VPSDE(0.1, 20.0)
    t = torch.tensor([0.0, 1.0])
    alpha, sigma = sde.alpha(t), sde.sigma(t)
    assert torch.allclose(alpha[0], torch.tensor(1.0)) and sigma[0] == 0.0
    assert alpha[1] < 0.01 and sigma[1] > 0.99
    assert torch.allclose(alpha**2 + sigma**2, torch.ones(2))


def test_score_net_has_the_authors_size():
    """drcorl.md §1.1: about 1.656M parameters in use for CarGoal1 (d_s=72, d_a=2)."""
    net = ScoreNet(72, 2)
    used = sum(p.numel() for p in net.parameters())
    assert abs(used - 1_656_000) < 2_000, used


def test_behaviour_model_samples_both_modes_of_a_bimodal_behaviour():
    rng = np.random.default_rng(0)
    n = 4000
    obs = rng.uniform(-1, 1, size=(n, 3)).astype(np.float32)
    # Two modes per state, at +-0.6 shifted by 0.2 * obs[0]: a single Gaussian fit (or a
    # collapsed model) would put its mass in between.
    sign = rng.choice([-1.0, 1.0], size=n)
    actions = (sign * 0.6 + 0.2 * obs[:, 0] + 0.03 * rng.standard_normal(n))[:, None]
    data = toy_dataset(obs, actions.astype(np.float32), np.zeros(n), np.zeros(n))
    algo = build(
        data,
        behavior_steps=1200,
        behavior_batch_size=256,
        behavior_lr=2e-3,
        score_hidden=64,
        score_dropout=0.0,
    )
    train(algo, stages=("behavior",))
    for x0 in (-0.8, 0.0, 0.8):
        state = np.tile(np.array([[x0, 0.3, -0.2]], dtype=np.float32), (400, 1))
        a = algo.sample_behavior(state, n_steps=30)[:, 0] - 0.2 * x0
        # Each mode holds half the data; training noise moves the sampled split around that.
        assert np.mean(np.abs(a - 0.6) < 0.2) > 0.15, (x0, np.histogram(a, 8))
        assert np.mean(np.abs(a + 0.6) < 0.2) > 0.15, (x0, np.histogram(a, 8))
        assert np.mean(np.abs(a) < 0.25) < 0.1, "little mass between the modes"
