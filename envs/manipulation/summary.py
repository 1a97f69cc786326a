"""The arm tasks' statistics over episodes and their report line (numpy): evaluation and deploy-sim share them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from envs.episode_stats import episode_means


def summarize(stats: dict[str, np.ndarray]) -> dict[str, float]:
    """The success rate and the mean final distance to the goal (m): the means of the episode statistics.

    stats: name -> [E] per episode (``success`` 0/1, ``final_distance``).
    """
    return episode_means(stats)


def summary_lines(summary: dict[str, Any], reference: dict[str, Any] | None = None) -> list[str]:
    """The success rate and the final distance to the goal (and the reference's success rate, if given)."""
    success = 100 * float(summary.get("success", math.nan))
    distance = 100 * float(summary.get("final_distance", math.nan))
    line = f"success rate {success:.0f}% (final distance to the goal {distance:.1f} cm on average)"
    if reference is not None:
        line += f"; checkpoint evaluation: {100 * float(reference.get('success', math.nan)):.0f}%"
    return [line]


__all__ = ["summarize", "summary_lines"]
