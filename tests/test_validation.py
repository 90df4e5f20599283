"""Bad values are refused before anything is trained or written: exit 2, one line, no files."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from benchmark.cli import main
from benchmark.errors import ConfigError
from benchmark.profiles import budget_sets, load_profile, resolve_config
from benchmark.registry import ALGORITHMS, load
from benchmark.validation import (
    Fraction,
    PositiveFloat,
    PositiveInt,
    Sizes,
    check_config,
    check_value,
    choices,
)

SMOKE = Path(__file__).resolve().parents[1] / "benchmark" / "configs" / "profiles" / "smoke.yaml"


@dataclass
class Typed:
    steps: PositiveInt = 10
    """steps"""
    lr: PositiveFloat = 1e-3
    """lr"""
    gamma: Fraction = 0.99
    """gamma"""
    hidden: Sizes = field(default_factory=lambda: [8])
    """sizes"""
    mode: Literal["a", "b"] = "a"
    """mode"""
    offset: float = 0.0
    """any finite number"""


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("steps", 0, "steps=0 is not allowed; steps must be an integer > 0"),
        ("steps", -5, "steps=-5 is not allowed"),
        ("steps", 2.5, "steps must be an integer"),
        ("steps", True, "steps must be an integer"),
        ("lr", 0.0, "lr must be a number > 0"),
        ("lr", "fast", "lr must be a number"),
        ("gamma", 1.5, "gamma must be a number >= 0 and <= 1"),
        ("hidden", 5, "hidden must be a list"),
        ("hidden", [], "at least 1 element"),
        ("hidden", [8, 0], r"hidden\[1\]=0 is not allowed"),
        ("mode", "c", r"mode must be one of \['a', 'b'\]"),
        ("offset", math.nan, "offset=nan is not allowed"),
        ("offset", math.inf, "offset=inf is not allowed"),
    ],
)
def test_bad_values_name_key_value_and_range(key, value, message):
    with pytest.raises(ConfigError, match=message):
        check_config(Typed, {key: value}, "--set")


def test_values_are_coerced_as_yaml_and_set_produce_them():
    assert check_config(Typed, {"steps": 4.0, "lr": "1e-4", "offset": 3}, "x") == {
        "steps": 4,
        "lr": 1e-4,
        "offset": 3.0,
    }
    assert check_value(PositiveInt | None, None, "x", "k") is None
    assert choices(Typed, "mode") == ("a", "b")


def test_every_config_field_is_typed_and_every_default_passes_its_own_check():
    for name in ALGORITHMS:
        entry = load(name)
        config = entry.config_cls()
        values = {k: getattr(config, k) for k in vars(config)}
        check_config(entry.config_cls, values, f"{name} defaults")


def _cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["steps=0"], "steps=0 is not allowed"),
        (["steps=-5"], "steps=-5 is not allowed"),
        (["batch_size=0"], "batch_size=0 is not allowed"),
        (["a_hidden_sizes=5"], "a_hidden_sizes=5 is not allowed; a_hidden_sizes must be a list"),
        (["bc_mode=best"], "bc_mode must be one of"),
    ],
)
def test_cli_refuses_bad_set_values_before_training(capsys, tmp_path, overrides, message):
    sets = [a for o in overrides for a in ("--set", o)]
    code, err = _cli(
        capsys,
        *("run", "--algorithm", "bc_safe", "--task", "ToyVelocity", "--profile", "smoke"),
        *sets,
        *("--results", str(tmp_path / "results")),
    )
    assert code == 2
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "results").exists(), "nothing is written for a refused run"


@pytest.mark.parametrize("algorithm", ["caps", "ccac", "drcorl", "bc_safe"])
@pytest.mark.parametrize("limit", ["nan", "inf", "-1", "0"])
def test_cli_refuses_bad_cost_limits_before_training(capsys, tmp_path, algorithm, limit):
    code, err = _cli(
        capsys,
        *("run", "--algorithm", algorithm, "--task", "ToyVelocity", "--profile", "smoke"),
        *("--cost-limit", limit, "--results", str(tmp_path / "r")),
    )
    assert code == 2 and "cost_limit" in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("eval_episodes: 0", "eval_episodes=0 is not allowed"),
        ("num_eval_envs: 0", "num_eval_envs=0 is not allowed"),
        ("log_every: 0", "log_every=0 is not allowed"),
        ("checkpoint_every: -1", "checkpoint_every=-1 is not allowed"),
        ("seeds: zero", "seeds must be a non-empty list"),
        ("seeds: []", "seeds must be a non-empty list"),
        ("seeds: [a]", "seeds[0]='a' is not allowed"),
        ("data: hub", "data must be one of"),
        ("cost_limits: [.nan]", "cost_limit=nan is not allowed"),
        ("local: {max_parallel: 0}", "max_parallel=0 is not allowed"),
    ],
)
def test_bad_profile_values_are_refused(tmp_path, line, message):
    text = SMOKE.read_text()
    key = line.split(":")[0]
    kept = [row for row in text.splitlines() if not row.startswith(f"{key}:")]
    if key == "local":  # drop the smoke profile's own `local:` block
        kept = [row for row in kept if not row.startswith("  max_parallel")]
    path = tmp_path / "bad.yaml"
    path.write_text("\n".join([*kept, line]) + "\n")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_profile(str(path))


def test_budgets_come_from_the_content_not_the_file_name(tmp_path):
    renamed = tmp_path / "my-quick-run.yaml"
    renamed.write_text(SMOKE.read_text())
    profile = load_profile(str(renamed))
    entry = load("bc_safe")
    config = resolve_config("bc_safe", entry.config_cls, "ToyVelocity", profile, {})
    smoke = resolve_config("bc_safe", entry.config_cls, "ToyVelocity", load_profile("smoke"), {})
    assert config == smoke and config["steps"] < entry.config_cls().steps


def test_a_profile_without_budgets_is_an_error_listing_the_sets(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="must name its budget set") as info:
        load_profile(str(empty))
    for name in ("smoke", "demo", "cpu", "paper"):
        assert name in budget_sets() and name in str(info.value)


def test_an_algorithm_without_the_budget_set_is_an_error(tmp_path):
    path = tmp_path / "odd.yaml"
    path.write_text(SMOKE.read_text().replace("budgets: smoke", "budgets: nightly"))
    profile = load_profile(str(path))
    entry = load("bc_safe")
    with pytest.raises(ConfigError, match="defines no budget set 'nightly'"):
        resolve_config("bc_safe", entry.config_cls, "ToyVelocity", profile, {})


def test_every_algorithm_has_every_builtin_budget_set():
    from benchmark.profiles import _algorithm_yaml

    for name in ALGORITHMS:
        sets = _algorithm_yaml(name).get("budgets") or {}
        assert {"smoke", "demo", "cpu", "paper"} <= set(sets), name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sweep", "--profile", "smoke", "--max-parallel", "0"], "must be at least 1, got 0"),
        (["sweep", "--profile", "smoke", "--max-parallel", "two"], "is not a whole number"),
        (
            [
                "run",
                "--algorithm",
                "bc_safe",
                "--task",
                "ToyVelocity",
                "--profile",
                "smoke",
                "--device",
                "tpu",
            ],
            "tpu",
        ),
        (["table", "--profile", "nosuch"], "unknown profile 'nosuch'"),
        (["curves", "--profile", "nosuch"], "unknown profile 'nosuch'"),
        (
            [
                *("run", "--algorithm", "bc_safe", "--task", "ToyVelocity", "--profile", "smoke"),
                *("--device", "mps"),
            ],
            "--device mps: use cpu, cuda or cuda:N",
        ),
        (
            [
                *("run", "--algorithm", "drcorl", "--task", "ToyVelocity", "--profile", "smoke"),
                *("--set", "ID_NEUTRAL_DEFAULTS=1"),
            ],
            "unknown config key 'ID_NEUTRAL_DEFAULTS'",
        ),
        (["diff", "--profile", "nosuch"], "unknown profile 'nosuch'"),
    ],
)
def test_bad_command_lines_are_one_line_and_exit_2(capsys, tmp_path, args, message):
    try:
        code = main([*args, "--results", str(tmp_path / "r")])
    except SystemExit as stop:  # argparse's own exit
        code = stop.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "r").exists()
