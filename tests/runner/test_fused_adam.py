"""The runner switches every algorithm's Adam to torch's fused CPU kernel (`fuse_cpu_adam`)."""

from __future__ import annotations

import gc

import pytest
import torch

from benchmark.data import load_dataset
from benchmark.interface import TrainContext
from benchmark.profiles import load_profile, resolve_config
from benchmark.registry import ALGORITHMS, load
from benchmark.runner.trainer import fuse_cpu_adam
from benchmark.tasks import get_task


def _optimizers() -> set[int]:
    return {id(o) for o in gc.get_objects() if issubclass(type(o), torch.optim.Optimizer)}


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_every_optimizer_an_algorithm_builds_is_found_and_fused(name):
    entry, task = load(name), get_task("ToyVelocity")
    config = resolve_config(name, entry.config_cls, task.name, load_profile("smoke"), {})
    context = TrainContext(
        task=task,
        dataset=load_dataset(task),
        cost_limit=10.0,
        seed=0,
        device=torch.device("cpu"),
        cost_limits=(10.0,),
    )
    before = _optimizers()
    algorithm = entry.cls(entry.config_cls(**config), context)
    built = [o for o in gc.get_objects() if issubclass(type(o), torch.optim.Optimizer)]
    built = [o for o in built if id(o) not in before]
    assert built and fuse_cpu_adam(algorithm, torch.device("cpu")) == len(built)
    for optimizer in built:
        assert all(g["fused"] and not g["foreach"] for g in optimizer.param_groups)


def test_fused_adam_is_adam_to_rounding_and_left_alone_off_the_cpu():
    torch.manual_seed(0)
    weights = [torch.nn.Parameter(torch.randn(8, 8)) for _ in range(2)]
    twins = [torch.nn.Parameter(w.detach().clone()) for w in weights]
    plain, fused = torch.optim.Adam(weights, lr=1e-2), torch.optim.Adam(twins, lr=1e-2)
    holder = type("Holder", (), {})()
    holder.opts = {"actor": fused}
    assert fuse_cpu_adam(holder, torch.device("meta")) == 0
    assert fuse_cpu_adam(holder, torch.device("cpu")) == 1
    for _ in range(20):
        for opt, params in ((plain, weights), (fused, twins)):
            opt.zero_grad()
            sum((p**2).sum() for p in params).backward()
            opt.step()
    for a, b in zip(weights, twins):
        assert torch.allclose(a, b, atol=1e-6)
    assert not torch.equal(weights[0], torch.zeros(8, 8))
