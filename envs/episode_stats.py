"""Statistics over a task's episodes, numpy only (evaluation and the deployment controllers both use them)."""

from __future__ import annotations

import math

import numpy as np


def episode_means(stats: dict[str, np.ndarray]) -> dict[str, float]:
    """The mean of each per-episode statistic (name -> [E]) over its finite values; nan where there are none.

    nan marks a statistic an episode did not reach (a first lap time with no lap finished).
    """
    out: dict[str, float] = {}
    for name, values in stats.items():
        finite = [v for v in np.asarray(values, dtype=np.float64).tolist() if math.isfinite(v)]
        out[name] = math.fsum(finite) / len(finite) if finite else math.nan  # statistics.fmean's exact sum
    return out


def stack_episodes(episodes: list[dict[str, float]]) -> dict[str, np.ndarray]:
    """Per-episode statistics (one dict per episode) as arrays [E] per name (names of the first episode)."""
    if not episodes:
        return {}
    return {name: np.array([e[name] for e in episodes], dtype=np.float64) for name in episodes[0]}


__all__ = ["episode_means", "stack_episodes"]
