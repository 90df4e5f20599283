"""Algorithm name -> "module:Class", imported lazily so a DRCORL run never imports osrl-lib.

A new algorithm is one file with a `@dataclass Config` and a class implementing
`benchmark.interface.Algorithm`, plus one line here. A class with `cost_conditioned = True`
is trained once per (task, seed) and evaluated at every cost limit of the profile.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from benchmark.errors import UnknownAlgorithmError

ALGORITHMS: dict[str, str] = {
    "bc_safe": "baselines.bc_safe:BCSafe",
    "bear_lag": "baselines.bear_lag:BEARLag",
    "bcq_lag": "baselines.bcq_lag:BCQLag",
    "cpq": "baselines.cpq:CPQ",
    "coptidice": "baselines.coptidice:COptiDICE",
    "cdt": "baselines.cdt:CDT",
    "caps": "baselines.caps:CAPS",
    "ccac": "baselines.ccac:CCAC",
    "drcorl": "algorithms.drcorl:DRCORL",
}

DISPLAY_NAMES: dict[str, str] = {
    "bc_safe": "BC-Safe",
    "bear_lag": "BEAR-Lag",
    "bcq_lag": "BCQ-Lag",
    "cpq": "CPQ",
    "coptidice": "COptiDICE",
    "cdt": "CDT",
    "caps": "CAPS",
    "ccac": "CCAC",
    "drcorl": "DRCORL",
}


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
    module_name, class_name = ALGORITHMS[name].split(":")
    module = importlib.import_module(module_name)
    return AlgorithmEntry(name=name, cls=getattr(module, class_name), config_cls=module.Config)
