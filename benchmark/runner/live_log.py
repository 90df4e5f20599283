"""Opt-in live logging of the training metrics to TensorBoard or Weights & Biases.

The CSV log in each run's work folder is always written and is what the suite reads
(`make curves`); these are extra views for people who watch runs live, as OSRL and CORL users
do. Off by default (`--log tensorboard`, `--log wandb`, or both), never needed by a test or a
report, and never part of a run's identity. Each row the trainer logs, (stage, step, seconds,
metric, value), becomes the scalar `<stage>/<metric>` at that stage's step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from benchmark.errors import ConfigError

LIVE_LOGGERS = ("tensorboard", "wandb")
Row = tuple[str, int, float, str, float]


class LiveLogger(Protocol):
    def write(self, rows: Iterable[Row]) -> None: ...

    def close(self) -> None: ...


class TensorBoardLogger:
    """Event files under `<work>/tensorboard` (`tensorboard --logdir results/work`)."""

    def __init__(self, work: Path, run_name: str):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(work / "tensorboard"), comment=run_name)

    def write(self, rows: Iterable[Row]) -> None:
        for stage, step, _seconds, metric, value in rows:
            self.writer.add_scalar(f"{stage}/{metric}", value, global_step=step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """One W&B run per suite run (its id = the train id, so a resumed run continues it).
    `WANDB_MODE`, `WANDB_PROJECT` and the rest of wandb's environment apply as usual."""

    def __init__(self, work: Path, run_name: str, run_id: str, config: dict):
        import wandb

        self.run = wandb.init(
            id=run_id, name=run_name, config=config, dir=str(work), resume="allow", reinit=True
        )

    def write(self, rows: Iterable[Row]) -> None:
        for stage, step, _seconds, metric, value in rows:
            self.run.log({f"{stage}/{metric}": value, f"{stage}/step": step})

    def close(self) -> None:
        self.run.finish()


def check_live_loggers(kinds: Sequence[str]) -> tuple[str, ...]:
    unknown = [k for k in kinds if k not in LIVE_LOGGERS]
    if unknown:
        raise ConfigError(f"--log {unknown[0]!r}: choose from {', '.join(LIVE_LOGGERS)}")
    return tuple(dict.fromkeys(kinds))


def make_live_loggers(
    kinds: Sequence[str], work: Path, run_name: str, run_id: str, config: dict
) -> list[LiveLogger]:
    loggers: list[LiveLogger] = []
    for kind in check_live_loggers(kinds):
        if kind == "tensorboard":
            loggers.append(TensorBoardLogger(work, run_name))
        else:
            loggers.append(WandbLogger(work, run_name, run_id, config))
    return loggers
