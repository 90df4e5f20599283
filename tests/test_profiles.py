from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from benchmark import profiles
from benchmark.errors import ConfigError
from benchmark.profiles import load_profile, parse_overrides, resolve_config
from benchmark.tasks import get_task


@dataclass
class FakeConfig:
    lr: float = 1e-3
    """learning rate"""
    steps: int = 100
    """steps"""
    hidden: list = field(default_factory=lambda: [256, 256])
    """sizes"""
    flag: bool = False
    """a switch"""
    mode: str = "a"
    """a choice"""


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    (tmp_path / "algorithms").mkdir()
    (tmp_path / "profiles").mkdir()
    (tmp_path / "algorithms" / "fake.yaml").write_text(
        "tasks:\n  ToyVelocity: {lr: 0.1, steps: 5, mode: task}\n"
        "budgets:\n  p: {steps: 7, mode: profile}\n"
        "budget_tasks:\n  p:\n    ToyVelocity: {mode: profile_task}\n"
    )
    (tmp_path / "profiles" / "p.yaml").write_text(
        "budgets: p\ntasks: [ToyVelocity]\nalgorithms: [bc_safe]\nseeds: [0, 1]\n"
        "algorithm_config:\n  fake: {flag: true}\n"
    )
    monkeypatch.setattr(profiles, "CONFIG_DIR", tmp_path)
    return tmp_path


def test_precedence_of_config_layers(config_dir):
    profile = load_profile("p")
    resolved = resolve_config("fake", FakeConfig, "ToyVelocity", profile, {"hidden": [8]})
    assert resolved == {"lr": 0.1, "steps": 7, "hidden": [8], "flag": True, "mode": "profile_task"}
    other_task = resolve_config("fake", FakeConfig, "ToyPointGoal", profile, {})
    assert other_task["lr"] == 1e-3 and other_task["mode"] == "profile"


def test_unknown_keys_and_bad_types_are_rejected(config_dir):
    profile = load_profile("p")
    with pytest.raises(ConfigError, match="unknown config key 'lrr'.*known keys"):
        resolve_config("fake", FakeConfig, "ToyVelocity", profile, {"lrr": 1})
    with pytest.raises(ConfigError, match="steps='many' is not allowed; steps must be an integer"):
        resolve_config("fake", FakeConfig, "ToyVelocity", profile, {"steps": "many"})
    with pytest.raises(ConfigError, match="flag must be true or false"):
        resolve_config("fake", FakeConfig, "ToyVelocity", profile, {"flag": 1})
    (config_dir / "algorithms" / "fake.yaml").write_text(
        "tasks:\n  ToyVelocity: {nope: 1}\nbudgets: {p: {}}\n"
    )
    with pytest.raises(ConfigError, match=r"fake.yaml tasks.ToyVelocity.*nope"):
        resolve_config("fake", FakeConfig, "ToyVelocity", profile, {})


def test_overrides_parse_yaml_values():
    assert parse_overrides(["lr=1e-4", "hidden=[64, 64]", "flag=true", "mode=b"]) == {
        "lr": 1e-4,
        "hidden": [64, 64],
        "flag": True,
        "mode": "b",
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["lr"])


def test_builtin_profiles_load_and_cover_the_tasks():
    for name in ("smoke", "demo", "cpu", "paper", "paper-code", "paper-cost-limits"):
        profile = load_profile(name)
        assert profile.tasks and profile.algorithms and profile.seeds
    paper = load_profile("paper")
    assert len(paper.tasks) == 11
    # DRCORL at its code's CarRun limit; the baselines at 10 and 30 (issue 13)
    assert paper.limits_for(get_task("CarRun"), "drcorl") == (30.0,)
    assert paper.limits_for(get_task("CarRun"), "bcq_lag") == (10.0, 30.0)
    assert paper.limits_for(get_task("CarGoal1")) == (10.0,)
    demo = load_profile("demo")
    assert len(demo.limits_for(get_task("ToyVelocity"))) == 3
    assert load_profile("paper-code").protocol == "paper"


def test_bad_profiles_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        load_profile("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("budgets: smoke\ntasks: [ToyVelocity]\nseedz: [0]\n")
    with pytest.raises(ConfigError, match="seedz"):
        load_profile(str(bad))
    bad.write_text("budgets: smoke\ntasks: [NoSuchTask]\n")
    with pytest.raises(Exception, match="unknown task 'NoSuchTask'"):
        load_profile(str(bad))
    bad.write_text("budgets: smoke\ntasks: [ToyVelocity]\nprotocol: online\n")
    with pytest.raises(ConfigError, match="protocol"):
        load_profile(str(bad))
    bad.write_text("budgets: smoke\ntasks: [ToyVelocity]\ncost_limits: lots\n")
    with pytest.raises(ConfigError, match="cost_limits"):
        load_profile(str(bad))
