"""The runner: records, identity, determinism, checkpoint/resume, failures, artifacts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark.errors import BenchmarkError, ConfigError
from benchmark.results import load_record, read_records
from benchmark.runner import RunSpec, execute, plan_run
from benchmark.runner import execution as execute_mod
from benchmark.runner import trainer as trainer_mod

ALGO = "bc_safe"


def spec(**changes) -> RunSpec:
    base = {
        "algorithm": ALGO,
        "task": "ToyVelocity",
        "seed": 0,
        "cost_limit": 10.0,
        "profile": "smoke",
        "overrides": {"steps": 60},
    }
    base.update(changes)
    return RunSpec(**base)


def test_run_writes_one_valid_record(results_dir):
    [record] = execute(spec(), results_dir)
    path = results_dir / "runs" / "smoke" / f"{record['id']}.json"
    assert load_record(path) == record
    assert record["algorithm"] == ALGO and record["cost_limit"] == 10.0
    assert record["dataset"]["source"] == "toy" and len(record["dataset"]["sha256"]) == 64
    assert record["protocol"] == {
        "name": "honest",
        "cost_normalisation": "C/kappa",
        "eval_episodes": 4,
        "online": False,
        "final_iterate": True,
    }
    assert len(record["metrics"]["normalised_cost"]["per_episode"]) == 4
    assert record["timing"]["resumed_from"] is None
    assert record["config"]["steps"] == 60
    log = (results_dir / "work" / "smoke" / record["train_id"] / "train_log.csv").read_text()
    assert log.startswith("stage,step,seconds,metric,value")


def test_record_lists_the_dataset_criteria_the_data_fails(results_dir):
    [record] = execute(spec(), results_dir)
    assert record["dataset"]["failed_criteria"] == []  # the toy data meets all four


def test_data_failing_the_criteria_is_warned_about_before_training(
    results_dir, monkeypatch, capsys
):
    from benchmark.data import card

    monkeypatch.setattr(card, "MIN_BEST_SAFE_NORMALISED", 5.0)  # no dataset reaches it
    [record] = execute(spec(), results_dir)
    assert record["dataset"]["failed_criteria"] == ["best_safe_return"]
    err = capsys.readouterr().err
    assert "warning: the toy dataset for ToyVelocity fails the docs/datasets.md" in err
    log = (results_dir / "work" / "smoke" / record["train_id"] / "run.log").read_text()
    lines = log.splitlines()
    assert f"INFO run {record['train_id']}" in lines[0]
    assert "WARNING the toy dataset" in lines[1] and "best_safe_return" in lines[1]


def test_a_run_another_process_is_training_is_refused_and_left_untouched(results_dir):
    from benchmark.errors import BusyError
    from benchmark.lock import exclusive

    plan = plan_run(spec())
    work = plan.work_dir(results_dir)
    with exclusive(work, "the other process's run"):
        with pytest.raises(BusyError, match=f"run {plan.train_id} .* is already running"):
            execute(spec(), results_dir)
        assert sorted(p.name for p in work.iterdir()) == [".lock"]  # no status, log or plan
    [record] = execute(spec(), results_dir)  # once the other process is gone
    assert record["id"] in plan.record_ids.values()


def test_identity_covers_meaning_only():
    a, b = plan_run(spec()), plan_run(spec(device="cpu"))
    assert a.record_ids == b.record_ids, "the device is recorded, not hashed"
    assert plan_run(spec(seed=1)).record_ids != a.record_ids
    assert plan_run(spec(cost_limit=20.0)).record_ids != a.record_ids
    assert plan_run(spec(overrides={"steps": 61})).record_ids != a.record_ids


def test_an_option_at_its_id_neutral_default_leaves_the_id_as_before():
    """DRCORL's `pid_signal` and `cost_guidance` came after records existed: at their earlier
    values the id is the one the config without them hashes to; another value changes it."""
    from benchmark.runner.plan import identity_config, stable_hash

    drcorl = spec(algorithm="drcorl", profile="demo", overrides={})
    plan = plan_run(drcorl)
    assert plan.config["pid_signal"] == "critic" and plan.config["cost_guidance"] == "iql"
    added = ("pid_signal", "cost_guidance")
    without = {k: v for k, v in plan.config.items() if k not in added}
    assert identity_config(plan.entry.config_cls, plan.config) == without
    assert "pid_signal" in identity_config(
        plan.entry.config_cls, {**plan.config, "pid_signal": "policy_eval"}
    )
    identity = {
        "algorithm": "drcorl",
        "task": "ToyVelocity",
        "seed": 0,
        "config": without,
        "dataset_sha256": plan.dataset.sha256,
        "protocol": "honest",
        "cost_limit": 10.0,
    }
    assert plan.train_id == stable_hash(identity)
    for option in added:
        changed = plan_run(
            spec(algorithm="drcorl", profile="demo", overrides={option: "policy_eval"})
        )
        assert changed.train_id != plan.train_id


def test_same_run_twice_gives_identical_metrics(tmp_path):
    [first] = execute(spec(), tmp_path / "a")
    [second] = execute(spec(), tmp_path / "b")
    assert first["metrics"] == second["metrics"]
    assert first["id"] == second["id"]


def test_finished_run_is_not_repeated(results_dir, monkeypatch):
    [record] = execute(spec(), results_dir)
    monkeypatch.setattr(execute_mod, "execute_plan", lambda *a, **k: pytest.fail("ran again"))
    assert execute(spec(), results_dir) == [record]


class Interrupt(BaseException):
    pass


def test_resume_continues_from_checkpoint_and_matches_uninterrupted_run(tmp_path, monkeypatch):
    [reference] = execute(spec(), tmp_path / "reference")
    calls = {"n": 0}
    original = trainer_mod.to_torch

    def interrupt_after_45_steps(batch, device):
        calls["n"] += 1
        if calls["n"] > 45:
            raise Interrupt
        return original(batch, device)

    monkeypatch.setattr(trainer_mod, "to_torch", interrupt_after_45_steps)
    with pytest.raises(Interrupt):
        execute(spec(), tmp_path / "resumed")
    assert read_records(tmp_path / "resumed").records == [], "no record from a broken run"
    monkeypatch.setattr(trainer_mod, "to_torch", original)
    [resumed] = execute(spec(), tmp_path / "resumed")
    assert resumed["timing"]["resumed_from"] == {
        "stage": "train",
        "step": 40,
    }  # checkpoint_every 20
    assert resumed["metrics"] == reference["metrics"]


def test_run_that_raises_leaves_no_record_and_a_failed_status(results_dir, monkeypatch):
    original = trainer_mod.to_torch
    calls = {"n": 0}

    def broken_after_30_steps(batch, device):
        calls["n"] += 1
        if calls["n"] > 30:
            raise RuntimeError("the learning rate exploded")
        return original(batch, device)

    monkeypatch.setattr(trainer_mod, "to_torch", broken_after_30_steps)
    with pytest.raises(RuntimeError):
        execute(spec(), results_dir)
    assert read_records(results_dir).records == []
    [work] = list((results_dir / "work" / "smoke").iterdir())
    status = json.loads((work / "status.json").read_text())
    assert status["state"] == "failed" and "learning rate" in status["error"]
    assert Path(status["log"]).exists() and "Traceback" in Path(status["log"]).read_text()


def test_errors_found_before_training_create_no_work_folder(results_dir):
    for bad in (
        spec(overrides={"steps": 60, "actor_lr": -1.0}),  # rejected by the config checks
        spec(device="cuda:7" if not _cuda() else "tpu"),  # rejected by pick_device
        spec(profile="demo", algorithm="drcorl", overrides={"switching": "online"}),  # by DRCORL
    ):
        with pytest.raises(BenchmarkError):
            execute(bad, results_dir)
    assert not (results_dir / "work").exists() and not (results_dir / "runs").exists()


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_bad_input_is_a_config_error(results_dir):
    with pytest.raises(ConfigError, match="unknown config key 'stepz'"):
        execute(spec(overrides={"stepz": 1}), results_dir)
    with pytest.raises(ConfigError, match="positive|> 0"):
        execute(spec(cost_limit=-1.0), results_dir)
    with pytest.raises(ConfigError, match="seed"):
        execute(spec(seed=10**7), results_dir)


def test_cost_conditioned_algorithm_trains_once_and_writes_one_record_per_limit(results_dir):
    records = execute(
        RunSpec(
            algorithm="caps", task="ToyVelocity", profile="smoke", cost_limit=None, overrides={}
        ),
        results_dir,
    )
    assert len(records) == 1  # smoke: one limit
    profile = results_dir.parent / "three_limits.yaml"
    profile.write_text(
        "name: three\ntasks: [ToyVelocity]\nalgorithms: [caps]\n"
        "cost_limits: [5, 10, 20]\neval_episodes: 2\nnum_eval_envs: 2\n"
        "budgets: smoke\n"
    )
    records = execute(
        RunSpec(algorithm="caps", task="ToyVelocity", profile=str(profile)), results_dir
    )
    assert sorted(r["cost_limit"] for r in records) == [5.0, 10.0, 20.0]
    assert len({r["train_id"] for r in records}) == 1 and len({r["id"] for r in records}) == 3
    assert len(list((results_dir / "work" / "three").iterdir())) == 1


@pytest.mark.slow
def test_sigterm_checkpoints_and_a_rerun_resumes(results_dir):
    command = [
        sys.executable,
        "-m",
        "benchmark",
        "run",
        "--algorithm",
        ALGO,
        "--task",
        "ToyVelocity",
        "--profile",
        "smoke",
        "--cost-limit",
        "10",
        "--set",
        "steps=200000",
        "--results",
        str(results_dir),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    work_root = results_dir / "work" / "smoke"
    deadline = time.time() + 60
    while time.time() < deadline and not list(work_root.glob("*/checkpoint.pt")):
        time.sleep(0.2)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    [work] = list(work_root.iterdir())
    assert "checkpoint written" in (work / "run.log").read_text()
    assert read_records(results_dir).records == []
    plan = plan_run(spec(overrides={"steps": 200000}))
    import torch

    state = torch.load(work / "checkpoint.pt", weights_only=False)
    assert state["progress"]["step"] > 0 and plan.train_id == work.name


def _paper_profile(tmp_path, algorithms: str, extra: str = "") -> str:
    path = tmp_path / "paper_smoke.yaml"
    path.write_text(
        f"name: paper-smoke\nprotocol: paper\nbudgets: smoke\ntasks: [ToyVelocity]\n"
        f"algorithms: {algorithms}\neval_episodes: 2\nnum_eval_envs: 2\n{extra}"
    )
    return str(path)


def test_paper_protocol_normalises_per_method_and_names_it_in_the_id(tmp_path):
    profile = _paper_profile(tmp_path, "[bc_safe, drcorl]")
    baseline = plan_run(spec(profile=profile))
    drcorl = plan_run(spec(profile=profile, algorithm="drcorl", overrides={}))
    honest = plan_run(spec())
    [record] = execute(spec(profile=profile), tmp_path / "results")
    assert record["protocol"]["cost_normalisation"] == "C/kappa", "baselines keep C/kappa"
    costs = record["metrics"]["cost"]["per_episode"]
    assert record["metrics"]["normalised_cost"]["per_episode"] == [c / 10.0 for c in costs]
    assert record["id"] == baseline.record_ids[10.0] != honest.record_ids[10.0]
    from benchmark.runner.plan import evaluation_identity

    assert evaluation_identity(drcorl.profile, "drcorl")["cost_normalisation"] == "C/(kappa+0.1)"
    assert evaluation_identity(honest.profile, "bc_safe") == {
        "episodes": 4,
        "normalisation": "honest",
    }, "honest ids are those of records written before the per-method key existed"


def test_online_switching_counts_the_runners_environment_steps(tmp_path):
    profile = _paper_profile(
        tmp_path, "[drcorl]", "algorithm_config:\n  drcorl:\n    switching: online\n"
    )
    [record] = execute(spec(profile=profile, algorithm="drcorl", overrides={}), tmp_path / "r")
    iterations = record["config"]["adapt_iterations"]
    assert record["protocol"]["online"] is True
    assert record["protocol"]["cost_normalisation"] == "C/(kappa+0.1)"
    from benchmark.tasks import get_task

    # one episode per adaptation iteration; ToyVelocity episodes always run to the horizon
    assert record["online_env_steps"] == iterations * get_task("ToyVelocity").horizon


def _diagnostic_profile(tmp_path, evals: int) -> str:
    path = tmp_path / f"diag{evals}.yaml"
    path.write_text(
        "name: diag-smoke\nprotocol: honest\nbudgets: smoke\ntasks: [ToyVelocity]\n"
        f"algorithms: [drcorl]\neval_episodes: 2\nnum_eval_envs: 2\n"
        f"diagnostic_evals: {evals}\ndiagnostic_episodes: 2\n"
    )
    return str(path)


def test_diagnostic_evaluations_are_recorded_and_never_reach_the_policy(tmp_path, monkeypatch):
    """Profile `diagnostic_evals`: evenly spaced evaluations of the current policy during the
    last stage, recorded with DRCORL's estimates and their own environment-step count; the
    trained weights (and so the evaluation) are those of a run without them."""
    weights = {}
    original = execute_mod._evaluate_all

    def keep_weights(plan, trainer, *args):
        weights[plan.profile.diagnostic_evals] = {
            k: v.clone() for k, v in trainer.algorithm.actor.state_dict().items()
        }
        return original(plan, trainer, *args)

    monkeypatch.setattr(execute_mod, "_evaluate_all", keep_weights)
    runs = {}
    for evals in (0, 3):
        profile = _diagnostic_profile(tmp_path, evals)
        [runs[evals]] = execute(spec(profile=profile, algorithm="drcorl", overrides={}), tmp_path)
    plain, diagnosed = runs[0], runs[3]
    assert all(weights[0][k].equal(weights[3][k]) for k in weights[0])
    assert plain["metrics"] == diagnosed["metrics"]
    assert "diagnostics" not in plain and plain["id"] != diagnosed["id"]
    points = diagnosed["diagnostics"]
    iterations = diagnosed["config"]["adapt_iterations"]
    assert [p["step"] for p in points] == sorted({round(iterations * j / 3) for j in (1, 2, 3)})
    assert {p["stage"] for p in points} == {"adapt"}
    assert all("estimate_policy_eval" in p and "normalised_cost" in p for p in points)
    from benchmark.tasks import get_task

    horizon = get_task("ToyVelocity").horizon
    assert diagnosed["diagnostic_env_steps"] == 3 * 2 * horizon
    assert diagnosed["online_env_steps"] == 0 and diagnosed["protocol"]["online"] is False


def test_diagnostic_points_are_evenly_spaced_and_end_the_stage():
    assert trainer_mod.diagnostic_points(600, 4) == {150, 300, 450, 600}
    assert trainer_mod.diagnostic_points(600, 0) == set()
    assert trainer_mod.diagnostic_points(2, 5) == {1, 2}


def test_budget_scale_multiplies_every_step_count_and_names_the_run(tmp_path):
    """`--budget-scale S`: the step counts of the budget set times S, batch and network sizes
    unchanged, an explicit --set kept; part of the id, written in the record."""
    from benchmark.profiles import is_step_count

    plain = plan_run(spec(algorithm="drcorl", overrides={}))
    scaled = plan_run(spec(algorithm="drcorl", overrides={}, budget_scale=4.0))
    for key, value in plain.config.items():
        if is_step_count(key) and value:
            assert scaled.config[key] == value * 4, key
        else:
            assert scaled.config[key] == value, key
    assert scaled.config["pe_steps_per_iteration"] == plain.config["pe_steps_per_iteration"]
    assert scaled.train_id != plain.train_id
    explicit = plan_run(spec(algorithm="drcorl", overrides={"critic_steps": 7}, budget_scale=4.0))
    assert explicit.config["critic_steps"] == 7
    [record] = execute(spec(overrides={"steps": 20}, budget_scale=2.0), tmp_path)
    assert record["budget_scale"] == 2.0 and record["config"]["steps"] == 20
    [record] = execute(spec(overrides={}, budget_scale=0.5), tmp_path)
    assert record["budget_scale"] == 0.5
    assert "budget x0.5" in plan_run(spec(overrides={}, budget_scale=0.5)).label()


def test_a_bad_budget_scale_is_refused_in_one_line(capsys, tmp_path):
    from benchmark.cli import main

    for bad in ("0", "-1", "x", "inf"):
        argv = ["run", "--algorithm", ALGO, "--task", "ToyVelocity", "--budget-scale", bad]
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "--results", str(tmp_path)])
        assert exit_info.value.code == 2
        assert "--budget-scale" in capsys.readouterr().err
