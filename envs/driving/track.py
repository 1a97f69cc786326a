"""Closed race tracks from a seed: a random smooth loop, its centreline and the two walls.

A track is a star-shaped loop r(theta) around the origin: ``control_points``
radii ``mean * (1 + U(-j, j))`` at evenly spaced angles, joined by their
trigonometric interpolation (the smooth periodic curve through them, so the
curvature varies continuously), resampled at ``track_points`` points evenly
spaced in arc length, driven counter-clockwise or clockwise (a coin flip). Tracks
with a bend tighter than :data:`MIN_BEND_RADIUS` (or than the width allows) or
with two parts too close are drawn again. The walls' inner faces are the centreline shifted by
half the width along its normal. Only numpy: the deployment check builds the
same tracks without torch.

Seeds split into the tracks training draws from (below :data:`HELDOUT_BASE`) and
the held-out tracks evaluation uses (from it on); no training episode can meet a
held-out track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.driving.config import DrivingConfig
from envs.errors import TaskError

HELDOUT_BASE = 2**31  # track seeds >= this are held out from training
MAX_ATTEMPTS = 200
SAMPLES_PER_SPAN = 24  # dense samples between two control points before resampling
MIN_BEND_RADIUS = 1.2  # m: 1.6 x the car's tightest turn (wheelbase / tan(max steering) = 0.74 m)


@dataclass(frozen=True)
class Track:
    """A closed track. Arrays are float64; the polylines close from the last point back to the first."""

    seed: int
    centre: np.ndarray  # [M, 2] centreline, in driving order
    normal: np.ndarray  # [M, 2] unit normals pointing to the left of the driving direction
    arc: np.ndarray  # [M] arc length from centre[0] to each point, m
    length: float  # m, one lap
    width: float  # m, between the walls' inner faces

    @property
    def left(self) -> np.ndarray:
        """[M, 2] inner face of the left wall."""
        return self.centre + 0.5 * self.width * self.normal

    @property
    def right(self) -> np.ndarray:
        """[M, 2] inner face of the right wall."""
        return self.centre - 0.5 * self.width * self.normal

    def wall_segments(self) -> tuple[np.ndarray, np.ndarray]:
        """(start [2M, 2], end [2M, 2]) of every wall segment: the left wall's M, then the right wall's M."""
        walls = np.concatenate([self.left, self.right])
        ends = np.concatenate([np.roll(self.left, -1, axis=0), np.roll(self.right, -1, axis=0)])
        return walls, ends


def radial_interpolation(radii: np.ndarray, count: int) -> np.ndarray:
    """The trigonometric interpolation of radii [K] at K even angles, evaluated at ``count`` even angles: [count].

    r(theta) = sum_k c_k exp(i k theta) with the c_k of the radii's discrete Fourier transform
    (zero-padding the spectrum), so r passes through the K radii and is smooth and periodic.
    """
    return np.fft.irfft(np.fft.rfft(radii), n=count) * (count / len(radii))


def resample_closed(polyline: np.ndarray, count: int) -> tuple[np.ndarray, float]:
    """``count`` points [count, 2] evenly spaced in arc length along a closed polyline [P, 2]; and its length."""
    closed = np.concatenate([polyline, polyline[:1]])
    lengths = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
    total = float(cumulative[-1])
    s = np.arange(count) * total / count
    return np.stack([np.interp(s, cumulative, closed[:, k]) for k in range(2)], axis=1), total


def left_normals(centre: np.ndarray) -> np.ndarray:
    """Unit normals [M, 2] to the left of a closed polyline's direction (central differences)."""
    tangent = np.roll(centre, -1, axis=0) - np.roll(centre, 1, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    return np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)


def curvature_radius(centre: np.ndarray) -> np.ndarray:
    """Radius [M] of the circle through each point and its two neighbours (inf on straights)."""
    a, b, c = np.roll(centre, 1, axis=0), centre, np.roll(centre, -1, axis=0)
    ab, bc, ca = (np.linalg.norm(u - v, axis=1) for u, v in ((a, b), (b, c), (c, a)))
    cross = np.abs((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])
    with np.errstate(divide="ignore"):
        return np.where(cross > 1e-12, ab * bc * ca / (2 * np.maximum(cross, 1e-300)), np.inf)


def track_is_valid(centre: np.ndarray, arc: np.ndarray, length: float, width: float) -> bool:
    """No wall folds over itself (every bend wider than the track) and no two parts of the track overlap.

    Parts of the centreline farther apart along the track than a half turn around the width
    must be farther apart in the plane than the width plus a margin.
    """
    if curvature_radius(centre).min() < max(0.6 * width, MIN_BEND_RADIUS):
        return False
    gap = np.abs(arc[:, None] - arc[None, :])
    along = np.minimum(gap, length - gap)
    distance = np.linalg.norm(centre[:, None, :] - centre[None, :, :], axis=2)
    far = along > np.pi * width
    return bool((distance[far] > 1.3 * width).all())


def generate_track(seed: int, cfg: DrivingConfig) -> Track:
    """The track of ``seed`` under ``cfg`` (same seed and config: the same track)."""
    rng = np.random.default_rng(seed)
    k = cfg.control_points
    for _ in range(MAX_ATTEMPTS):
        mean_radius = rng.uniform(*cfg.radius)
        radii = mean_radius * (1 + rng.uniform(-cfg.radius_jitter, cfg.radius_jitter, k))
        width = float(rng.uniform(*cfg.width))
        clockwise = bool(rng.random() < 0.5)
        theta = np.arange(k * SAMPLES_PER_SPAN) * (2 * np.pi / (k * SAMPLES_PER_SPAN))
        r = radial_interpolation(radii, len(theta))
        dense = r[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
        if clockwise:
            dense = dense[::-1].copy()
        centre, length = resample_closed(dense, cfg.track_points)
        arc = np.arange(cfg.track_points) * length / cfg.track_points
        if track_is_valid(centre, arc, length, width):
            return Track(seed, centre, left_normals(centre), arc, length, width)
    raise TaskError(
        f"task.driving: no valid track in {MAX_ATTEMPTS} tries for seed {seed} (radius {list(cfg.radius)}, "
        f"radius_jitter {cfg.radius_jitter}, width {list(cfg.width)}); widen task.driving.radius or narrow the width"
    )


__all__ = ["HELDOUT_BASE", "Track", "generate_track"]
