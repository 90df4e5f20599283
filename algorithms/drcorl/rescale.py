"""The reward rescaling DRCORL's code applies before training (drcorl.md §1.0)."""

from __future__ import annotations

import numpy as np

from benchmark.data.dataset import Dataset

AUTHORS_RETURN_WINDOW = 1000
"""The code's hard-coded `max_episode_steps` in `return_range` (`utils/dataset.py:8-21`)."""
AUTHORS_RETURN_SCALE = 1000.0


def reward_scale(dataset: Dataset, mode: str) -> float:
    """The factor the code multiplies rewards by (drcorl.md §1.0): 1000 / (max - min return)."""
    if mode == "none":
        return 1.0
    if mode == "episodes":
        returns = dataset.episode_returns
    else:
        returns = authors_segment_returns(dataset.rewards, dataset.terminals)
    spread = float(np.max(returns) - np.min(returns)) if len(returns) else 0.0
    # A dataset whose segments all have one return has nothing to rescale against.
    return AUTHORS_RETURN_SCALE / spread if spread > 0 else 1.0


def authors_segment_returns(rewards: np.ndarray, terminals: np.ndarray) -> np.ndarray:
    """Returns of segments ending at a terminal or after 1000 steps, timeouts ignored; a
    trailing segment that ends neither way is not counted (the code's `return_range`)."""
    window = AUTHORS_RETURN_WINDOW
    rewards = rewards.astype(np.float64)
    ends = list(np.flatnonzero(terminals) + 1)
    trailing = len(rewards) not in ends
    out: list[np.ndarray] = []
    start = 0
    for i, end in enumerate([*ends, len(rewards)] if trailing else ends):
        chunk = rewards[start:end]
        full = len(chunk) // window
        out.append(chunk[: full * window].reshape(full, window).sum(axis=1))
        rest = chunk[full * window :]
        if len(rest) and not (trailing and i == len(ends)):
            out.append(np.array([rest.sum()]))
        start = end
    returns = np.concatenate(out) if out else np.zeros(0)
    return returns if len(returns) else np.array([rewards.sum()])
