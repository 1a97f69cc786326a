"""The lidar's geometry: horizontal rays from the car against the walls' segments, over numpy or torch arrays.

One rule, written once: a ray reads the distance to the nearest wall segment it crosses (at most the
range), where a segment is only tested by the rays that point within the angles it spans as seen from
the lidar. :func:`scan` evaluates it for every (ray, segment) pair at once; the batched task evaluates
the same pairs' tests only where they can meet (``envs.driving.ray_fan``). ``xp`` is numpy or torch
(this module imports neither torch nor ``app``: the deployment controller uses it as is).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SEGMENT_SLACK = 1e-4  # fraction of a segment's length


def wrap_angle(a: Any, xp: Any = np) -> Any:
    """Angles [..] into [-pi, pi): remainder(a + pi, 2 pi) - pi."""
    return xp.remainder(a + math.pi, 2 * math.pi) - math.pi


def bearing_span(origin: Any, heading: Any, start: Any, end: Any, xp: Any = np) -> tuple[Any, Any, Any]:
    """(low [N, S], high [N, S], behind [N, S]): the angles from the heading at which each segment is seen.

    origin [N, 2], heading [N], segments start/end [N, S, 2]. A ray at angle a (from the heading) can
    cross segment j only if low_j <= a <= high_j, the bearings of its two ends; a segment whose
    span is wider than pi passes behind the origin (``behind``), and any ray may cross it.
    """
    a = start - origin[:, None, :]  # [N, S, 2] from the origin to each segment's ends
    b = end - origin[:, None, :]
    bearing_a = wrap_angle(xp.arctan2(a[..., 1], a[..., 0]) - heading[:, None], xp)
    bearing_b = wrap_angle(xp.arctan2(b[..., 1], b[..., 0]) - heading[:, None], xp)
    low, high = xp.minimum(bearing_a, bearing_b), xp.maximum(bearing_a, bearing_b)
    return low, high, (high - low) > math.pi


def crossing_distance(w: Any, e: Any, dx: Any, dy: Any, xp: Any = np) -> Any:
    """Distance t along rays to the segments they cross (inf where they miss), broadcast over [..].

    Ray o + t d (d = (dx, dy), unit) meets segment p + u e where, with w = p - o and
    a x b = a_x b_y - a_y b_x, t = (w x e) / (d x e) and u = (w x d) / (d x e); a hit needs t > 0 and
    0 <= u <= 1, widened by SEGMENT_SLACK so that rounding never lets a ray slip between two segments
    through their shared end (a ray parallel to a segment, d x e = 0, gives an infinite or undefined
    u and never hits). w, e [.., 2], dx, dy [..].
    """
    denom = dx * e[..., 1] - dy * e[..., 0]  # d x e
    t = (w[..., 0] * e[..., 1] - w[..., 1] * e[..., 0]) / denom
    u = (w[..., 0] * dy - w[..., 1] * dx) / denom
    hit = (t > 0) & (u >= -SEGMENT_SLACK) & (u <= 1 + SEGMENT_SLACK)
    return xp.where(hit, t, math.inf)


def scan(origin: Any, heading: Any, angles: Any, start: Any, end: Any, max_range: float, xp: Any = np) -> Any:
    """Distances [N, R] along each ray to the first wall segment it crosses, at most ``max_range``.

    origin [N, 2] (the lidar, world frame), heading [N], angles [R] from the heading (any order),
    segments start/end [N, S, 2]. Every (ray, segment) pair is tested: [N, R, S] is the largest array.
    """
    low, high, behind = bearing_span(origin, heading, start, end, xp)
    a = start - origin[:, None, :]
    e = (end - origin[:, None, :]) - a  # the segment's edge, as the fan computes it (bit for bit)
    angle = heading[:, None] + angles[None, :]  # [N, R] world frame
    dx, dy = xp.cos(angle)[..., None], xp.sin(angle)[..., None]  # [N, R, 1]
    within = (angles[None, :, None] >= low[:, None, :]) & (angles[None, :, None] <= high[:, None, :])
    candidate = within | behind[:, None, :]  # [N, R, S]
    t = crossing_distance(a[:, None, :, :], e[:, None, :, :], dx, dy, xp)  # [N, R, S]
    t = xp.where(candidate, t, math.inf)
    return xp.clip(xp.amin(t, axis=-1), None, max_range)


__all__ = ["SEGMENT_SLACK", "bearing_span", "crossing_distance", "scan", "wrap_angle"]
