"""The task registry: every DSRL task, read from the installed dsrl's `infos.py`, and the toy tasks.

A DSRL task's file name, URL, horizon and reward/cost bounds come from `dsrl/infos.py` itself
(read as a file: executing `dsrl/__init__.py` would import every simulator and create DSRL's
cache folder), so the suite never carries a hand-copied copy of DSRL's constants. Observation
and action sizes come from the environments (`TaskSpec.obs_dim`, built once and cached by
`benchmark.envs.env_sizes`). What the suite adds per task lives here, next to DSRL's facts, so a
task is described in one place: the DRCORL table's cost limit, OSRL's thresholds and the
collection recipe of the suite's own data (`CollectSpec`).

A task is named by its short DSRL name (`CarGoal1`, case-insensitive) or its DSRL gymnasium id
(`OfflineCarGoal1Gymnasium-v0`). Named task sets: `table` (the eleven tasks of the DRCORL
table), `all` (every DSRL task), `toy`; `expand_task_set` turns a profile's `tasks:` value
into task names.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType, ModuleType

from benchmark.errors import BenchmarkError, UnknownTaskError

SAFETY_GYMNASIUM_LIMITS = (20.0, 40.0, 80.0)
BULLET_LIMITS = (10.0, 20.0, 40.0)
DEFAULT_DRCORL_LIMIT = 10.0

FAMILIES = ("navigation", "velocity", "bullet", "metadrive", "toy")

# family -> (module to import, pip package that provides it) for the simulator stack.
SIMULATORS: MappingProxyType[str, tuple[tuple[str, str], ...]] = MappingProxyType(
    {
        "navigation": (("safety_gymnasium", "safety-gymnasium"),),
        "velocity": (("safety_gymnasium", "safety-gymnasium"),),
        "bullet": (("bullet_safety_gym", "bullet-safety-gym"),),
        "metadrive": (("metadrive", "metadrive-simulator"), ("gym", "gym")),
        "toy": (),
    }
)


class SimulatorNotInstalledError(BenchmarkError, ImportError):
    """A task whose simulator stack (or the dsrl package itself) is not installed."""


@dataclass(frozen=True)
class CollectSpec:
    """Budget and schedule of a task's PPO-Lagrangian collection (datasets.md 3.2; the suite's
    docs/datasets.md explains the recipe)."""

    steps: int
    """Env steps of the PPO-Lagrangian run."""
    trajectories: int
    """Target trajectory count after the range and grid filters."""
    limit_start: float
    """Cost limit held over the first 10% of the steps."""
    limit_end: float
    """Cost limit held over the last 10% of the steps."""
    num_envs: int = 8
    """Envs the collector steps (in its own process, or split over `workers` processes)."""
    rollout_steps: int = 16_000
    """Env steps (over all envs) per PPO update."""
    reward_filter: bool = True
    """Keep only episodes with R >= 0 (DSRL's `rmin=0` for navigation and velocity tasks)."""
    learner: tuple[tuple[str, float | tuple[float, ...]], ...] = ()
    """Overrides of `PPOLagConfig` fields, as (name, value) pairs (kept hashable)."""
    revision: int = 1
    """Bumped when this task's recipe changes: a new revision collects into a fresh run folder
    and file (`-r<N>`), and only files of the current revision load, so data made by an old
    recipe is never taken for the new one (records name their dataset's hash either way)."""
    criteria_note: str = ""
    """Why this revision's data misses a docs/datasets.md criterion it cannot meet, with the
    evidence: the reason its card's verdict gives (empty while none is known)."""
    run_revision: int | None = None
    """The earlier revision whose PPO run this one reuses, when only the filtering changed
    (`trajectories`, `reward_filter`): the file is new (`-r<revision>`), the run folder that
    revision's (None: this revision's own run)."""

    @property
    def run_fields(self) -> dict:
        """The fields the PPO run depends on (not the filters applied after it, nor revisions):
        what a resumed run folder must agree with."""
        skip = {"trajectories", "reward_filter", "revision", "run_revision", "criteria_note"}
        return {k: v for k, v in asdict(self).items() if k not in skip}


@dataclass(frozen=True)
class TaskSpec:
    """One task: how to build its env, where its data lives, and how to normalise scores."""

    name: str
    """Short name used everywhere in the suite (`CarGoal1`, `ToyVelocity`)."""
    env_id: str
    """Gymnasium id (DSRL's `Offline...Gymnasium-v0/v1` id for safety-gymnasium tasks)."""
    family: str
    """`navigation`, `velocity`, `bullet`, `metadrive` or `toy`: env construction and recipe."""
    horizon: int
    """Episode length (DSRL's `DEFAULT_MAX_EPISODE_STEPS`)."""
    reward_min: float
    """`MIN_EPISODE_REWARD`: normalised reward is (R - reward_min) / (reward_max - reward_min)."""
    reward_max: float
    max_cost: float
    """`MAX_EPISODE_COST`: the largest episode cost kept in the DSRL data."""
    drcorl_cost_limit: float
    """The single threshold of the DRCORL table (its `--cost_scale`)."""
    osrl_cost_limits: tuple[float, ...]
    """The three thresholds OSRL, CDT and CAPS average over."""
    dsrl_file: str | None = None
    """DSRL's HDF5 file name (basename of `DATASET_URLS[name]`); None for toy tasks."""
    dsrl_trajectories: int = 0
    """Trajectory count of the DSRL file (the trailing number of its name)."""
    dsrl_url: str | None = None
    """Where the installed dsrl downloads the file from (`DATASET_URLS[name]`)."""
    collect: CollectSpec | None = None
    """The recipe of the suite's generated dataset for this task (None: no recipe)."""
    sizes: tuple[int, int] | None = None
    """(obs_dim, act_dim) when known without an env (toy tasks); else read from the env."""

    @property
    def is_toy(self) -> bool:
        return self.family == "toy"

    @property
    def obs_dim(self) -> int:
        return self.dims()[0]

    @property
    def act_dim(self) -> int:
        return self.dims()[1]

    def dims(self) -> tuple[int, int]:
        """(obs_dim, act_dim): given for toy tasks, from the (cached) environment otherwise."""
        if self.sizes is not None:
            return self.sizes
        from benchmark.envs import env_sizes  # builds the env once; the result is cached

        return env_sizes(self)

    def missing_simulator(self) -> str | None:
        """The pip package(s) this task's simulator stack lacks, or None when installed."""
        missing = [
            package
            for module, package in SIMULATORS[self.family]
            if importlib.util.find_spec(module) is None
        ]
        return " and ".join(missing) or None

    def require_simulator(self) -> None:
        """Raise `SimulatorNotInstalledError` naming the package when the stack is missing."""
        missing = self.missing_simulator()
        if missing:
            raise SimulatorNotInstalledError(
                f"task {self.name} needs the {self.family} simulator stack; the package(s) "
                f"{missing} are not installed (pip install {missing}); every other task works "
                f"without it"
            )

    def cannot_run(self) -> str | None:
        """Why the suite cannot train-and-evaluate or collect on this task at all, whatever
        data a user has (None when it can): said before any advice about data."""
        if self.family != "metadrive":
            return None
        missing = self.missing_simulator()
        verb = "are" if missing and " and " in missing else "is"
        installed = f"; {missing} {verb} not installed either" if missing else ""
        return (
            f"{self.name} is a MetaDrive task: dsrl registers those with the old `gym` API, "
            f"which the suite's env layer does not drive, so it cannot evaluate a policy or "
            f"collect data on it{installed}. Its DSRL file can still be read "
            f"(`python -m benchmark data card {self.name}`)"
        )

    def normalise_reward(self, episode_return):
        return (episode_return - self.reward_min) / (self.reward_max - self.reward_min)


# --------------------------------------------------------------------------- dsrl's infos.py


@lru_cache(maxsize=1)
def dsrl_infos() -> ModuleType | None:
    """dsrl's `infos.py`, executed on its own (None when dsrl is not installed)."""
    spec = importlib.util.find_spec("dsrl")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "infos.py"
    infos_spec = importlib.util.spec_from_file_location("_benchmark_dsrl_infos", path)
    infos = importlib.util.module_from_spec(infos_spec)
    infos_spec.loader.exec_module(infos)
    return infos


def _family(name: str, file_name: str) -> str:
    if file_name.startswith("SafeMetaDrive"):
        return "metadrive"
    if "Gymnasium" in file_name:
        return "velocity" if name.endswith("Velocity") else "navigation"
    return "bullet"


def _env_id(name: str, family: str) -> str:
    """DSRL's gymnasium ids (`dsrl/offline_*/__init__.py`)."""
    if family == "metadrive":
        return f"OfflineMetadrive-{name}-v0"
    if family == "velocity":
        return f"Offline{name}Gymnasium-v1"
    if family == "navigation":
        return f"Offline{name}Gymnasium-v0"
    return f"Offline{name}-v0"


# The suite's own facts about the DRCORL table's eleven tasks: the collection recipes (budgets
# sized for about 2 h of `make data-all` on 2 cores; docs/datasets.md explains each choice) and
# CarRun's threshold. DRCORL's top-level CarRun script uses cost_scale 30; its 5-seed block uses
# 10 (drcorl.md 2.3). We follow the top-level script; profiles can override the limit.
# Navigation learns safety too: with FSRL's PID gains (0.05, 0.005, 0.1) and 16k-step updates,
# PointGoal1's lambda reached only 5-7 while its episode cost stayed at 40-50 under a limit of
# 5. Ten times the integral gain, twice the proportional gain and twice as many updates (8k
# steps each) let the multiplier follow the annealed limit within the budget.
_NAV_LEARNER = (("pid_gains", (0.1, 0.05, 0.1)),)


def _nav(
    steps: int,
    start: float,
    end: float,
    trajectories: int = 800,
    revision: int = 1,
    run_revision: int | None = None,
) -> CollectSpec:
    return CollectSpec(
        steps,
        trajectories,
        start,
        end,
        num_envs=4,
        rollout_steps=8000,
        learner=_NAV_LEARNER,
        revision=revision,
        run_revision=run_revision,
    )


# Velocity tasks all anneal down (a trained policy is pushed to low cost: the measured
# HalfCheetah run gave a best safe return of 0.75 that way); DSRL's rising schedule for Walker2d
# and Ant would leave only untrained policies below the limit of 10.
# CarRun: its unconstrained policy's cost follows the limit, and DSRL keeps only C <= 40, so the
# schedule spends its time around the threshold of 30 (25 -> 40): the earlier 5 -> 60 gave 85%
# safe trajectories and none above 30 after the filter.
# Revision 2 (issue 28), for the cards that failed with revision 1 (reports/datasets/):
# - HopperVelocity, Walker2dVelocity: 9% safe trajectories annealing from 200, Hopper's best safe
#   return 0.52 after 1.5M steps: start at 50 (more of the run near kappa=10), 3M steps each.
# - CarGoal1, CarGoal2, PointGoal2: best safe return 0.49-0.65 < 0.7 after 800k steps, with the
#   best return overall only 0.58-0.78: the policies were still learning; twice the steps.
# - CarRun: 82% safe, 18% above kappa=30 with 25 -> 40: hold the limit above the threshold
#   instead, 40 -> 30, so the run spends most of its time just above it.
# Revision 3: CarGoal1, CarGoal2, PointGoal2 filter revision 2's runs again. Their best safe
# returns passed (0.97, 1.03, 0.80), but DSRL's grid filter, thinning 1.2-1.3k in-range episodes
# to 800, cut the safe share from 28.5%/21.0%/15.2% of the run to 13.8%/8.6%/6.1% (the safe
# episodes crowd a few low-cost cells). A target of 1,600 (every episode the run logs) keeps
# them all. (reports/datasets/README.md shows each revision's card.)
# CarRun revision 3: with 40 -> 30 the run was still 77.5% safe at kappa=30 (its policy stays
# below the limit), so hold the limit higher, 60 -> 40. PointCircle1 revision 2: rising from 5
# kept the policy inside the walls (92% safe, best return 0.16); anneal down like the others.
# HopperVelocity, Walker2dVelocity revision 3: starting at 50 starved the learner (best return
# overall 0.62 and 0.23 normalised), so back to 200 -> 5, which gave Walker a best safe return
# of 0.80 in revision 1; Hopper gets twice revision 2's steps, and both keep 2,000 episodes so
# the grid filter thins the safe low-cost cells less.
_WALKER_NOTE = (
    "Not met by this collector within the round's compute: one PPO-Lagrangian run decides "
    "whether a fast gait under the velocity limit appears. Revision 1 (200 -> 5, 3M steps) "
    "reached a best safe return of 0.80 (9.2% safe) on another machine; the same schedule here "
    "(revision 3) reached 0.22 (9.0% safe), and revision 2 (50 -> 5) 0.22 with a best return "
    "overall of 0.23. The simulator allows more: on DSRL's data the published BC-Safe reaches "
    "0.78 at cost 0.08 (DRCORL table)."
)
_HOPPER_NOTE = (
    "Not met by this collector within the round's compute: in three runs its PPO-Lagrangian "
    "learner never found a fast hop, so the best return overall stayed at 0.46-0.62 normalised. "
    "Revision 1 (200 -> 5, 1.5M steps): 9.4% safe, best safe 0.52; revision 2 (50 -> 5, 3M): "
    "11.8%, 0.55; revision 3 (200 -> 5, 6M): 2.4%, 0.06, best overall 0.46. The simulator "
    "allows more: on DSRL's data the published CAPS reaches 0.83 at cost 0.00 (DRCORL table)."
)
# fmt: off
TABLE_RECIPES: MappingProxyType[str, CollectSpec] = MappingProxyType({
    "CarGoal1": _nav(1_600_000, 80.0, 5.0, trajectories=1600, revision=3, run_revision=2),
    "CarGoal2": _nav(1_600_000, 150.0, 5.0, trajectories=1600, revision=3, run_revision=2),
    "PointButton1": _nav(800_000, 150.0, 5.0),
    "PointCircle1": _nav(600_000, 150.0, 5.0, trajectories=500, revision=2),
    "PointGoal1": _nav(800_000, 80.0, 5.0),
    "PointGoal2": _nav(1_600_000, 150.0, 5.0, trajectories=1600, revision=3, run_revision=2),
    "AntVelocity": CollectSpec(3_000_000, 1000, 200.0, 5.0),
    "HalfCheetahVelocity": CollectSpec(2_000_000, 1000, 200.0, 5.0),
    "HopperVelocity": CollectSpec(
        6_000_000, 2000, 200.0, 5.0, revision=3, criteria_note=_HOPPER_NOTE
    ),
    "Walker2dVelocity": CollectSpec(
        3_000_000, 2000, 200.0, 5.0, revision=3, criteria_note=_WALKER_NOTE
    ),
    "CarRun": CollectSpec(400_000, 1000, 60.0, 40.0, rollout_steps=4000, reward_filter=False,
                          revision=3),
})
# fmt: on
TABLE_COST_LIMITS = MappingProxyType({"CarRun": 30.0})

# The DRCORL table's order (its columns), which the reports follow.
TABLE: tuple[str, ...] = (
    "CarGoal1", "CarGoal2", "PointButton1", "PointCircle1", "PointGoal1", "PointGoal2",
    "AntVelocity", "HalfCheetahVelocity", "HopperVelocity", "Walker2dVelocity", "CarRun",
)  # fmt: skip


def default_recipe(name: str, family: str, max_cost: float) -> CollectSpec | None:
    """Recipe of a DSRL task outside the table, by kind (the table's recipes generalised)."""
    if family == "navigation":
        if "Circle" in name:
            return _nav(600_000, 5.0, 150.0, trajectories=500)
        return _nav(800_000, 80.0 if name.endswith("1") else 150.0, 5.0)
    if family == "velocity":
        return CollectSpec(2_000_000, 1000, 200.0, 5.0)
    if family == "bullet":
        start, end = 0.5 * max_cost, max_cost
        return CollectSpec(400_000, 1000, start, end, rollout_steps=4000, reward_filter=False)
    return None  # MetaDrive: the suite has no collector env for it


def _dsrl_task(infos: ModuleType, name: str) -> TaskSpec:
    url = infos.DATASET_URLS[name]
    file_name = url.rsplit("/", 1)[-1]
    family = _family(name, file_name)
    max_cost = float(infos.MAX_EPISODE_COST[name])
    match = re.search(r"-(\d+)\.hdf5$", file_name)
    return TaskSpec(
        name=name,
        env_id=_env_id(name, family),
        family=family,
        horizon=int(infos.DEFAULT_MAX_EPISODE_STEPS[name]),
        reward_min=float(infos.MIN_EPISODE_REWARD[name]),
        reward_max=float(infos.MAX_EPISODE_REWARD[name]),
        max_cost=max_cost,
        drcorl_cost_limit=TABLE_COST_LIMITS.get(name, DEFAULT_DRCORL_LIMIT),
        osrl_cost_limits=SAFETY_GYMNASIUM_LIMITS
        if family in ("navigation", "velocity")
        else BULLET_LIMITS,
        dsrl_file=file_name,
        dsrl_trajectories=int(match.group(1)) if match else 0,
        dsrl_url=url,
        collect=TABLE_RECIPES.get(name) or default_recipe(name, family, max_cost),
    )


def _dsrl_tasks() -> tuple[TaskSpec, ...]:
    """Every task of dsrl's `DATASET_URLS`, the table's eleven first (in the table's order)."""
    infos = dsrl_infos()
    if infos is None:
        return ()
    names = [n for n in TABLE if n in infos.DATASET_URLS]
    names += [n for n in infos.DATASET_URLS if n not in TABLE]
    return tuple(_dsrl_task(infos, n) for n in names)


# Toy tasks (benchmark/envs_toy.py, data in benchmark/data/toy.py). Their reference returns come
# from fixed policies: `python -m benchmark.data.toy` recomputes them and tests check them.
# fmt: off
TOY_TASKS: tuple[TaskSpec, ...] = (
    TaskSpec(name="ToyVelocity", env_id="ToyVelocity-v0", family="toy", sizes=(3, 1),
             horizon=100, reward_min=0.150, reward_max=182.899, max_cost=100.0,
             drcorl_cost_limit=10.0, osrl_cost_limits=(5.0, 10.0, 20.0),
             collect=CollectSpec(20_000, 100, 20.0, 2.0, num_envs=4, rollout_steps=2000,
                                 learner=(("minibatch", 256), ("lr", 1e-3)))),
    TaskSpec(name="ToyPointGoal", env_id="ToyPointGoal-v0", family="toy", sizes=(11, 2),
             horizon=200, reward_min=0.140, reward_max=25.354, max_cost=150.0,
             drcorl_cost_limit=10.0, osrl_cost_limits=(5.0, 10.0, 20.0),
             collect=CollectSpec(30_000, 100, 30.0, 2.0, num_envs=4, rollout_steps=3000,
                                 learner=(("minibatch", 256), ("lr", 1e-3)))),
)
# fmt: on

ALL_DSRL_TASKS: tuple[TaskSpec, ...] = _dsrl_tasks()
"""Every DSRL task the installed dsrl knows (38 for dsrl 0.1.0); empty without dsrl."""
DSRL_TASKS: tuple[TaskSpec, ...] = tuple(t for t in ALL_DSRL_TASKS if t.name in TABLE)
"""The eleven tasks of the DRCORL table (the name predates the full registry)."""
TABLE_TASKS = DSRL_TASKS
ALL_TASKS: MappingProxyType[str, TaskSpec] = MappingProxyType(
    {t.name: t for t in DSRL_TASKS + TOY_TASKS + ALL_DSRL_TASKS}
)

TASK_SETS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "table": tuple(t.name for t in DSRL_TASKS),
        "all": tuple(t.name for t in ALL_DSRL_TASKS),
        "toy": tuple(t.name for t in TOY_TASKS),
        "dsrl": tuple(t.name for t in DSRL_TASKS),  # older profiles' name for `table`
    }
)


def get_task(name: str) -> TaskSpec:
    """Look a task up by short name (case-insensitive) or DSRL id (`Offline...-v0`)."""
    wanted = name.lower()
    for task in ALL_TASKS.values():
        if wanted in (task.name.lower(), task.env_id.lower()):
            return task
    if dsrl_infos() is None and not wanted.startswith("toy"):
        raise SimulatorNotInstalledError(
            f"unknown task {name!r}: the DSRL tasks come from the dsrl package's infos.py, and "
            f"dsrl is not installed (pip install --no-deps dsrl==0.1.0; see `make install`); "
            f"toy tasks: {', '.join(t.name for t in TOY_TASKS)}"
        )
    raise UnknownTaskError(
        f"unknown task {name!r}; known tasks: {', '.join(ALL_TASKS)} (or a DSRL id such as "
        f"OfflineCarGoal1Gymnasium-v0; task sets: {', '.join(TASK_SETS)})"
    )


def expand_task_set(value: str | list | tuple | None) -> tuple[str, ...]:
    """A profile's `tasks:` value as task names: a set name (`table`, `all`, `toy`), one task,
    or a list mixing both; duplicates dropped, order kept, every name checked."""
    items = [value] if isinstance(value, str) else list(value or [])
    names: list[str] = []
    for item in items:
        item = str(item)
        names.extend(TASK_SETS.get(item.lower(), (item,)))
    return tuple(dict.fromkeys(get_task(n).name for n in names))


def dsrl_task_names() -> list[str]:
    """The DRCORL table's eleven task names."""
    return [t.name for t in DSRL_TASKS]


def task_for_dsrl_file(file_name: str) -> TaskSpec | None:
    """The DSRL task whose file is called `file_name` (None when no task's is)."""
    for task in ALL_DSRL_TASKS:
        if task.dsrl_file == file_name:
            return task
    return None
