"""The driving tasks' statistics over episodes and their report lines (numpy): evaluation and deploy-sim share them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from envs.episode_stats import episode_means


def summarize(stats: dict[str, np.ndarray]) -> dict[str, float]:
    """Means of the episode statistics (``lap_completed``: the lap completion rate; ``lap_time`` over the episodes
    that finished a lap) and collisions_per_km = sum(collision) / (sum(distance) / 1000), nan without distance.

    stats: name -> [E] per episode (:func:`envs.driving.rules.episode_stats`).
    """
    out = episode_means(stats)
    if "collision" in stats and "distance" in stats:
        km = sum(np.asarray(stats["distance"], dtype=np.float64).tolist()) / 1000.0
        collisions = sum(np.asarray(stats["collision"], dtype=np.float64).tolist())
        out["collisions_per_km"] = collisions / km if km > 0 else math.nan
    return out


def summary_lines(summary: dict[str, Any], reference: dict[str, Any] | None = None) -> list[str]:
    """The held-out tracks' line: laps completed, collisions per km, first lap time (and the reference's, if given)."""

    def numbers(s: dict[str, Any], compact: bool) -> str:
        laps, per_km = 100 * float(s.get("lap_completed", math.nan)), float(s.get("collisions_per_km", math.nan))
        lap_time = float(s.get("lap_time", math.nan))
        if compact:
            return f"{laps:.0f}%, {per_km:.2f} per km, {lap_time:.1f} s"
        return (
            f"laps completed in {laps:.0f}% of episodes, {per_km:.2f} collisions per km, first lap in {lap_time:.1f} s"
        )

    line = f"held-out tracks: {numbers(summary, compact=False)}"
    if reference is not None:
        line += f" (checkpoint evaluation: {numbers(reference, compact=True)})"
    return [line]


__all__ = ["summarize", "summary_lines"]
