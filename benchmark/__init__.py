"""Offline safe-RL benchmark suite: DRCORL and eight baselines on the DSRL tasks."""

__version__ = "0.1.0"
