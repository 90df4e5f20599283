"""Dataset sources, all yielding `benchmark.data.dataset.Dataset`.

`load_dataset` is the one entry point. Sources, never mixed silently:
- `toy`: built-in toy tasks, generated in-process (benchmark.data.toy);
- `dsrl`: a real DSRL file from DSRL's cache (benchmark.data.dsrl);
- `generated`: a dataset our collector made, from the suite's own cache
  (benchmark.data.generated: h5py only; the collector and torch are never imported to load);
- `random`: a tiny in-memory dataset of random and zero-action episodes of a simulator task,
  made in seconds, for the simulator smoke check only (benchmark.data.random_data);
- an explicit `path` to a DSRL-format HDF5 file.
"""

from __future__ import annotations

from benchmark.data.dataset import Dataset
from benchmark.errors import ConfigError
from benchmark.tasks import TaskSpec, get_task

DATA_SOURCES = ("auto", "toy", "dsrl", "generated", "random")


def default_source(task: TaskSpec) -> str:
    return "toy" if task.is_toy else "dsrl"


def load_dataset(task: TaskSpec | str, source: str = "auto", path: str | None = None) -> Dataset:
    """Load the dataset of `task` from exactly one source; a missing one is an error."""
    task = get_task(task) if isinstance(task, str) else task
    if path is not None:
        from benchmark.data.dsrl import read_dataset

        return read_dataset(path, task, source="path")
    if source not in DATA_SOURCES:
        raise ConfigError(f"unknown data source {source!r}; choose one of {DATA_SOURCES}")
    source = default_source(task) if source == "auto" else source
    if source == "toy":
        if not task.is_toy:
            raise ConfigError(f"{task.name} is not a toy task; use --data dsrl or generated")
        from benchmark.data.toy import load_toy_dataset

        return load_toy_dataset(task)
    if task.is_toy:
        raise ConfigError(f"{task.name} is a toy task: its only data source is 'toy'")
    if source == "random":
        from benchmark.data.random_data import random_dataset

        return random_dataset(task)
    if source == "dsrl":
        from benchmark.data.dsrl import load_dsrl

        return load_dsrl(task)
    from benchmark.data.generated import load_generated

    return load_generated(task)
