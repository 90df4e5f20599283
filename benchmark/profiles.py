"""Profiles (what a sweep runs) and config resolution (what one run's Config is).

Config precedence, lowest first: the algorithm's `Config` defaults; the `tasks:` section of
`configs/algorithms/<algorithm>.yaml` (per-task overrides, e.g. the paper's per-task settings);
that file's `profiles: {<profile>: ...}`; its `profile_tasks: {<profile>: {<task>: ...}}`; the
profile file's own `algorithm_config: {<algorithm>: ...}`; command-line `--set key=value`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmark.errors import ConfigError
from benchmark.protocols import PROTOCOLS
from benchmark.slurm_options import SLURM_KEYS  # declared once, with the sweep's flags
from benchmark.tasks import DSRL_TASKS, TOY_TASKS, TaskSpec, get_task

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
    "local",
    "slurm",
    "config_profile",
    "algorithm_config",
}


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
    local: dict = field(default_factory=dict)
    slurm: dict = field(default_factory=dict)
    config_profile: str = ""
    """Which `profiles:` section of the algorithm YAMLs applies (default: the profile's name)."""
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
    if isinstance(spec, (list, tuple)) and all(isinstance(v, (int, float)) for v in spec):
        return tuple(float(v) for v in spec)
    raise ConfigError(f"bad cost_limits {spec!r}: use drcorl, osrl or a list of numbers")


def _profile_flag(data: dict, path: Path, key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: {key} must be true or false, got {value!r}")
    return value


def profile_path(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.exists():
            raise ConfigError(f"profile file {candidate} does not exist")
        return candidate
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
    from benchmark.registry import algorithm_names

    groups = {
        "tasks": {"dsrl": [t.name for t in DSRL_TASKS], "toy": [t.name for t in TOY_TASKS]},
        "algorithms": {"all": algorithm_names()},
    }[kind]
    items = [value] if isinstance(value, str) else list(value or [])
    names: list[str] = []
    for item in items:
        names.extend(groups.get(item, [item]))
    if kind == "tasks":
        names = [get_task(n).name for n in names]
    else:
        from benchmark.registry import ALGORITHMS

        unknown = [n for n in names if n not in ALGORITHMS]
        if unknown:
            raise ConfigError(f"profile names unknown algorithm(s) {unknown}")
    return tuple(dict.fromkeys(names))


def load_profile(name_or_path: str) -> Profile:
    path = profile_path(name_or_path)
    data = _read_yaml(path)
    unknown = set(data) - PROFILE_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown profile key(s) {sorted(unknown)}")
    bad_slurm = set(data.get("slurm") or {}) - SLURM_KEYS
    if bad_slurm:
        raise ConfigError(f"{path}: unknown slurm key(s) {sorted(bad_slurm)}")
    name = data.get("name", path.stem)
    protocol = data.get("protocol", "honest")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{path}: protocol must be one of {list(PROTOCOLS)}, not {protocol!r}")
    seeds = tuple(int(s) for s in data.get("seeds", [0]))
    profile = Profile(
        name=name,
        description=data.get("description", ""),
        protocol=protocol,
        data=data.get("data", "auto"),
        tasks=_expand_names(data.get("tasks", "toy"), "tasks"),
        algorithms=_expand_names(data.get("algorithms", "all"), "algorithms"),
        seeds=seeds,
        cost_limits=data.get("cost_limits", "drcorl"),
        table_cost_limits=data.get("table_cost_limits", "drcorl"),
        average_cost_limits=_profile_flag(data, path, "average_cost_limits"),
        eval_episodes=int(data.get("eval_episodes", 20)),
        num_eval_envs=int(data.get("num_eval_envs", 10)),
        checkpoint_every=int(data.get("checkpoint_every", 1000)),
        checkpoint_seconds=float(data.get("checkpoint_seconds", 120.0)),
        log_every=int(data.get("log_every", 100)),
        local=dict(data.get("local") or {}),
        slurm=dict(data.get("slurm") or {}),
        config_profile=data.get("config_profile", name),
        algorithm_config=dict(data.get("algorithm_config") or {}),
        path=str(path),
        ref=str(path.resolve()) if path.suffix and Path(name_or_path).suffix else name_or_path,
    )
    for task in profile.tasks:  # fail early on a bad cost_limits spec
        for algorithm in profile.algorithms:
            profile.limits_for(get_task(task), algorithm)
    return profile


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


def _coerce(key: str, value: Any, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be true/false, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, float) and isinstance(value, str):
        # YAML 1.1 reads `1e-4` (no dot) as a string
        with contextlib.suppress(ValueError):
            return float(value)
    if isinstance(default, int) and isinstance(value, float) and value.is_integer():
        return int(value)
    wrong_type = not isinstance(value, type(default)) or isinstance(value, bool)
    if isinstance(default, (int, float, str)) and wrong_type:
        raise ConfigError(f"{where}: {key} must be {type(default).__name__}, got {value!r}")
    if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
        return list(value)
    return value


def _apply(resolved: dict, layer: dict | None, defaults: dict, where: str) -> None:
    for key, value in (layer or {}).items():
        if key not in defaults:
            known = ", ".join(sorted(defaults))
            raise ConfigError(f"{where}: unknown config key {key!r}; known keys: {known}")
        resolved[key] = _coerce(key, value, defaults[key], where)


def resolve_config(
    algorithm: str, config_cls: type, task: str, profile: Profile, overrides: dict[str, Any]
) -> dict[str, Any]:
    """The run's config as a plain dict, every layer applied and every key checked."""
    defaults = {
        f.name: _plain(getattr(config_cls(), f.name)) for f in dataclasses.fields(config_cls)
    }
    spec = _algorithm_yaml(algorithm)
    unknown = set(spec) - {"tasks", "profiles", "profile_tasks"}
    if unknown:
        raise ConfigError(f"configs/algorithms/{algorithm}.yaml: unknown section(s) {unknown}")
    section = profile.config_profile or profile.name
    resolved = dict(defaults)
    yaml_name = f"configs/algorithms/{algorithm}.yaml"
    _apply(resolved, (spec.get("tasks") or {}).get(task), defaults, f"{yaml_name} tasks.{task}")
    _apply(resolved, (spec.get("profiles") or {}).get(section), defaults, f"{yaml_name} {section}")
    profile_tasks = ((spec.get("profile_tasks") or {}).get(section) or {}).get(task)
    _apply(resolved, profile_tasks, defaults, f"{yaml_name} profile_tasks.{section}.{task}")
    from_profile = profile.algorithm_config.get(algorithm)
    _apply(resolved, from_profile, defaults, f"profile {profile.name} algorithm_config")
    _apply(resolved, overrides, defaults, "--set")
    return resolved


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
