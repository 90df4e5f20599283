"""`python -m benchmark <verb>`: the command line.

Each verb's work lives in its module (imported lazily so `--help` is instant and a report
never imports torch). A `BenchmarkError` is printed as one line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from benchmark.errors import BenchmarkError

DATA_CHOICES = ("auto", "toy", "dsrl", "generated", "random")
"""`--data` (benchmark.data.DATA_SOURCES, written out so `--help` does not import torch)."""
DATA_HELP = (
    "auto: the profile's source, else dsrl for a DSRL task and toy for a toy task; toy | dsrl "
    "(the real DSRL files) | generated (the suite's collected data) | random (sim-smoke only)"
)
USAGE = """Offline safe-RL benchmark: train DRCORL and the baselines on the DSRL tasks, sweep
profiles locally or on Slurm, and report normalised reward and cost.

Start with `make table` (the demo profile, about two minutes) or, by hand:
  python -m benchmark run --algorithm drcorl --task ToyVelocity --profile demo
  python -m benchmark sweep --profile demo --wait      # every run of a profile
  python -m benchmark table --profile demo             # reports/demo/table.{tex,md,csv}
`python -m benchmark VERB --help` gives each verb's options and defaults; README.md the rest.
"""


class _Help(argparse.RawDescriptionHelpFormatter):
    """Descriptions kept as written; a default shown where there is one and the help does
    not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        empty = default is None or default is False or default == [] or default == argparse.SUPPRESS
        if empty or "default" in text:
            return text
        return f"{text} (default: {default})"


def _add_common_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value (highest precedence); repeatable",
    )
    p.add_argument(
        "--log",
        action="append",
        default=[],
        choices=("tensorboard", "wandb"),
        help="also log training metrics live to TensorBoard (<work>/tensorboard) or W&B; "
        "repeatable; off by default (the CSV log is always written)",
    )
    p.add_argument("--results", default=None, help="results folder (default: results/)")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _add_budget_scale(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--budget-scale",
        type=_positive_float,
        default=None,
        metavar="S",
        help="every step count of the profile's budget set times S (batch and network sizes "
        "unchanged; part of the run's identity; default: the profile's budget_scale, 1)",
    )


def _add_device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        default=None,
        help="cpu | cuda | cuda:N (default: CUDA where the run trains has it, else CPU); "
        "a run asked for CUDA on a machine without it fails rather than train on the CPU",
    )


def _add_slurm_args(p: argparse.ArgumentParser) -> None:
    from benchmark.slurm_options import add_arguments

    add_arguments(p)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_out(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        default=None,
        help="folder for the files (default: reports/<profile>/ for the default --results, "
        "else <results>/reports/<profile>/)",
    )


def _add_skip_invalid(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="report without unreadable or invalid record files (the caption lists them); "
        "by default one such file stops the report",
    )


class _OneLineErrors(argparse.ArgumentParser):
    """A bad command line is one line and exit 2, like every other error (`--help` for usage)."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from benchmark.registry import ALGORITHMS

    parser = _OneLineErrors(prog="python -m benchmark", description=USAGE, formatter_class=_Help)
    sub = parser.add_subparsers(
        dest="verb", required=True, parser_class=_OneLineErrors, metavar="VERB"
    )
    algorithms = ", ".join(ALGORITHMS)

    p = sub.add_parser(
        "run", help="train and evaluate one run, write its record", formatter_class=_Help
    )
    p.add_argument("--algorithm", required=True, help=f"one of: {algorithms}")
    p.add_argument(
        "--task", required=True, help="a DSRL task by name (CarGoal1, ...) or a toy task"
    )
    p.add_argument(
        "--cost-limit",
        type=float,
        default=None,
        help="episode cost threshold (default: the profile's, else the task's DRCORL one)",
    )
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--profile", default="demo", help="a profile name or a YAML file")
    p.add_argument("--data", default="auto", choices=DATA_CHOICES, help=DATA_HELP)
    p.add_argument("--data-path", default=None, help="explicit DSRL-format HDF5 file")
    _add_budget_scale(p)
    _add_device_arg(p)
    _add_common_run_args(p)
    p.set_defaults(handler="benchmark.runner.execution:cli_run")

    p = sub.add_parser(
        "sweep",
        help="expand a profile into runs and submit the missing ones",
        formatter_class=_Help,
    )
    p.add_argument("--profile", required=True)
    p.add_argument("--executor", choices=("local", "slurm"), default="local")
    p.add_argument("--wait", action="store_true", help="wait for the runs to finish")
    p.add_argument("--dry-run", action="store_true", help="print the plan, submit nothing")
    p.add_argument("--task", default=None, help="only the runs on this task")
    p.add_argument(
        "--table-only",
        action="store_true",
        help="only the runs the table shows (`make table`); the profile's other cost limits "
        "are for the cost-limit figure",
    )
    p.add_argument(
        "--max-parallel",
        type=_positive_int,
        default=None,
        help="local: concurrent runs (default: the profile's local.max_parallel, else one per "
        "CPU core, or 1 when the runs train on CUDA)",
    )
    _add_budget_scale(p)
    _add_device_arg(p)
    _add_common_run_args(p)
    _add_slurm_args(p)
    p.set_defaults(handler="benchmark.sweep:cli_sweep")

    p = sub.add_parser("status", help="count done/running/failed/missing runs of a profile")
    p.add_argument("--profile", required=True)
    p.add_argument("--results", default=None)
    p.set_defaults(handler="benchmark.sweep:cli_status")

    p = sub.add_parser(
        "table", help="results table: LaTeX, Markdown and a terminal print", formatter_class=_Help
    )
    p.add_argument("--profile", default="demo", help="a profile name or a YAML file")
    p.add_argument("--results", default=None, help="results folder (default: results/)")
    p.add_argument("--no-published", action="store_true", help="omit published values")
    _add_skip_invalid(p)
    _add_out(p)
    p.set_defaults(handler="benchmark.report.table:cli_table")

    p = sub.add_parser("figure-cost-limits", help="reward/cost per cost limit (poster panel b)")
    p.add_argument("--profile", default="demo")
    p.add_argument("--task", default="HalfCheetahVelocity")
    p.add_argument("--results", default=None)
    _add_skip_invalid(p)
    _add_out(p)
    p.set_defaults(handler="benchmark.report.figures:cli_figure_cost_limits")

    p = sub.add_parser("curves", help="learning curves from the training logs (mean ± std)")
    p.add_argument("--profile", default="demo")
    p.add_argument("--task", default=None, help="only this task (default: every task)")
    p.add_argument("--results", default=None)
    _add_out(p)
    p.set_defaults(handler="benchmark.report.curves:cli_curves")

    p = sub.add_parser(
        "figure-budget", help="reward/cost against CPU-seconds at several budget scales"
    )
    p.add_argument("--profile", default="budget", help="a profile name or a YAML file")
    p.add_argument("--results", default=None, help="results folder (default: results/)")
    _add_out(p)
    p.set_defaults(handler="benchmark.report.budget:cli_figure_budget")

    p = sub.add_parser("diff", help="our cells beside the published ones")
    p.add_argument("--profile", default="demo")
    p.add_argument("--results", default=None)
    p.add_argument(
        "--fail-on-flip",
        action="store_true",
        help="exit 1 when a safety verdict differs from the published one",
    )
    _add_skip_invalid(p)
    _add_out(p)
    p.set_defaults(handler="benchmark.report.diff:cli_diff")

    p = sub.add_parser("bench", help="speed benchmarks (printed and written under reports/bench)")
    p.add_argument("--only", action="append", default=[], help="run only these sections")
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--device", default=None, help="section gpu: cpu | cuda[:N] (default: CUDA)")
    p.add_argument("--tiny", action="store_true", help="section gpu: small networks (tests)")
    p.set_defaults(handler="benchmark.bench:cli_bench")

    data = sub.add_parser("data", help="datasets: card, download, collect").add_subparsers(
        dest="data_verb", required=True
    )
    p = data.add_parser("card", help="dataset statistics (JSON) and cost-return scatter (PNG)")
    p.add_argument("task")
    p.add_argument("--path", default=None, help="explicit HDF5 file")
    p.add_argument("--data", default="auto", choices=DATA_CHOICES, help=DATA_HELP)
    p.add_argument("--out", default=None, help="output folder (default: reports/datasets)")
    p.add_argument("--cost-limit", type=float, default=None)
    p.set_defaults(handler="benchmark.data.card:cli_card")

    p = data.add_parser("download", help="fetch a DSRL file into DSRL's cache (opt-in)")
    p.add_argument("task")
    p.add_argument("--url", default=None, help="override the DSRL URL")
    p.set_defaults(handler="benchmark.data.dsrl:cli_download")

    p = data.add_parser("collect", help="collect a DSRL-format dataset with PPO-Lagrangian")
    p.add_argument("task")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trajectories", type=int, default=None, help="target count after filtering")
    p.add_argument("--num-envs", type=int, default=None)
    p.add_argument("--workers", type=int, default=0, help="worker processes stepping the envs")
    p.set_defaults(handler="benchmark.data.collect:cli_collect")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module_name, func_name = args.handler.split(":")
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
        return int(handler(args) or 0)
    except BenchmarkError as error:
        message = " ".join(str(error).split())
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
