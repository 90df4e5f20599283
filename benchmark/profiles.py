"""Profiles (what a sweep runs) and config resolution (what one run's Config is).

Config precedence, lowest first: the algorithm's `Config` defaults; the `tasks:` section of
`configs/algorithms/<algorithm>.yaml` (per-task overrides, e.g. the paper's per-task settings);
that file's `budgets: {<set>: ...}` for the budget set the profile names (`budgets: demo`); its
`budget_tasks: {<set>: {<task>: ...}}`; the profile file's own `algorithm_config:
{<algorithm>: ...}`; command-line `--set key=value`.

A profile must name its budget set, and every algorithm it runs must define that set: a renamed
or empty profile is an error, never a silent run at the reference budget. Every value, of the
profile and of each resolved config, is checked against its declared type and range here,
before anything is written or trained.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmark.data import DATA_SOURCES
from benchmark.errors import ConfigError
from benchmark.protocols import PROTOCOLS
from benchmark.slurm_options import SLURM_KEYS  # declared once, with the sweep's flags
from benchmark.tasks import TaskSpec, expand_task_set, get_task
from benchmark.validation import (
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    check_value,
    field_hints,
)

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
PROFILE_KEYS = {
    "name",
    "description",
    "protocol",
    "data",
    "tasks",
    "algorithms",
    "seeds",
    "cost_limits",
    "table_cost_limits",
    "average_cost_limits",
    "eval_episodes",
    "num_eval_envs",
    "checkpoint_every",
    "checkpoint_seconds",
    "log_every",
    "diagnostic_evals",
    "diagnostic_episodes",
    "budget_scale",
    "budget_scales",
    "local",
    "slurm",
    "budgets",
    "algorithm_config",
}
PROFILE_HINTS: dict[str, Any] = {
    "eval_episodes": PositiveInt,
    "num_eval_envs": PositiveInt,
    "checkpoint_every": PositiveInt,
    "checkpoint_seconds": PositiveFloat,
    "log_every": PositiveInt,
    "diagnostic_evals": NonNegativeInt,
    "diagnostic_episodes": PositiveInt,
    "budget_scale": PositiveFloat,
}
"""The numeric profile keys and what each accepts (the rest are checked where they are read)."""


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    protocol: str
    data: str
    tasks: tuple[str, ...]
    algorithms: tuple[str, ...]
    seeds: tuple[int, ...]
    cost_limits: Any
    """`drcorl` (each task's DRCORL limit), `osrl` (its three OSRL limits), a list of numbers,
    or a mapping task -> one of those with an optional `default`."""
    eval_episodes: int = 20
    num_eval_envs: int = 10
    checkpoint_every: int = 1000
    checkpoint_seconds: float = 120.0
    log_every: int = 100
    diagnostic_evals: int = 0
    """Diagnostic evaluations of the current policy in the simulator at this many evenly
    spaced points of the last training stage (0 = none). Recorded beside the run, never fed
    back into training or selection; their environment steps are counted apart from
    `online_env_steps` (runner: `Trainer._diagnose`)."""
    diagnostic_episodes: int = 5
    """Episodes of each diagnostic evaluation (the same fixed seeds at every point)."""
    budget_scale: float = 1.0
    """Every step count of the budget set times this (`--budget-scale` overrides it): batch
    and network sizes unchanged; part of the run's identity (`scale_steps`)."""
    budget_scales: tuple[float, ...] = ()
    """A budget curve's scales: the sweep runs every run at each (`figure-budget` draws
    them); empty = the one `budget_scale`."""
    local: dict = field(default_factory=dict)
    slurm: dict = field(default_factory=dict)
    budgets: str = ""
    """The budget set: which `budgets:` section of every algorithm YAML applies (required)."""
    algorithm_config: dict = field(default_factory=dict)
    table_cost_limits: Any = "drcorl"
    average_cost_limits: bool = False
    """True: the table shows each task as the mean over its table cost limits, per seed (OSRL's
    and CAPS's convention: one score per task over its three thresholds); False: one row per
    (task, limit)."""
    path: str = ""
    ref: str = ""
    """How to load this profile again: its name, or the absolute path of its YAML file."""

    def limits_for(self, task: TaskSpec, algorithm: str | None = None) -> tuple[float, ...]:
        """The limits `algorithm` runs at on `task`. A task's entry may itself map algorithm
        names to a spec, with an optional `default` (the `paper` profile runs the CarRun
        baselines at 10 and 30 and DRCORL at its own 30)."""
        spec = self.cost_limits
        if isinstance(spec, dict):
            spec = spec.get(task.name, spec.get("default", "drcorl"))
        if isinstance(spec, dict):
            spec = spec.get(algorithm, spec.get("default", "drcorl"))
        return _limits(spec, task)

    def table_limits_for(self, task: TaskSpec) -> tuple[float, ...]:
        spec = self.table_cost_limits
        if isinstance(spec, dict):
            spec = spec.get(task.name, spec.get("default", "drcorl"))
        return _limits(spec, task)


def _limits(spec: Any, task: TaskSpec) -> tuple[float, ...]:
    if spec == "drcorl":
        return (task.drcorl_cost_limit,)
    if spec == "osrl":
        return tuple(task.osrl_cost_limits)
    if isinstance(spec, (int, float)):
        spec = [spec]
    if isinstance(spec, (list, tuple)) and spec:
        where = f"cost_limits of {task.name}"
        return tuple(check_value(PositiveFloat, v, where, "cost_limit") for v in spec)
    raise ConfigError(f"bad cost_limits {spec!r}: use drcorl, osrl or a list of numbers")


def _profile_flag(data: dict, path: Path, key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: {key} must be true or false, got {value!r}")
    return value


# Profiles loaded from a file, by their name: a report verb that reads runs/<name>/ finds the
# file's settings from the name alone (one resolver for names and paths).
_LOADED_FILES: dict[str, Path] = {}


def profile_path(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.exists():
            raise ConfigError(f"profile file {candidate} does not exist")
        return candidate
    if name_or_path in _LOADED_FILES:
        return _LOADED_FILES[name_or_path]
    path = CONFIG_DIR / "profiles" / f"{name_or_path}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in (CONFIG_DIR / "profiles").glob("*.yaml"))
        raise ConfigError(f"unknown profile {name_or_path!r}; known: {', '.join(known)}")
    return path


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping")
    return data


def _expand_names(value: Any, kind: str) -> tuple[str, ...]:
    """Task sets (`table`, `all`, `toy`, `dsrl`: benchmark.tasks) or `all` algorithms, checked."""
    if kind == "tasks":
        return expand_task_set(value)
    from benchmark.registry import ALGORITHMS, algorithm_names

    items = [value] if isinstance(value, str) else list(value or [])
    names = [n for item in items for n in (algorithm_names() if item == "all" else [item])]
    unknown = [n for n in names if n not in ALGORITHMS]
    if unknown:
        raise ConfigError(f"profile names unknown algorithm(s) {unknown}")
    return tuple(dict.fromkeys(names))


def budget_sets() -> list[str]:
    """Every budget set some algorithm YAML defines."""
    sets: set[str] = set()
    for path in sorted((CONFIG_DIR / "algorithms").glob("*.yaml")):
        sets.update((_read_yaml(path).get("budgets") or {}).keys())
    return sorted(sets)


def _profile_budgets(data: dict, path: Path) -> str:
    budgets = data.get("budgets")
    if not isinstance(budgets, str) or not budgets:
        raise ConfigError(
            f"{path}: a profile must name its budget set (`budgets: <set>`), got {budgets!r}; "
            f"budget sets: {', '.join(budget_sets())}"
        )
    return budgets


def _profile_scales(data: dict, path: Path) -> tuple[float, ...]:
    scales = data.get("budget_scales") or []
    if not isinstance(scales, list):
        raise ConfigError(f"{path}: budget_scales must be a list of positive numbers")
    where = f"{path} budget_scales"
    return tuple(check_value(PositiveFloat, s, where, f"[{i}]") for i, s in enumerate(scales))


def _profile_seeds(data: dict, path: Path) -> tuple[int, ...]:
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds:
        raise ConfigError(f"{path}: seeds={seeds!r} is not allowed; seeds must be a non-empty list")
    where = str(path)
    return tuple(check_value(NonNegativeInt, s, where, f"seeds[{i}]") for i, s in enumerate(seeds))


def _profile_numbers(data: dict, path: Path) -> dict[str, Any]:
    defaults = {f.name: f.default for f in dataclasses.fields(Profile) if f.name in PROFILE_HINTS}
    return {
        key: check_value(hint, data.get(key, defaults[key]), str(path), key)
        for key, hint in PROFILE_HINTS.items()
    }


def _profile_local(data: dict, path: Path) -> dict:
    local = data.get("local") or {}
    if not isinstance(local, dict):
        raise ConfigError(f"{path}: local must be a mapping, got {local!r}")
    if local.get("max_parallel") is not None:
        check_value(PositiveInt, local["max_parallel"], f"{path} local", "max_parallel")
    return dict(local)


def load_profile(name_or_path: str) -> Profile:
    path = profile_path(name_or_path)
    data = _read_yaml(path)
    unknown = set(data) - PROFILE_KEYS
    if unknown:
        hint = " (`config_profile` is now `budgets`)" if "config_profile" in unknown else ""
        raise ConfigError(f"{path}: unknown profile key(s) {sorted(unknown)}{hint}")
    bad_slurm = set(data.get("slurm") or {}) - SLURM_KEYS
    if bad_slurm:
        raise ConfigError(f"{path}: unknown slurm key(s) {sorted(bad_slurm)}")
    name = data.get("name", path.stem)
    protocol = data.get("protocol", "honest")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{path}: protocol must be one of {list(PROTOCOLS)}, not {protocol!r}")
    source = data.get("data", "auto")
    if source not in DATA_SOURCES:
        raise ConfigError(f"{path}: data must be one of {list(DATA_SOURCES)}, not {source!r}")
    profile = Profile(
        name=name,
        description=data.get("description", ""),
        protocol=protocol,
        data=source,
        tasks=_expand_names(data.get("tasks", "toy"), "tasks"),
        algorithms=_expand_names(data.get("algorithms", "all"), "algorithms"),
        seeds=_profile_seeds(data, path),
        cost_limits=data.get("cost_limits", "drcorl"),
        table_cost_limits=data.get("table_cost_limits", "drcorl"),
        average_cost_limits=_profile_flag(data, path, "average_cost_limits"),
        budget_scales=_profile_scales(data, path),
        **_profile_numbers(data, path),
        local=_profile_local(data, path),
        slurm=dict(data.get("slurm") or {}),
        budgets=_profile_budgets(data, path),
        algorithm_config=dict(data.get("algorithm_config") or {}),
        path=str(path),
        ref=str(path.resolve()) if path.suffix and Path(name_or_path).suffix else name_or_path,
    )
    for key in ("tasks", "algorithms"):
        if not getattr(profile, key):
            raise ConfigError(f"{path}: `{key}` is empty; a profile needs at least one")
    if Path(name_or_path).suffix:
        _LOADED_FILES[name] = path
    for task in profile.tasks:  # fail early on a bad cost_limits spec
        for algorithm in profile.algorithms:
            profile.limits_for(get_task(task), algorithm)
        profile.table_limits_for(get_task(task))
    return profile


def profile_name(name_or_path: str) -> str:
    """The name a profile's runs and reports are filed under: a YAML path is loaded (and its
    settings known by that name from then on); a name is the runs folder's, as given."""
    return load_profile(name_or_path).name if Path(name_or_path).suffix else name_or_path


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["lr=1e-3", "hidden=[64,64]"]` -> {"lr": 0.001, "hidden": [64, 64]} (YAML values)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set expects KEY=VALUE, got {pair!r}")
        key, raw = pair.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value)  # YAML 1.1 reads `1e-4` as a string
        out[key.strip()] = value
    return out


def _algorithm_yaml(algorithm: str) -> dict:
    path = CONFIG_DIR / "algorithms" / f"{algorithm}.yaml"
    return _read_yaml(path) if path.exists() else {}


def _apply(resolved: dict, layer: dict | None, hints: dict[str, Any], where: str) -> None:
    if layer is not None and not isinstance(layer, dict):
        raise ConfigError(f"{where}: expected a mapping of config keys, got {layer!r}")
    for key, value in (layer or {}).items():
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{where}: unknown config key {key!r}; known keys: {known}")
        resolved[key] = check_value(hints[key], value, where, key)


def _budget_layer(algorithm: str, spec: dict, budgets: str) -> dict:
    sets = spec.get("budgets") or {}
    if budgets not in sets:
        raise ConfigError(
            f"configs/algorithms/{algorithm}.yaml defines no budget set {budgets!r} (it has: "
            f"{', '.join(sets) or 'none'}); add `budgets: {{{budgets}: ...}}` there, or run a "
            f"profile with one of those sets"
        )
    return sets[budgets] or {}


def is_step_count(name: str) -> bool:
    """A Config field that counts training steps or iterations (what a budget scale scales):
    `steps`, `*_steps`, `*_step`, `*_iterations` (not `pe_steps_per_iteration`, a rate)."""
    return name == "steps" or name.endswith(("_steps", "_step", "_iterations"))


def scale_steps(config: dict[str, Any], scale: float) -> dict[str, Any]:
    """Every step count times `scale`, rounded, at least 1 (0 stays 0: a stage switched off)."""
    if scale == 1:
        return config
    return {
        k: (max(1, round(v * scale)) if v else v) if is_step_count(k) and isinstance(v, int) else v
        for k, v in config.items()
    }


def resolve_config(
    algorithm: str,
    config_cls: type,
    task: str,
    profile: Profile,
    overrides: dict[str, Any],
    budget_scale: float = 1.0,
) -> dict[str, Any]:
    """The run's config as a plain dict, every layer applied and every key checked. The
    budget scale multiplies the step counts of the budget set (the layers up to it), not a
    value the profile's `algorithm_config` or `--set` gives explicitly."""
    defaults = {
        f.name: _plain(getattr(config_cls(), f.name)) for f in dataclasses.fields(config_cls)
    }
    hints = field_hints(config_cls)
    spec = _algorithm_yaml(algorithm)
    unknown = set(spec) - {"tasks", "budgets", "budget_tasks"}
    if unknown:
        raise ConfigError(f"configs/algorithms/{algorithm}.yaml: unknown section(s) {unknown}")
    budgets = profile.budgets
    resolved = dict(defaults)
    yaml_name = f"configs/algorithms/{algorithm}.yaml"
    _apply(resolved, (spec.get("tasks") or {}).get(task), hints, f"{yaml_name} tasks.{task}")
    layer = _budget_layer(algorithm, spec, budgets)
    _apply(resolved, layer, hints, f"{yaml_name} budgets.{budgets}")
    budget_tasks = ((spec.get("budget_tasks") or {}).get(budgets) or {}).get(task)
    _apply(resolved, budget_tasks, hints, f"{yaml_name} budget_tasks.{budgets}.{task}")
    resolved = scale_steps(resolved, budget_scale)
    from_profile = profile.algorithm_config.get(algorithm)
    _apply(resolved, from_profile, hints, f"profile {profile.name} algorithm_config")
    _apply(resolved, overrides, hints, "--set")
    return resolved


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
