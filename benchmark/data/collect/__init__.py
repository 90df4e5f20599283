"""Collect DSRL-format datasets from the real simulators (datasets.md 3.2, "T2"; docs/datasets.md).

DSRL's recipe scaled to a CPU, in four parts:

- `episodes.py`: the append-only episode log (numpy only);
- `filters.py`: DSRL's range filter and the grid (density) filter;
- `collector.py` (+ `ppo_lagrangian.py`, `vector.py`): the PPO-Lagrangian run with an annealed
  cost limit that logs every finished episode, its envs in this process or in workers;
- `run.py`: one task from start to file (collect or resume, filter, write HDF5 and card).

Each task's recipe is its `TaskSpec.collect` (benchmark/tasks.py). Loading a generated dataset
does not come through here (no torch): see `benchmark.data.generated`.

Files, all in the suite's own cache (`benchmark.paths.cache_dir()/"generated"`):

    generated/<Task>-seed<S>-v<V>/episodes/chunk-NNNNNN.npz   append-only episode log
    generated/<Task>-seed<S>-v<V>/checkpoint.pt               latest learner state
    generated/<Task>-seed<S>-v<V>/snapshots/step-NNNNNNNNN.pt every ~10% of the steps
    generated/<Task>-seed<S>-v<V>/progress.csv                one row per update
    generated/<Task>-seed<S>-v<V>/done.json                   written when the file is
    generated/Generated-<Task>-<cmax>-<ntraj>.hdf5            the dataset (+ .json, .png)
"""

from __future__ import annotations

from benchmark.data.collect.collector import (
    HOLD_FRACTION,
    Collector,
    CollectState,
    learner_config,
)
from benchmark.data.collect.episodes import Episode, EpisodeLog, EpisodeRecorder, EpisodeTable
from benchmark.data.collect.filters import grid_filter, range_filter
from benchmark.data.collect.run import (
    cli_collect,
    collect,
    collect_spec,
    finalise,
    refresh_card,
    table_to_dataset,
    write_card,
)
from benchmark.data.generated import (
    COLLECTOR_VERSION,
    dataset_file_name,
    generated_dir,
    load_generated,
    run_dir,
)
from benchmark.tasks import DSRL_TASKS, CollectSpec

# The order `make data-all` collects in: the three tasks first runs need most (the velocity,
# Bullet and one navigation task of the first real-simulator table), then the other
# navigation tasks, which hold most of the CPU time, then the rest.
FIRST = ("HalfCheetahVelocity", "CarRun", "PointGoal1")
COLLECTION_ORDER: tuple[str, ...] = FIRST + tuple(
    t.name
    for t in sorted(DSRL_TASKS, key=lambda t: t.family != "navigation")
    if t.name not in FIRST
)

__all__ = [
    "COLLECTION_ORDER",
    "COLLECTOR_VERSION",
    "HOLD_FRACTION",
    "CollectSpec",
    "CollectState",
    "Collector",
    "Episode",
    "EpisodeLog",
    "EpisodeRecorder",
    "EpisodeTable",
    "cli_collect",
    "collect",
    "collect_spec",
    "dataset_file_name",
    "finalise",
    "generated_dir",
    "grid_filter",
    "learner_config",
    "load_generated",
    "range_filter",
    "refresh_card",
    "run_dir",
    "table_to_dataset",
    "write_card",
]
