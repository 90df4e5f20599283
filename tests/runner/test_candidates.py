"""The runner's candidate mechanism: an algorithm offers its best-so-far state, the runner
keeps it (across checkpoint and resume) and evaluates it beside the final iterate."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from benchmark.envs import make_vector_env
from benchmark.evaluate import EVAL_SEED_BASE, evaluate
from benchmark.interface import Stage, StatelessPolicy, TrainContext, TransitionSource, check_stage
from benchmark.registry import AlgorithmEntry
from benchmark.runner import RunSpec, execute_plan, plan_run
from benchmark.runner import trainer as trainer_mod
from benchmark.runner.trainer import seed_everything

OFFERS = {5: 1.0, 25: 3.0, 42: 2.0}
"""Update number -> the 'online return' the fake algorithm reports when it offers itself.
Like the DRCORL code, the algorithm decides what is best: here, the highest return so far,
so the offer at 42 (return 2 < 3) is not made and the candidate stays the one from 25."""


@dataclass
class FakeConfig:
    steps: int = 60
    """Training steps."""


class FakeAlgorithm:
    """A constant-action policy whose action moves a little every update."""

    def __init__(self, config: FakeConfig, ctx: TrainContext):
        self.ctx = ctx
        self.stages = (Stage("train", config.steps, 4),)
        self.action = torch.zeros(ctx.task.act_dim)
        self.updates = 0
        self.best = -np.inf

    def batch_source(self, stage: str) -> TransitionSource:
        check_stage("fake", stage, self.stages)
        return TransitionSource({"obs": self.ctx.dataset.observations})

    def update(self, stage: str, batch) -> dict[str, float]:
        check_stage("fake", stage, self.stages)
        self.updates += 1
        reported = OFFERS.get(self.updates)
        if reported is not None and reported > self.best:
            self.best = reported
            self.ctx.offer_candidate({"return": reported, "cost": 0.0})
        self.action += 0.03 + 0.001 * float(batch["obs"].mean())  # depends on the batch drawn
        return {"train/action": float(self.action.mean())}

    def policy(self, cost_limit: float, num_envs: int) -> StatelessPolicy:
        action = self.action.clamp(-1, 1).numpy()
        return StatelessPolicy(lambda obs: np.tile(action, (obs.shape[0], 1)))

    def state_dict(self) -> dict:
        return {"action": self.action.clone(), "updates": self.updates, "best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.action = state["action"].clone()
        self.updates = state["updates"]
        self.best = state["best"]


def _plan():
    plan = plan_run(
        RunSpec(algorithm="bc_safe", task="ToyVelocity", profile="smoke", cost_limit=10.0)
    )
    entry = AlgorithmEntry(name="fake", cls=FakeAlgorithm, config_cls=FakeConfig)
    return dataclasses.replace(plan, entry=entry, config={})


def _metrics_with_action(plan, action: torch.Tensor) -> dict:
    algorithm = FakeAlgorithm(FakeConfig(), TrainContext(plan.task, plan.dataset, 10.0, 0, "cpu"))
    algorithm.action = action
    seed_everything(EVAL_SEED_BASE + plan.spec.seed)
    env = make_vector_env(plan.task, plan.profile.num_eval_envs)
    try:
        policy = algorithm.policy(10.0, env.num_envs)
        return evaluate(policy, env, plan.task, 10.0, 0.0, plan.profile.eval_episodes)
    finally:
        env.close()


def test_candidate_is_kept_and_evaluated_beside_the_final_iterate(tmp_path, monkeypatch):
    offered = {}
    original = trainer_mod.Trainer._offer_candidate

    def spy(self, info):
        original(self, info)
        offered["action"] = self.candidate.state["action"].clone()

    monkeypatch.setattr(trainer_mod.Trainer, "_offer_candidate", spy)
    [record] = execute_plan(_plan(), tmp_path)
    selected = record["selected"]
    assert selected["online"] == {"return": 3.0, "cost": 0.0}, "the last offer replaced the first"
    assert selected["offered_at"] == {"stage": "train", "step": 25}
    assert selected["fixed_episodes"] == _metrics_with_action(_plan(), offered["action"])
    assert selected["fixed_episodes"] != record["metrics"], "candidate and final iterate differ"
    assert record["online_env_steps"] == 0 and record["protocol"]["online"] is False


def test_no_candidate_means_no_selected_block(tmp_path, monkeypatch):
    monkeypatch.setitem(globals(), "OFFERS", {})
    [record] = execute_plan(_plan(), tmp_path)
    assert "selected" not in record


class Interrupt(BaseException):
    pass


def test_candidate_survives_checkpoint_and_resume(tmp_path, monkeypatch):
    [reference] = execute_plan(_plan(), tmp_path / "reference")
    original = trainer_mod.to_torch
    calls = {"n": 0}

    def interrupt_after_45(batch, device):
        calls["n"] += 1
        if calls["n"] > 45:
            raise Interrupt
        return original(batch, device)

    monkeypatch.setattr(trainer_mod, "to_torch", interrupt_after_45)
    with pytest.raises(Interrupt):
        execute_plan(_plan(), tmp_path / "resumed")
    state = torch.load(_plan().work_dir(tmp_path / "resumed") / "checkpoint.pt", weights_only=False)
    assert state["candidate"]["offered_at"] == {"stage": "train", "step": 25}
    monkeypatch.setattr(trainer_mod, "to_torch", original)
    [resumed] = execute_plan(_plan(), tmp_path / "resumed")
    assert resumed["timing"]["resumed_from"] == {"stage": "train", "step": 40}
    assert resumed["selected"] == reference["selected"]
    assert resumed["metrics"] == reference["metrics"]
