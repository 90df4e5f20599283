"""One run: `plan` (identity), `trainer` (stages, checkpoints, preemption, logs),
`provenance` (code, packages, hardware), `execute` (train, evaluate, write the records)."""

from benchmark.runner.execution import cli_run, execute, execute_plan
from benchmark.runner.plan import RunPlan, RunSpec, plan_run, stable_hash

__all__ = ["RunPlan", "RunSpec", "cli_run", "execute", "execute_plan", "plan_run", "stable_hash"]
