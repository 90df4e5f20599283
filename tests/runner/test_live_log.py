"""Opt-in live logging: TensorBoard event files beside the CSV log, and nothing by default."""

from __future__ import annotations

import pytest

from benchmark.errors import ConfigError
from benchmark.runner import RunSpec, execute
from benchmark.runner.live_log import check_live_loggers


def _run(tmp_path, log=()):
    spec = RunSpec("bc_safe", "ToyVelocity", cost_limit=10.0, profile="smoke", log=log)
    [record] = execute(spec, tmp_path)
    return tmp_path / "work" / "smoke" / record["train_id"], record


def test_tensorboard_writes_event_files_and_changes_no_identity(tmp_path):
    work, record = _run(tmp_path / "a", log=("tensorboard",))
    events = list((work / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    plain_work, plain = _run(tmp_path / "b")
    assert plain["id"] == record["id"] and plain["metrics"] == record["metrics"]
    assert not (plain_work / "tensorboard").exists(), "off by default"


def test_an_unknown_live_logger_is_a_config_error():
    with pytest.raises(ConfigError, match="--log 'mlflow': choose from tensorboard, wandb"):
        check_live_loggers(["mlflow"])
