"""`make bench` section `gpu`: what the `paper` budgets cost on a GPU.

Runs where CUDA is visible and is skipped with one line where it is not (`--device cpu --tiny`
runs it end to end on the CPU with small networks, for tests). On the device:

- per method (every registered algorithm) and per distinct `paper` config: each stage's update
  step through `update`, with the runner's batch sampling and host -> device copy, in ms/step
  (the median of `repeats` timed blocks after a warm-up, `torch.cuda.synchronize` around each
  block), and the device memory peak (`torch.cuda.max_memory_allocated` after building the
  algorithm and timing its stages);
- the projected device-hours of the `paper` sweep and of `paper-cost-limits`: per (algorithm,
  task) the profile's runs x each stage's steps x its ms/step, where a stage shared across cost
  limits (DRCORL's behaviour model, critics and extraction, saved as an artifact) counts once
  per (task, seed). Evaluation episodes and DRCORL's online rollouts run in the simulators on
  the CPU and are not included;
- DRCORL's behaviour step (2M steps at batch 2048, the dominant cost) under each
  `behavior_speedup` (eager, torch.compile, bf16 autocast, both): ms/step, speed-up over eager,
  and a short loss curve of each variant against eager's over three seeds; a variant "stays
  within seed noise" when its mean distance to eager's curve (same seed, same noise draws) is
  at most the mean spread of eager's curves across the seeds;
- DRCORL inference at batch 1 on the device (extracted policy, diffusion sampler), the
  poster's efficiency panel, drawn beside the published points by the inference figure.

The timed instances are built on synthetic transitions of one real task's shapes (the first
task of each config group), so no dataset is needed; on a GPU these small networks are bound by
kernel launches, not by the observation size. `tiny` swaps the networks and batches for the
`smoke` budget set and shortens every loop: its numbers test the section, they measure
nothing.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from algorithms.drcorl.diffusion import SPEEDUPS
from benchmark.bench.drcorl import _dataset as drcorl_dataset
from benchmark.bench.drcorl import _inference_rows, _sync, _through_update
from benchmark.bench.osrl import _synthetic_dataset
from benchmark.interface import TrainContext
from benchmark.profiles import Profile, load_profile, resolve_config
from benchmark.registry import AlgorithmEntry, load
from benchmark.tasks import TaskSpec, get_task

SECTION = "gpu"
PROFILES = ("paper", "paper-cost-limits")
TINY_BUDGETS = "smoke"
"""The budget set whose small networks and batches `tiny` times."""
SKIP_NOTE = "skipped: no CUDA device visible (run on a GPU machine; --device cpu --tiny tests it)"
CURVE_SEEDS = (0, 1, 2)
TINY_CHANGES = {
    "score_hidden": 32,
    "score_blocks": 1,
    "score_fourier_dim": 16,
    "score_cond_dim": 16,
    "behavior_batch_size": 64,
}


@dataclasses.dataclass(frozen=True)
class Loops:
    """How long each measurement runs."""

    warmup: int
    repeats: int
    steps: int
    curve_steps: int
    curve_windows: int


FULL = Loops(warmup=5, repeats=5, steps=20, curve_steps=500, curve_windows=10)
QUICK = Loops(warmup=3, repeats=3, steps=10, curve_steps=200, curve_windows=10)
TINY = Loops(warmup=1, repeats=3, steps=1, curve_steps=12, curve_windows=4)


def pick_device(device: str | None) -> torch.device | None:
    """The device to measure on: the one asked for, else CUDA when visible, else None (skip)."""
    if device:
        return torch.device(device)
    return torch.device("cuda") if torch.cuda.is_available() else None


def machine(device: torch.device) -> dict:
    info = {"device": device.type, "torch": torch.__version__}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


# ---------------------------------------------------------------------------- timing


def median_ms(fn: Callable[[], object], device: torch.device, loops: Loops) -> float:
    """Median over `loops.repeats` blocks of `loops.steps` calls of ms per call, after
    `loops.warmup` calls; the device is synchronised around every block."""
    for _ in range(loops.warmup):
        fn()
    blocks = []
    for _ in range(loops.repeats):
        _sync(device)
        start = time.perf_counter()
        for _ in range(loops.steps):
            fn()
        _sync(device)
        blocks.append((time.perf_counter() - start) / loops.steps * 1e3)
    return statistics.median(blocks)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> float | None:
    """Device memory peak since the last reset, MiB; None on the CPU (not measured)."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


# ---------------------------------------------------------------------------- methods


def _config(entry: AlgorithmEntry, task: str, profile: Profile, budgets: str | None = None):
    """The run config of `entry` on `task` in `profile` (or with another budget set)."""
    if budgets is not None:
        profile = dataclasses.replace(profile, budgets=budgets)
    return entry.config_cls(**resolve_config(entry.name, entry.config_cls, task, profile, {}))


def _build(entry: AlgorithmEntry, config, task: TaskSpec, limits, device: torch.device):
    limits = tuple(limits)
    ctx = TrainContext(
        task=task,
        dataset=_synthetic_dataset(task, episodes=60),
        cost_limit=max(limits),
        seed=0,
        device=device,
        cost_limits=limits,
    )
    torch.manual_seed(0)
    return entry.cls(config, ctx)


def _stages(entry: AlgorithmEntry, config, task: TaskSpec, limits) -> tuple:
    """The `paper` stages (steps, batches, sharing) of a config, read from a CPU instance."""
    return _build(entry, config, task, limits, torch.device("cpu")).stages


def config_groups(profile: Profile, entry: AlgorithmEntry) -> dict[str, list[str]]:
    """Tasks of the profile grouped by identical resolved config (e.g. DRCORL's per-task
    batches and steps), keyed by the config's JSON."""
    groups: dict[str, list[str]] = {}
    for task in profile.tasks:
        resolved = resolve_config(entry.name, entry.config_cls, task, profile, {})
        groups.setdefault(json.dumps(resolved, sort_keys=True, default=str), []).append(task)
    return groups


def _method_rows(
    entry: AlgorithmEntry, config, task: TaskSpec, limits, device, loops: Loops, tiny: bool
) -> list[dict]:
    """One row per stage: ms/step on `device` and the memory peak of the whole instance."""
    stages = _stages(entry, config, task, limits)
    timed_config = (
        _config(entry, task.name, load_profile("paper"), TINY_BUDGETS) if tiny else config
    )
    _reset_peak(device)
    algo = _build(entry, timed_config, task, limits, device)
    timed = {s.name: s for s in algo.stages}
    ms = {}
    for stage in stages:
        batch = timed[stage.name].batch_size
        ms[stage.name] = median_ms(_through_update(algo, stage.name, batch, device), device, loops)
    peak = _peak_mib(device)
    del algo
    return [
        {
            "section": SECTION,
            "what": f"{entry.name} {stage.name} update",
            "algorithm": entry.name,
            "stage": stage.name,
            "task": f"{task.name} ({task.obs_dim}->{task.act_dim})",
            "batch": stage.batch_size,
            "timed_batch": timed[stage.name].batch_size,
            "device": device.type,
            "tiny": tiny,
            "ms_per_step": ms[stage.name],
            "peak_mib": peak,
            "paper_steps": stage.steps,
            "shared_across_cost_limits": stage.shared_across_cost_limits,
            "stands_for": [],
        }
        for stage in stages
    ]


def measure_methods(
    device: torch.device, loops: Loops, tiny: bool, profiles=PROFILES, algorithms=None
) -> tuple[list[dict], dict[tuple[str, str], list[dict]]]:
    """Rows for every (algorithm, config group) the profiles need, and a map
    (algorithm, task) -> that task's stage rows, for the projections."""
    rows, by_task, done = [], {}, {}
    for profile_name in profiles:
        profile = load_profile(profile_name)
        for name in profile.algorithms:
            if algorithms is not None and name not in algorithms:
                continue
            entry = load(name)
            for key, tasks in config_groups(profile, entry).items():
                if (name, key) not in done:
                    task = get_task(tasks[0])
                    config = entry.config_cls(**json.loads(key))
                    limits = profile.limits_for(task, name)
                    done[(name, key)] = _method_rows(
                        entry, config, task, limits, device, loops, tiny
                    )
                    rows += done[(name, key)]
                for task_name in tasks:
                    by_task[(name, task_name)] = done[(name, key)]
                    for row in done[(name, key)]:  # the tasks this timing is projected for
                        if task_name not in row["stands_for"]:
                            row["stands_for"].append(task_name)
    return rows, by_task


def project(profile_name: str, by_task: dict, device: torch.device, tiny: bool) -> list[dict]:
    """Device-hours of a profile's sweep: per algorithm, the sum over its tasks of
    runs x steps x ms for every stage (shared stages once per (task, seed))."""
    profile = load_profile(profile_name)
    rows, total = [], 0.0
    for name in profile.algorithms:
        if not any(key[0] == name for key in by_task):
            continue
        conditioned = load(name).cost_conditioned
        runs, hours = 0, 0.0
        for task_name in profile.tasks:
            limits = profile.limits_for(get_task(task_name), name)
            seeds = len(profile.seeds)
            task_runs = seeds if conditioned else seeds * len(limits)
            runs += task_runs
            for stage in by_task[(name, task_name)]:
                times = seeds if stage["shared_across_cost_limits"] else task_runs
                hours += times * stage["paper_steps"] * stage["ms_per_step"] / 3.6e6
        total += hours
        rows.append(
            {
                "section": SECTION,
                "what": f"{profile_name} sweep, {name}, projected",
                "profile": profile_name,
                "algorithm": name,
                "runs": runs,
                "tasks": len(profile.tasks),
                "device": device.type,
                "tiny": tiny,
                "device_hours": hours,
            }
        )
    rows.append(
        {
            "section": SECTION,
            "what": f"{profile_name} sweep, all methods, projected",
            "profile": profile_name,
            "algorithm": "all",
            "runs": sum(r["runs"] for r in rows),
            "device": device.type,
            "tiny": tiny,
            "device_hours": total,
            "excludes": "evaluation and online rollouts (CPU simulators)",
        }
    )
    return rows


# ---------------------------------------------------------------------------- DRCORL speed-ups


def _drcorl(device: torch.device, seed: int, tiny: bool, **changes):
    """DRCORL with its `paper` config on CarGoal1 shapes (the drcorl section's synthetic set)."""
    from algorithms.drcorl import DRCORL, Config

    task = get_task("CarGoal1")
    changes = {**(TINY_CHANGES if tiny else {}), **changes}
    config = resolve_config("drcorl", Config, task.name, load_profile("paper"), changes)
    ctx = TrainContext(
        task=task,
        dataset=drcorl_dataset(task.obs_dim, task.act_dim),
        cost_limit=task.drcorl_cost_limit,
        seed=seed,
        device=device,
    )
    torch.manual_seed(seed)
    return DRCORL(Config(**config), ctx)


def loss_curve(algo, device: torch.device, loops: Loops) -> tuple[list[float], float]:
    """(mean behaviour loss over `curve_windows` consecutive windows of `curve_steps` steps,
    seconds of the first step, which includes compiling when the variant compiles)."""
    step = _through_update(algo, "behavior", algo.config.behavior_batch_size, device)
    started = time.perf_counter()
    losses = [step()["loss/diffusion"]]
    _sync(device)
    first_s = time.perf_counter() - started
    losses += [step()["loss/diffusion"] for _ in range(loops.curve_steps - 1)]
    windows = np.array_split(np.array(losses), loops.curve_windows)
    return [float(w.mean()) for w in windows], first_s


def noise_verdict(variant: list[float], eager: list[list[float]]) -> dict:
    """Distance of a variant's curve to eager's (same seed, first of `eager`) against the
    spread of eager's curves over seeds, window by window."""
    curves = np.array(eager)
    deviation = np.abs(np.array(variant) - curves[0])
    spread = curves.max(axis=0) - curves.min(axis=0)
    return {
        "mean_deviation": float(deviation.mean()),
        "max_deviation": float(deviation.max()),
        "mean_seed_spread": float(spread.mean()),
        "within_seed_noise": bool(deviation.mean() <= spread.mean()),
    }


def speedup_rows(device: torch.device, loops: Loops, tiny: bool, variants=SPEEDUPS) -> list[dict]:
    """Per variant: its seed-0 loss curve from a fresh model (the first step compiles), then
    ms/step on the trained-on model; eager also runs the other seeds for the noise band."""
    eager = [loss_curve(_drcorl(device, seed, tiny), device, loops)[0] for seed in CURVE_SEEDS[1:]]
    rows, eager_ms = [], None
    for speedup in ("eager", *(v for v in variants if v != "eager")):  # eager first: the base
        _reset_peak(device)
        algo = _drcorl(device, CURVE_SEEDS[0], tiny, behavior_speedup=speedup)
        curve, first_s = loss_curve(algo, device, loops)
        if speedup == "eager":
            eager.insert(0, curve)
        batch = algo.config.behavior_batch_size
        ms = median_ms(_through_update(algo, "behavior", batch, device), device, loops)
        eager_ms = ms if speedup == "eager" else eager_ms
        rows.append(
            {
                "section": SECTION,
                "what": f"drcorl behaviour step, behavior_speedup={speedup}",
                "speedup_variant": speedup,
                "batch": batch,
                "device": device.type,
                "tiny": tiny,
                "ms_per_step": ms,
                "first_step_s": first_s,
                "speedup_vs_eager": eager_ms / ms if eager_ms else None,
                "peak_mib": _peak_mib(device),
                "loss_curve": curve,
                "eager_curves": eager if speedup == "eager" else None,
                **noise_verdict(curve, eager),
            }
        )
    return rows


# ---------------------------------------------------------------------------- section


def inference_rows(device: torch.device, quick: bool) -> list[dict]:
    """The drcorl section's batch-1 inference rows (policy, sampler), on this device."""
    return [
        {**row, "section": SECTION, "device": device.type} for row in _inference_rows(device, quick)
    ]


def run(
    quick: bool,
    device: str | None = None,
    tiny: bool = False,
    variants: tuple[str, ...] = SPEEDUPS,
    algorithms: tuple[str, ...] | None = None,
) -> list[dict]:
    """The section's rows; `variants` and `algorithms` narrow it (tests)."""
    torch.set_num_threads(1)
    dev = pick_device(device)
    if dev is None:
        return [{"section": SECTION, "what": "GPU section", "note": SKIP_NOTE}]
    loops = TINY if tiny else (QUICK if quick else FULL)
    rows = [{"section": SECTION, "what": "machine", **machine(dev), "tiny": tiny}]
    methods, by_task = measure_methods(dev, loops, tiny, algorithms=algorithms)
    rows += methods
    for profile in PROFILES:
        rows += project(profile, by_task, dev, tiny)
    rows += speedup_rows(dev, loops, tiny, variants)
    rows += inference_rows(dev, quick or tiny)
    return rows
