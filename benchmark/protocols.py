"""The evaluation protocols: how costs are normalised, whether training may touch the
simulator, and how the reported policy is selected.

No torch here: the report and the profile loader read protocols too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from benchmark.errors import ConfigError

Selection = Literal["final", "final+online-best"]


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    online_allowed: bool
    """Whether an algorithm may roll out episodes during training (`TrainContext.rollout`)."""
    selection: Selection
    """`final`: the final iterate is reported. `final+online-best`: also a candidate the
    algorithm offered during training (its best online episode), labelled as such."""
    kappa_epsilon: float = 0.0
    """Added to kappa in C/(kappa + epsilon), for the algorithms in `epsilon_algorithms` only."""
    epsilon_algorithms: frozenset[str] = frozenset()
    """The algorithms whose reproduced code normalised by kappa + epsilon; the rest use
    C/kappa, as the code their published numbers came from did."""

    def epsilon_for(self, algorithm: str) -> float:
        return self.kappa_epsilon if algorithm in self.epsilon_algorithms else 0.0

    def cost_normalisation(self, algorithm: str) -> str:
        """The label a record carries: `C/kappa` or e.g. `C/(kappa+0.1)`."""
        epsilon = self.epsilon_for(algorithm)
        return f"C/(kappa+{epsilon:g})" if epsilon else "C/kappa"

    def normalise_cost(self, cost, cost_limit: float, algorithm: str) -> np.ndarray:
        return normalise_cost(cost, cost_limit, self.epsilon_for(algorithm))


def normalise_cost(cost, cost_limit: float, epsilon: float = 0.0) -> np.ndarray:
    """`C/(kappa + epsilon)`; DSRL's `(C + 1)/(kappa + 1)` for a zero target."""
    if cost_limit + epsilon <= 0:
        return (np.asarray(cost) + 1.0) / (cost_limit + 1.0)
    return np.asarray(cost) / (cost_limit + epsilon)


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            name="honest",
            description="offline training, final iterate, C/kappa (DSRL)",
            online_allowed=False,
            selection="final",
        ),
        Protocol(
            name="paper",
            description=(
                "the DRCORL code's choices for DRCORL: C/(kappa+0.1), online switching and "
                "best online checkpoint allowed; baselines keep C/kappa"
            ),
            online_allowed=True,
            selection="final+online-best",
            kappa_epsilon=0.1,
            epsilon_algorithms=frozenset({"drcorl"}),
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None
