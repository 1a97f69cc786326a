"""The lidar's rule (``envs.driving.lidar``) over a batch of cars in torch, testing only the pairs that can meet.

:func:`envs.driving.lidar.scan` tests every (ray, segment) pair, N R S tests; here the rays inside a
segment's bearing span are found by binary search in the (ascending) ray angles, so there are about
N (S + R * walls crossed per ray) tests, each the same :func:`~envs.driving.lidar.crossing_distance`:
the result equals :func:`~envs.driving.lidar.scan`'s.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from envs.driving.lidar import bearing_span, crossing_distance


def cast_ray_fan(
    origin: Tensor,
    heading: Tensor,
    angles: Tensor,
    start: Tensor,
    end: Tensor,
    max_range: float,
    with_index: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Distances [N, R] (float64) along a fan of rays to the first wall segment each crosses, at most ``max_range``.

    origin [N, 2], heading [N], angles [R] ascending (relative to the heading), segments [N, S, 2].
    With ``with_index``, also the segment [N, R] each ray hit (S where it hit none). A segment whose
    span passes behind the origin is tested against every ray.
    """
    n, s = start.shape[:2]
    r = angles.shape[0]
    f64 = torch.float64
    origin, heading, start, end = origin.to(f64), heading.to(f64), start.to(f64), end.to(f64)
    low, high, behind = bearing_span(origin, heading, start, end, torch)
    first = torch.searchsorted(angles, low.contiguous())  # first ray at or after the span's start
    last = torch.searchsorted(angles, high.contiguous(), right=True) - 1  # last ray at or before its end
    first = torch.where(behind, torch.zeros_like(first), first)
    last = torch.where(behind, torch.full_like(last, r - 1), last)
    count = (last - first + 1).clamp(min=0)  # [N, S] candidate rays per segment
    flat_count = count.reshape(-1)
    pair_segment = torch.repeat_interleave(torch.arange(n * s, device=start.device), flat_count)  # [P]
    offsets = torch.arange(pair_segment.numel(), device=start.device) - torch.repeat_interleave(
        torch.cumsum(flat_count, 0) - flat_count, flat_count
    )
    pair_ray = first.reshape(-1)[pair_segment] + offsets  # [P]
    car = pair_segment // s
    ray_angle = heading[car] + angles[pair_ray]
    a = start - origin[:, None, :]  # [N, S, 2]
    e = (end - origin[:, None, :]) - a
    wa, we = a.reshape(-1, 2)[pair_segment], e.reshape(-1, 2)[pair_segment]  # [P, 2]
    t = crossing_distance(wa, we, torch.cos(ray_angle), torch.sin(ray_angle), torch)  # [P], inf where it misses
    slot = car * r + pair_ray
    best = torch.full((n * r,), math.inf, dtype=f64, device=start.device)
    best.scatter_reduce_(0, slot, t, reduce="amin")
    distance = best.reshape(n, r).clamp(max=max_range)
    if not with_index:
        return distance
    index = torch.full((n * r,), s, dtype=torch.long, device=start.device)
    winner = torch.isfinite(t) & (t == best[slot])
    index.scatter_(0, slot[winner], (pair_segment % s)[winner])
    return distance, index.reshape(n, r)


__all__ = ["cast_ray_fan"]
