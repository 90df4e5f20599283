"""The behaviour-step speed-ups (Config `behavior_speedup`): eager unchanged, variants finite."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from algorithms.drcorl.diffusion import (
    SPEEDUPS,
    VPSDE,
    BehaviorLoss,
    ScoreNet,
    diffusion_loss,
    draw_noise,
    loss_from_noise,
)

from .conftest import build, train


def _batch(n: int = 64, obs_dim: int = 5, act_dim: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, obs_dim), generator=g), torch.rand((n, act_dim), generator=g) * 2 - 1


def _net(blocks: int = 2, dropout: float = 0.1) -> ScoreNet:
    torch.manual_seed(0)
    net = ScoreNet(5, 2, hidden=32, blocks=blocks, dropout=dropout, fourier_dim=16, cond_dim=16)
    return net.train()


@pytest.mark.parametrize("dropout", [0.1, 0.0])
def test_noise_drawn_first_gives_the_eager_loss_and_gradients_bit_for_bit(dropout):
    """The compile/bf16 variants' path minus compile and autocast is today's loss exactly:
    same draws in the same order (t, z, one dropout mask per block), same arithmetic."""
    obs, act = _batch()
    net_a, net_b, sde = _net(dropout=dropout), _net(dropout=dropout), VPSDE()
    loss_a = diffusion_loss(net_a, sde, obs, act, torch.Generator().manual_seed(3))
    t, z, keeps = draw_noise(net_b, act, torch.Generator().manual_seed(3))
    assert (keeps is None) == (dropout == 0.0)
    loss_b = loss_from_noise(net_b, sde, obs, act, t, z, keeps)
    assert torch.equal(loss_a, loss_b)
    loss_a.backward()
    loss_b.backward()
    for p_a, p_b in zip(net_a.parameters(), net_b.parameters()):
        assert torch.equal(p_a.grad, p_b.grad)


def test_eager_behaviour_steps_are_todays_code_path(toy_velocity):
    """DRCORL's `behavior` update with the default switch = the plain diffusion_loss + AdamW
    loop on a copy of the same network and generator: losses and weights bit-identical, so
    records made before the switch existed do not change."""
    algo = build(toy_velocity, behavior_steps=4)
    assert algo.config.behavior_speedup == "eager"
    net, gen = copy.deepcopy(algo.score), torch.Generator().manual_seed(0)
    gen.set_state(algo.gen.get_state())
    opt = torch.optim.AdamW(net.parameters(), lr=algo.config.behavior_lr, weight_decay=0.01)
    source = algo.batch_source("behavior")
    rng = np.random.default_rng(0)
    for _ in range(4):
        raw = source.sample(rng, algo.config.behavior_batch_size)
        batch = {k: torch.as_tensor(v) for k, v in raw.items()}
        logged = algo.update("behavior", batch)["loss/diffusion"]
        net.train()
        loss = diffusion_loss(net, algo.sde, batch["obs"], batch["actions"], gen)
        net.eval()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        assert logged == loss.item()
    for p_a, p_b in zip(algo.score.parameters(), net.parameters()):
        assert torch.equal(p_a, p_b)


def test_bf16_variant_trains_with_finite_losses_close_to_eager(toy_velocity):
    eager = train(build(toy_velocity, behavior_steps=6), ["behavior"])["behavior"]
    bf16 = train(build(toy_velocity, behavior_steps=6, behavior_speedup="bf16"), ["behavior"])
    e = [row["loss/diffusion"] for row in eager]
    b = [row["loss/diffusion"] for row in bf16["behavior"]]
    assert all(np.isfinite(b)) and b != e  # bf16 arithmetic, not the eager path
    # same noise draws: each step's loss within bf16 rounding of eager's (~3 digits)
    assert np.allclose(b, e, rtol=0.05)


def test_unknown_speedup_is_refused():
    with pytest.raises(ValueError, match="not one of"):
        BehaviorLoss(_net(), VPSDE(), "cuda-graphs")
    assert SPEEDUPS[0] == "eager"


@pytest.mark.slow
@pytest.mark.parametrize("speedup", ["compile", "compile+bf16"])
def test_compiled_variants_run_with_finite_losses(speedup):
    """torch.compile on the CPU (C compiler needed; ~30-60 s of compiling on this machine)."""
    obs, act = _batch()
    net, sde = _net(), VPSDE()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    step = BehaviorLoss(net, sde, speedup)
    reference = BehaviorLoss(copy.deepcopy(net), sde, "eager")
    gen, gen_ref = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    losses = []
    for _ in range(3):
        loss = step(obs, act, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first_ref = reference(obs, act, gen_ref).item()
    assert np.all(np.isfinite(losses))
    tolerance = 0.05 if "bf16" in speedup else 1e-4  # compile alone: fused float32 arithmetic
    assert losses[0] == pytest.approx(first_ref, rel=tolerance)
