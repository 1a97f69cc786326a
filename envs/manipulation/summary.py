"""The arm tasks' report line: evaluation and deploy-sim share it. The statistics over episodes are the
means of the episode statistics (``success`` 0/1, ``final_distance``): :func:`envs.episode_stats.episode_means`."""

from __future__ import annotations

import math
from typing import Any


def summary_lines(summary: dict[str, Any], reference: dict[str, Any] | None = None) -> list[str]:
    """The success rate and the final distance to the goal (and the reference's success rate, if given)."""
    success = 100 * float(summary.get("success", math.nan))
    distance = 100 * float(summary.get("final_distance", math.nan))
    line = f"success rate {success:.0f}% (final distance to the goal {distance:.1f} cm on average)"
    if reference is not None:
        line += f"; checkpoint evaluation: {100 * float(reference.get('success', math.nan)):.0f}%"
    return [line]


__all__ = ["summary_lines"]
