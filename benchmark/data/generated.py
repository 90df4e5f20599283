"""Generated datasets: where the collector puts them and how they are loaded (no torch here).

Loading a generated dataset reads one HDF5 file with h5py (`benchmark.data.dsrl.read_dataset`);
nothing on this path imports torch or the PPO learner, so a training run on generated data
starts as fast as one on a DSRL file. The collector itself is `benchmark.data.collect`.

Files live in the suite's own cache (`benchmark.paths.cache_dir()/"generated"`), never under a
DSRL file name or in DSRL's folder (a generated file there would pose as the real data):

    generated/<Task>-seed<S>-v<V>/...               one collection run (benchmark.data.collect)
    generated/Generated-<Task>-<cmax>-<ntraj>.hdf5    the dataset (+ .json card, .png scatter)
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py

from benchmark.data.dataset import Dataset
from benchmark.errors import ConfigError, DatasetFormatError, DatasetNotFoundError
from benchmark.paths import cache_dir, dsrl_dir
from benchmark.tasks import TaskSpec, get_task

COLLECTOR_VERSION = "2"
"""Bump when the collector's recipe or learner changes what it produces: files written by an
older version are refused by `load_generated` (their data is not what the suite now makes).
Version 2: headless safety-gymnasium resets, faster navigation multiplier, recipes on TaskSpec."""


def generated_dir() -> Path:
    """Where generated datasets live; refuses to be DSRL's own cache (it would pose as DSRL)."""
    root = cache_dir() / "generated"
    dsrl = dsrl_dir().resolve()
    if root.resolve() == dsrl or dsrl in root.resolve().parents:
        raise ConfigError(
            f"the suite's cache {root} is inside DSRL's cache {dsrl}; set BENCHMARK_CACHE_DIR "
            "elsewhere so generated data can never pose as a DSRL file"
        )
    return root


def run_dir(task: TaskSpec, seed: int, root: Path | None = None) -> Path:
    """A collection run's folder; the collector version is in the name, so a new version
    starts a fresh run instead of resuming an old one's learner."""
    suffix = _suffix(run_revision(task))
    return (root or generated_dir()) / f"{task.name}-seed{seed}-v{COLLECTOR_VERSION}{suffix}"


def recipe_revision(task: TaskSpec) -> int:
    return task.collect.revision if task.collect is not None else 1


def run_revision(task: TaskSpec) -> int:
    """The revision whose PPO run the current recipe's file is filtered from."""
    if task.collect is None or task.collect.run_revision is None:
        return recipe_revision(task)
    return task.collect.run_revision


def _suffix(revision: int) -> str:
    """The revision suffix of run folders and files; none for revision 1 (the names before
    revisions existed)."""
    return f"-r{revision}" if revision > 1 else ""


def dataset_file_name(task: TaskSpec, n_traj: int) -> str:
    suffix = _suffix(recipe_revision(task))
    return f"Generated-{task.name}-{int(round(task.max_cost))}-{n_traj}{suffix}.hdf5"


def name_revision(file_name: str) -> int:
    """The recipe revision in a generated file's name (`dataset_file_name`'s `-r<N>`), for
    when only the name is at hand (a committed card whose HDF5 file is not on this machine)."""
    match = re.search(r"-r(\d+)\.hdf5$", file_name)
    return int(match.group(1)) if match else 1


def regenerate_command(task: TaskSpec) -> str:
    return f"`make data TASK={task.name}` (python -m benchmark data collect {task.name})"


def _file_attr(path: Path, name: str) -> str | None:
    try:
        with h5py.File(path, "r") as handle:
            value = handle.attrs.get(name)
    except OSError:
        return None  # unreadable: read_dataset reports it properly
    if isinstance(value, bytes):
        value = value.decode()
    return None if value is None else str(value)


def file_version(path: Path) -> str | None:
    """The collector version in a generated file's HDF5 attributes (None when absent)."""
    return _file_attr(path, "version")


def file_revision(path: Path) -> int:
    """The recipe revision a generated file was made by (1 for files from before revisions)."""
    return int(_file_attr(path, "recipe_revision") or 1)


def load_generated(task: TaskSpec | str, root: Path | None = None) -> Dataset:
    """The newest `Generated-<Task>-*.hdf5` of the current collector version in the cache.

    A file from an older collector version is refused with the command that regenerates it.
    """
    from benchmark.data.dsrl import read_dataset

    task = get_task(task) if isinstance(task, str) else task
    folder = root or generated_dir()
    files = sorted(folder.glob(f"Generated-{task.name}-*.hdf5"), key=lambda p: p.stat().st_mtime)
    if not files and task.cannot_run():
        raise ConfigError(task.cannot_run())
    if not files:
        raise DatasetNotFoundError(
            f"no generated dataset for {task.name} in {folder}; make one with "
            f"{regenerate_command(task)}"
        )
    versioned = [p for p in files if file_version(p) == COLLECTOR_VERSION]
    if not versioned:
        newest = files[-1]
        raise DatasetFormatError(
            f"{newest} was made by collector version {file_version(newest) or 'unknown'}, but "
            f"this suite's collector is version {COLLECTOR_VERSION}; its data is not what the "
            f"suite now generates. Regenerate it with {regenerate_command(task)}"
        )
    current = [p for p in versioned if file_revision(p) == recipe_revision(task)]
    if not current:
        newest = versioned[-1]
        raise DatasetFormatError(
            f"{newest} was made by revision {file_revision(newest)} of {task.name}'s recipe, "
            f"but the suite's recipe is revision {recipe_revision(task)}; collect the current "
            f"one with {regenerate_command(task)}"
        )
    return read_dataset(current[-1], task, source="generated")
