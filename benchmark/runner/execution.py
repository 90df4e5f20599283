"""One run end to end: plan, build, train (or resume), evaluate, write the record(s).

Everything that can be found wrong before training (the spec, the config, the device, the
algorithm's own checks at construction) is found before the work folder is created, so a bad
input leaves nothing behind. Records are written atomically as the very last step, all
evaluated first: a record on disk always means a finished run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
import traceback
from pathlib import Path

import torch

from benchmark import results as results_mod
from benchmark.atomic import atomic_write_text, remove_stale_temporaries
from benchmark.errors import BenchmarkError
from benchmark.evaluate import EVAL_SEED_BASE, evaluate
from benchmark.lock import exclusive
from benchmark.paths import results_dir as default_results_dir
from benchmark.runner.plan import RunPlan, RunSpec, plan_run
from benchmark.runner.provenance import provenance
from benchmark.runner.trainer import (
    PreemptionGuard,
    Trainer,
    disk_full_is_an_error,
    pick_device,
    seed_everything,
    write_status,
)

WORK_FILES = ("checkpoint.pt", "status.json", "plan.json")
"""Files of a work folder written atomically: their stale temporaries are removed on start."""


def _run_logger(work: Path | None, name: str) -> logging.Logger:
    log = logging.getLogger(f"benchmark.run.{name}")
    log.setLevel(logging.INFO)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(work / "run.log")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(file_handler)
    return log


def execute(
    spec: RunSpec,
    results_dir: Path | None = None,
    show_progress: bool = False,
    dataset_cache: dict | None = None,
) -> list[dict]:
    """Train (or resume) and evaluate one run; write and return its record(s).

    Finished runs are not repeated: when every record of the run exists and validates, they
    are returned as they are.
    """
    results = Path(results_dir) if results_dir is not None else default_results_dir()
    plan = plan_run(spec, dataset_cache)
    if plan.is_done(results):
        return [results_mod.load_record(p) for p in plan.record_paths(results)]
    return execute_plan(plan, results, show_progress)


def _plan_json(plan: RunPlan) -> str:
    return json.dumps(
        {
            "train_id": plan.train_id,
            "algorithm": plan.entry.name,
            "task": plan.task.name,
            "seed": plan.spec.seed,
            "cost_limits": list(plan.eval_cost_limits),
            "record_ids": {str(k): v for k, v in plan.record_ids.items()},
            "config": plan.config,
        },
        indent=1,
    )


def _fail(work: Path, log: logging.Logger, error: BaseException) -> None:
    log.error("failed: %s\n%s", error, traceback.format_exc())
    message = f"{type(error).__name__}: {error}"
    try:
        write_status(work, "failed", error=message, log=str(work / "run.log"))
    except OSError:  # a full disk has no room for a new file: overwrite the old one in place
        with contextlib.suppress(OSError):
            (work / "status.json").write_text(json.dumps({"state": "failed", "error": message}))


def _warn_about_data(plan: RunPlan, log: logging.Logger) -> None:
    """Say before training, on stderr and in run.log, when the data fails docs/datasets.md."""
    from benchmark.data.card import criteria_warning

    for cost_limit in plan.eval_cost_limits:
        message = criteria_warning(plan.dataset, plan.task, cost_limit)
        if message:
            log.warning(message)
            print(f"warning: {message}", file=sys.stderr)


def execute_plan(plan: RunPlan, results: Path, show_progress: bool = False) -> list[dict]:
    device = pick_device(plan.spec.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    work = plan.work_dir(results)
    trainer = Trainer(plan, results, _run_logger(None, plan.train_id), device)
    try:
        trainer.build()  # writes nothing: a config the algorithm rejects leaves no folder
    except BenchmarkError:
        raise
    except Exception as error:  # a bug, not bad input: keep its traceback in the work folder
        _fail(work, _run_logger(work, plan.train_id), error)
        raise
    # the lock first: a second process on this run must change nothing, not even its status
    with exclusive(work, f"run {plan.train_id} ({plan.label()})"):
        if plan.is_done(results):  # finished by the process that held the lock before us
            return [results_mod.load_record(p) for p in plan.record_paths(results)]
        return _train_and_evaluate(plan, trainer, work, results, device, show_progress)


def _train_and_evaluate(
    plan: RunPlan,
    trainer: Trainer,
    work: Path,
    results: Path,
    device: torch.device,
    show_progress: bool,
) -> list[dict]:
    log = trainer.log = _run_logger(work, plan.train_id)
    log.info("run %s: %s on %s", plan.train_id, plan.label(), device)
    _warn_about_data(plan, log)
    started = time.monotonic()
    trainer.cpu_started = time.process_time()
    try:
        for name in WORK_FILES:  # a process killed mid-write (or a full disk) left these
            for path in remove_stale_temporaries(work, name):
                log.info("removed stale temporary %s", path.name)
        with disk_full_is_an_error(work / "plan.json"):
            atomic_write_text(work / "plan.json", _plan_json(plan))
        write_status(work, "running")
        trainer.restore()
        try:
            with PreemptionGuard() as guard:
                trainer.train(guard, show_progress=show_progress)
        finally:
            trainer.close()
        records = _evaluate_all(plan, trainer, device, started, results)
    except BaseException as error:
        if not isinstance(error, SystemExit):
            _fail(work, log, error)
        raise
    write_status(work, "done")
    log.info("done in %.1f s", time.monotonic() - started)
    return records


def _evaluate_policies(trainer: Trainer, algorithm, env) -> list[tuple[float, dict, float]]:
    """(cost limit, metrics, seconds) of `algorithm` on the fixed episodes, per eval limit."""
    plan = trainer.plan
    epsilon = trainer.protocol.epsilon_for(plan.entry.name)
    out = []
    for cost_limit in plan.eval_cost_limits:
        t0 = time.monotonic()
        seed_everything(EVAL_SEED_BASE + plan.spec.seed)
        policy = algorithm.policy(cost_limit, env.num_envs)
        metrics = evaluate(policy, env, plan.task, cost_limit, epsilon, plan.profile.eval_episodes)
        out.append((cost_limit, metrics, time.monotonic() - t0))
    return out


def _evaluate_candidate(trainer: Trainer, env) -> dict[float, tuple[dict, float]]:
    """The offered candidate, loaded into a fresh instance, on the same fixed episodes:
    cost limit -> (the record's `selected` block, seconds)."""
    if trainer.candidate is None:
        return {}
    algorithm = trainer.new_algorithm()
    algorithm.load_state_dict(trainer.candidate.state)
    candidate = trainer.candidate
    return {
        limit: (
            {
                "online": dict(candidate.info),
                "fixed_episodes": metrics,
                "offered_at": dict(candidate.offered_at),
            },
            seconds,
        )
        for limit, metrics, seconds in _evaluate_policies(trainer, algorithm, env)
    }


def _evaluate_all(
    plan: RunPlan, trainer: Trainer, device: torch.device, started: float, results: Path
) -> list[dict]:
    from benchmark.envs import make_vector_env

    env = make_vector_env(plan.task, plan.profile.num_eval_envs)
    try:
        evaluated = _evaluate_policies(trainer, trainer.algorithm, env)
        selected = _evaluate_candidate(trainer, env)
    finally:
        env.close()
    blocks = provenance(device)
    # An algorithm may say something about its own run (DRCORL: final cost estimate, branches).
    summary_fn = getattr(trainer.algorithm, "summary", None)
    summary = summary_fn() if callable(summary_fn) else None
    records = []
    for cost_limit, metrics, eval_seconds in evaluated:
        timing = {
            "stages": dict(trainer.progress.stage_seconds),
            "evaluate": eval_seconds,
            "total": time.monotonic() - started,
            # this process's CPU time (one torch thread: ~ the run's cost, resumes excluded)
            "cpu_seconds": time.process_time() - trainer.cpu_started,
            "resumed_from": trainer.progress.resumed_from,
            "artifact": trainer.progress.artifact,
        }
        chosen, chosen_seconds = selected.get(cost_limit, (None, None))
        if chosen is not None:
            timing["evaluate_selected"] = chosen_seconds
        record = results_mod.build_record(
            plan,
            cost_limit,
            metrics,
            timing,
            blocks,
            online_env_steps=trainer.online_env_steps,
            selected=chosen,
            algorithm_summary=summary,
            diagnostics=(trainer.progress.diagnostics, trainer.progress.diagnostic_env_steps),
        )
        records.append(record)
    for record in records:  # all evaluated first: a record on disk means a finished run
        path = results_mod.record_path(results, record["profile"], record["id"])
        remove_stale_temporaries(path.parent, path.name)
        with disk_full_is_an_error(path):
            results_mod.write_record(results, record)
    return records


def cli_run(args) -> int:
    from benchmark.profiles import parse_overrides

    spec = RunSpec(
        algorithm=args.algorithm,
        task=args.task,
        seed=args.seed,
        cost_limit=args.cost_limit,
        profile=args.profile,
        overrides=parse_overrides(args.overrides),
        data=None if args.data == "auto" else args.data,
        data_path=args.data_path,
        device=args.device,
        log=tuple(args.log),
        budget_scale=args.budget_scale,
    )
    results = Path(args.results) if args.results else default_results_dir()
    for r in execute(spec, results, show_progress=True):
        m = r["metrics"]
        path = results_mod.record_path(results, r["profile"], r["id"])
        print(
            f"{r['algorithm']} {r['task']} kappa={r['cost_limit']:g} seed={r['seed']}: "
            f"reward {m['normalised_reward']['mean']:.3f} cost {m['normalised_cost']['mean']:.3f}"
            f" ({r['protocol']['name']}, {r['protocol']['eval_episodes']} episodes) -> {path}"
        )
    return 0
