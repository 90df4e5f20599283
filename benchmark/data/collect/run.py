"""A task's collection from start to file: run (or resume) the collector, filter, write.

`collect(task)` trains and logs (`collector.py`), then `finalise` applies DSRL's range and grid
filters (`filters.py`), writes one HDF5 file in DSRL's layout and its dataset card. The same
seed and software give a byte-identical HDF5 file: the attributes hold no clock times (the
wall time goes to the card and `done.json`) and HDF5's own timestamps are off.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmark.atomic import atomic_write_bytes, atomic_write_text
from benchmark.data.collect.collector import HOLD_FRACTION, Collector
from benchmark.data.collect.episodes import EpisodeLog, EpisodeTable
from benchmark.data.collect.filters import grid_filter, range_filter
from benchmark.data.dataset import Dataset, from_arrays, sha256_of_file
from benchmark.data.generated import (
    COLLECTOR_VERSION,
    dataset_file_name,
    generated_dir,
    run_dir,
)
from benchmark.errors import ConfigError
from benchmark.lock import exclusive
from benchmark.paths import reports_dir
from benchmark.tasks import CollectSpec, TaskSpec, get_task


def collect_spec(task: TaskSpec | str) -> CollectSpec:
    """A task's collection recipe (on its TaskSpec)."""
    task = get_task(task) if isinstance(task, str) else task
    if task.cannot_run():
        raise ConfigError(task.cannot_run())
    if task.collect is None:
        raise ConfigError(
            f"no collection recipe for task {task.name} ({task.family}); the suite collects "
            f"data for safety-gymnasium, bullet and toy tasks"
        )
    return task.collect


def table_to_dataset(task: TaskSpec, table: EpisodeTable, keep: np.ndarray, attrs: dict) -> Dataset:
    """DSRL arrays of the kept episodes, in logging order: terminals only on real termination,
    timeouts on truncation."""
    keep = np.sort(np.asarray(keep, dtype=np.int64))
    lengths = table.lengths[keep]
    step_starts = table.step_starts[keep]
    obs_starts = step_starts + np.asarray(keep)  # obs has one extra row per earlier episode
    step_idx = np.concatenate([np.arange(s, s + n) for s, n in zip(step_starts, lengths)])
    obs_idx = np.concatenate([np.arange(s, s + n) for s, n in zip(obs_starts, lengths)])
    ends = np.cumsum(lengths) - 1
    terminals = np.zeros(step_idx.shape[0], dtype=bool)
    timeouts = np.zeros(step_idx.shape[0], dtype=bool)
    terminals[ends] = table.terminated[keep]
    timeouts[ends] = table.truncated[keep]
    arrays = {
        "observations": table.obs[obs_idx],
        "next_observations": table.obs[obs_idx + 1],
        "actions": table.actions[step_idx],
        "rewards": table.rewards[step_idx],
        "costs": table.costs[step_idx],
        "terminals": terminals,
        "timeouts": timeouts,
    }
    return from_arrays(task.name, arrays, source="generated", attrs=attrs)


def finalise(
    task: TaskSpec,
    spec: CollectSpec,
    seed: int,
    folder: Path,
    out_dir: Path,
    report_dir: Path | None = None,
) -> Path:
    """Filter the logged episodes, write the HDF5 file and its card; returns the file's path."""
    from benchmark.data.dsrl import write_dataset

    table = EpisodeLog(folder / "episodes").load()
    returns, costs = table.returns, table.episode_costs
    in_range = np.flatnonzero(range_filter(task, spec, returns, costs))
    if not len(in_range):
        _discard_unusable(task, spec, folder, table.num_episodes)
    rng = np.random.default_rng(seed + 7919)
    picked = in_range[grid_filter(returns[in_range], costs[in_range], spec.trajectories, rng)]
    checkpoint = torch.load(folder / "checkpoint.pt", weights_only=False)
    state = checkpoint["state"]
    schedule = {
        "kind": "linear",
        "start": spec.limit_start,
        "end": spec.limit_end,
        "hold_fraction": HOLD_FRACTION,
        "total_steps": spec.steps,
    }
    attrs = {
        "source": "generated",
        "task": task.name,
        "env_id": task.env_id,
        "seed": seed,
        "generator": "benchmark.data.collect (PPO-Lagrangian, every training episode logged)",
        "version": COLLECTOR_VERSION,
        "recipe_revision": spec.revision,
        "schedule": json.dumps(schedule),
        "steps": int(state["step"]),
        "learner": json.dumps(checkpoint["meta"]["learner"]),
        "episodes_logged": int(table.num_episodes),
        "episodes_after_range_filter": int(in_range.shape[0]),
        "episodes_after_grid_filter": int(picked.shape[0]),
        "range_filter": json.dumps(
            {"reward_min": 0.0 if spec.reward_filter else None, "cost_max": task.max_cost}
        ),
    }
    dataset = table_to_dataset(task, table, picked, attrs)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / dataset_file_name(task, dataset.num_episodes)
    write_dataset(dataset, path, attrs)
    write_card(dataset, task, path.with_suffix(""), state, report_dir)
    done = {
        "path": str(path),
        "revision": spec.revision,
        "steps": int(state["step"]),
        "trajectories": dataset.num_episodes,
        "wall_seconds": round(float(state["wall_seconds"]), 1),
    }
    atomic_write_text(folder / "done.json", json.dumps(done, indent=1))
    return path


def _discard_unusable(task: TaskSpec, spec: CollectSpec, folder: Path, episodes: int) -> None:
    """No logged episode passes DSRL's range filter: say so in one line. The folder goes too
    (nothing in it can become a dataset, and a rerun of the same command would end here
    again), so the next attempt starts clean."""
    reused = spec.run_revision is not None  # an earlier revision's run: never ours to delete
    if reused:
        fate = f" ({folder.name} is kept: it is revision {spec.run_revision}'s run)"
    else:
        shutil.rmtree(folder, ignore_errors=True)
        fate = f", and {folder.name} removed"
    bounds = f"C <= {task.max_cost:g}" + (" and R >= 0" if spec.reward_filter else "")
    raise ConfigError(
        f"{task.name}: none of the {episodes} episodes logged in {spec.steps:,} steps passes "
        f"DSRL's range filter ({bounds}); nothing written{fate}. "
        f"Collect more steps (this task's recipe: {collect_spec(task).steps:,})"
    )


def write_card(dataset: Dataset, task: TaskSpec, stem: Path, state: dict, report_dir) -> dict:
    """Card JSON + scatter PNG next to the HDF5 file, copied to `report_dir` under the names
    `python -m benchmark data card TASK --data generated` uses (`<Task>-generated.*`, or with
    the content hash appended where that name holds another dataset's card)."""
    from benchmark.data.card import dataset_card, report_stem, scatter_png, write_card_json

    card = dataset_card(dataset, task, task.drcorl_cost_limit)
    card["path"] = str(Path(f"{stem}.hdf5"))
    card["file_sha256"] = sha256_of_file(card["path"])
    steps = int(state["step"])
    wall = float(state["wall_seconds"])
    card["collection"] = {
        "steps": steps,
        "wall_seconds": round(wall, 1),
        "steps_per_second": round(steps / max(wall, 1e-9), 1),
        "episodes_logged": int(dataset.attrs["episodes_logged"]),
        "episodes_after_range_filter": int(dataset.attrs["episodes_after_range_filter"]),
        "schedule": json.loads(dataset.attrs["schedule"]),
    }
    json_path = write_card_json(card, Path(f"{stem}.json"))
    png_path = scatter_png(dataset, task, task.drcorl_cost_limit, Path(f"{stem}.png"))
    if report_dir is not None:
        # Atomic copies: the report folder may be read (or committed) while a collection ends.
        name = report_stem(Path(report_dir), task.name, "generated", card["content_sha256"])
        atomic_write_bytes(report_dir / f"{name}.json", json_path.read_bytes())
        atomic_write_bytes(report_dir / f"{name}.png", png_path.read_bytes())
    return card


def refresh_card(
    task: TaskSpec | str, seed: int = 0, root: Path | None = None, report_dir: Path | None = None
) -> dict:
    """Write a finished collection's card again from its HDF5 file (after the card changed)."""
    from benchmark.data.dsrl import read_dataset

    task = get_task(task) if isinstance(task, str) else task
    folder = run_dir(task, seed, root)
    path = Path(json.loads((folder / "done.json").read_text())["path"])
    dataset = read_dataset(path, task, source="generated")
    state = torch.load(folder / "checkpoint.pt", weights_only=False)["state"]
    return write_card(dataset, task, path.with_suffix(""), state, report_dir)


# --------------------------------------------------------------------------- entry points


def collect(
    task: TaskSpec | str,
    steps: int | None = None,
    seed: int = 0,
    trajectories: int | None = None,
    num_envs: int | None = None,
    root: Path | None = None,
    report_dir: Path | None = None,
    progress: bool = True,
    max_updates: int | None = None,
    workers: int = 0,
) -> Path | None:
    """Collect (or resume) a task's run, then write its dataset; None if stopped early.

    `workers` > 0 steps the envs in that many worker processes (same data; faster only when
    free cores are there to run them)."""
    task = get_task(task) if isinstance(task, str) else task
    spec = collect_spec(task)
    overrides = {"steps": steps, "trajectories": trajectories, "num_envs": num_envs}
    spec = replace(spec, **{k: v for k, v in overrides.items() if v is not None})
    if spec.steps <= 0 or spec.trajectories <= 0 or spec.num_envs <= 0:
        raise ConfigError("--steps, --trajectories and --num-envs must be positive")
    root = root or generated_dir()
    folder = run_dir(task, seed, root)
    torch.set_num_threads(1)
    with exclusive(folder, f"the collection of {task.name} seed {seed}"):
        collector = Collector(task, spec, seed, folder, progress=progress, workers=workers)
        state = collector.run(max_updates=max_updates)
        if state.step < spec.steps:
            return None
        return finalise(task, spec, seed, folder, root, report_dir)


def cli_collect(args) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    path = collect(
        args.task,
        steps=args.steps,
        seed=args.seed,
        trajectories=args.trajectories,
        num_envs=args.num_envs,
        report_dir=reports_dir() / "datasets",
        workers=int(getattr(args, "workers", 0) or 0),
    )
    if path is None:
        return 1
    from benchmark.data.card import format_card

    card = json.loads(path.with_suffix(".json").read_text())
    print(format_card(card))
    print(f"wrote {path} and its card {path.with_suffix('.json')} / .png")
    return 0
