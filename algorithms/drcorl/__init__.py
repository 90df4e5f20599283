"""DRCORL (Guo et al., NeurIPS 2025) for the suite; see `algorithms/drcorl/drcorl.py`."""

from algorithms.drcorl.drcorl import DRCORL, Config

__all__ = ["DRCORL", "Config"]
