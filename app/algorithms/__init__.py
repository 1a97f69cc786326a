"""Policy-optimization algorithms and their shared numerics."""

from __future__ import annotations

from app.algorithms.trpo import TRPO, Batch
from app.config import Config
from policies import GaussianPolicy, ValueFunction


def make_algorithm(cfg: Config, policy: GaussianPolicy, value: ValueFunction) -> TRPO:
    """The algorithm ``cfg.algo.name`` names, bound to the networks it updates."""
    if cfg.algo.name in ("trpo", "npg"):
        return TRPO(policy, value, cfg.algo, cfg.value)
    raise ValueError(f"unknown algorithm {cfg.algo.name!r}")


__all__ = ["TRPO", "Batch", "make_algorithm"]
