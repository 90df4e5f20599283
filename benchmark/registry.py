"""Algorithm name -> "module:Class", imported lazily so a DRCORL run never imports osrl-lib.

A new algorithm is one file with a `@dataclass Config` and a class implementing
`benchmark.interface.Algorithm`, plus one line here. A class with `cost_conditioned = True`
is trained once per (task, seed) and evaluated at every cost limit of the profile.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from benchmark.errors import UnknownAlgorithmError

ALGORITHMS: dict[str, tuple[str, str]] = {
    # name: ("module:Class", display name in tables and figures)
    "bc_safe": ("baselines.bc_safe:BCSafe", "BC-Safe"),
    "bear_lag": ("baselines.bear_lag:BEARLag", "BEAR-Lag"),
    "bcq_lag": ("baselines.bcq_lag:BCQLag", "BCQ-Lag"),
    "cpq": ("baselines.cpq:CPQ", "CPQ"),
    "coptidice": ("baselines.coptidice:COptiDICE", "COptiDICE"),
    "cdt": ("baselines.cdt:CDT", "CDT"),
    "caps": ("baselines.caps:CAPS", "CAPS"),
    "ccac": ("baselines.ccac:CCAC", "CCAC"),
    "drcorl": ("algorithms.drcorl:DRCORL", "DRCORL"),
}


def display_name(name: str) -> str:
    """How tables and figures name an algorithm (the registry name if unregistered)."""
    return ALGORITHMS[name][1] if name in ALGORITHMS else name


@dataclass(frozen=True)
class AlgorithmEntry:
    name: str
    cls: type
    config_cls: type

    @property
    def cost_conditioned(self) -> bool:
        return bool(getattr(self.cls, "cost_conditioned", False))


def algorithm_names() -> list[str]:
    return list(ALGORITHMS)


def load(name: str) -> AlgorithmEntry:
    """Import an algorithm's module and return its class and Config dataclass."""
    if name not in ALGORITHMS:
        raise UnknownAlgorithmError(
            f"unknown algorithm {name!r}; registered: {', '.join(ALGORITHMS)}"
        )
    module_name, class_name = ALGORITHMS[name][0].split(":")
    module = importlib.import_module(module_name)
    return AlgorithmEntry(name=name, cls=getattr(module, class_name), config_cls=module.Config)
