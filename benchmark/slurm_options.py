"""The Slurm options of a sweep, declared once: the profile's `slurm:` keys, the command-line
flags of `sweep` and the submitit parameters all come from `SlurmOptions`' fields.

No submitit or torch here: the profile loader checks `slurm:` keys against `SLURM_KEYS`.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import ConfigError


def _flag(name: str, kind: type | None, text: str) -> dict[str, Any]:
    return {"flag": name, "type": kind, "help": text}


@dataclass
class SlurmOptions:
    partition: str | None = field(default=None, metadata=_flag("--partition", str, "partition"))
    time_min: int = field(default=60, metadata=_flag("--time", int, "minutes per job"))
    gpus_per_node: int = field(default=0, metadata=_flag("--gpus", int, "GPUs per run"))
    cpus_per_task: int = field(default=1, metadata=_flag("--cpus", int, "CPUs per run"))
    mem_gb: float = field(default=4.0, metadata=_flag("--mem-gb", float, "memory per run"))
    array_parallelism: int = field(
        default=64,
        metadata=_flag("--array-parallelism", int, "how many array tasks may run at once"),
    )
    max_array_size: int = field(
        default=1000,
        metadata=_flag(
            "--max-array-size",
            int,
            "cluster's MaxArraySize; larger sweeps are split into several arrays",
        ),
    )
    sbatch_extra: dict[str, Any] = field(
        default_factory=dict,
        metadata=_flag("--sbatch", None, "extra sbatch option KEY=VALUE, e.g. --sbatch qos=high"),
    )

    @classmethod
    def from_profile_and_args(cls, profile: Any, args: Any) -> SlurmOptions:
        """The profile's `slurm:` section, overridden by whichever flags were given."""
        values = dict(profile.slurm)
        for name in SCALAR_KEYS:
            given = getattr(args, name, None)
            if given is not None:
                values[name] = given
        extra = dict(values.pop("sbatch_extra", None) or {})
        for pair in getattr(args, "sbatch_extra", None) or []:
            key, _, value = pair.partition("=")
            if not key or not _:
                raise ConfigError(f"--sbatch expects KEY=VALUE, got {pair!r}")
            extra[key.strip().lstrip("-").replace("-", "_")] = value
        options = cls(**values, sbatch_extra=extra)
        if options.max_array_size < 1:
            raise ConfigError("max_array_size must be at least 1")
        return options

    def executor_parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "timeout_min": self.time_min,
            "cpus_per_task": self.cpus_per_task,
            "mem_gb": self.mem_gb,
            "slurm_array_parallelism": self.array_parallelism,
        }
        if self.gpus_per_node:
            params["gpus_per_node"] = self.gpus_per_node
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.sbatch_extra:
            params["slurm_additional_parameters"] = dict(self.sbatch_extra)
        return params


SLURM_KEYS = frozenset(f.name for f in dataclasses.fields(SlurmOptions))
"""The keys a profile's `slurm:` section may hold."""
SCALAR_KEYS = tuple(f.name for f in dataclasses.fields(SlurmOptions) if f.name != "sbatch_extra")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `sweep` flags, one per field (all default None: unset flags keep the profile's)."""
    group = parser.add_argument_group("slurm (also settable in the profile's `slurm:` section)")
    for f in dataclasses.fields(SlurmOptions):
        meta = f.metadata
        if f.name == "sbatch_extra":
            group.add_argument(
                meta["flag"],
                dest=f.name,
                action="append",
                default=[],
                metavar="KEY=VALUE",
                help=meta["help"],
            )
        else:
            group.add_argument(
                meta["flag"], dest=f.name, type=meta["type"], default=None, help=meta["help"]
            )
