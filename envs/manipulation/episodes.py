"""How a Franka episode starts, written once over numpy or torch arrays: the cube, the goal, the arm's pose.

Every draw is made from U(0, 1) samples given by ``draw(shape)`` (:data:`Uniform`): the batched task
draws them from its torch generator, [k, ...] for k new episodes; deploy-sim's controller from a numpy
generator, one episode without a batch axis (``batch = ()``). Both draw the same shapes in the same
order, so one stream of samples gives both the same episode. ``xp`` is ``numpy`` or ``torch``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from envs.manipulation.config import JOINTS, FrankaConfig

if TYPE_CHECKING:
    from envs.manipulation.rules import Joints

GOAL_X, GOAL_Y = (0.3, 0.75), (-0.35, 0.35)  # m: push goals stay on this part of the table
START_TRIES = 5  # draws of a start pose (each with half the previous noise) before the noiseless one
PENETRATION = 1e-4  # m: a start pose whose contacts go deeper than this touches the table or the cube

Uniform = Callable[[tuple[int, ...]], Any]  # shape -> U(0, 1) samples [shape], float64 (numpy or torch)
# (q [..., 7], rows [...] bool) -> [...] bool: the arm at q touches the table or the cube, for the rows asked
# (False elsewhere)
Touching = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class EpisodeDraw:
    """What a new episode's draw places: the goal, and for the cube tasks the cube's edge and resting spot."""

    goal: Any  # [..., 3] m
    cube_size: Any = None  # [...] m
    cube_xy: Any = None  # [..., 2] m
    cube_friction: Any = None  # [...] the cube's sliding friction (None: the scene's, cube_friction's one value)


def between(low: float, high: float, u: Any) -> Any:
    """U(low, high) samples [...] from U(0, 1) samples u [...]: low + (high - low) u."""
    return low + (high - low) * u


def in_box(low: Sequence[float], high: Sequence[float], u: Any, xp: Any = np) -> Any:
    """Points [..., d] uniform in the box [low, high] (d values each) from U(0, 1) samples u [..., d]."""
    return xp.stack([between(lo, hi, u[..., i]) for i, (lo, hi) in enumerate(zip(low, high, strict=True))], axis=-1)


def draw_cube(cfg: FrankaConfig, batch: tuple[int, ...], draw: Uniform, xp: Any = np) -> tuple[Any, Any, Any]:
    """(edge [*batch], resting spot xy [*batch, 2], sliding friction [*batch] or None) of the cube.

    U(cube_size), uniform over the start area, U(cube_friction) (no draw made, None, when that range is one
    value: the scene's own).
    """
    size = between(cfg.cube_size[0], cfg.cube_size[1], draw(batch))
    xy = in_box(cfg.cube_low, cfg.cube_high, draw((*batch, 2)), xp)
    low, high = cfg.cube_friction
    return size, xy, None if low == high else between(low, high, draw(batch))


def push_goal(xy: Any, r: Any, angle: Any, size: Any, xp: Any = np) -> Any:
    """Push's goal [..., 3]: r from the cube's spot xy [..., 2] at ``angle`` [...], clipped to GOAL_X x GOAL_Y.

    g_xy = clip(xy + r (cos angle, sin angle)) (on the table, in reach); g_z = size / 2 (resting on the table).
    """
    g = xy + r[..., None] * xp.stack([xp.cos(angle), xp.sin(angle)], axis=-1)
    return xp.stack([xp.clip(g[..., 0], *GOAL_X), xp.clip(g[..., 1], *GOAL_Y), size / 2], axis=-1)


def lift_goal(xy: Any, rise: Any, size: Any, xp: Any = np) -> Any:
    """Lift's goal [..., 3]: above the cube's spot xy [..., 2], its centre ``rise`` [...] above its resting height."""
    return xp.stack([xy[..., 0], xy[..., 1], size / 2 + rise], axis=-1)


def start_pose(
    joints: Joints, noise: float, batch: tuple[int, ...], draw: Uniform, touching: Touching, xp: Any = np
) -> Any:
    """Joint positions [*batch, 7]: home + U(-noise, noise) per joint, clipped to the limits, touching nothing.

    A draw that puts the arm into the table or the cube is drawn again with half the noise, up to
    START_TRIES times; then the noiseless start pose (which touches nothing). Every try draws samples
    for all rows, those that keep their pose too.
    """
    shape = (*batch, JOINTS)
    u = draw(shape)
    scale = xp.full_like(u[..., :1], noise)  # [..., 1]
    redo = xp.ones_like(u[..., 0], dtype=xp.bool)  # [...] rows still to draw
    q = xp.zeros_like(u)
    for attempt in range(START_TRIES + 1):
        if attempt:
            u = draw(shape)
        if attempt == START_TRIES:
            scale = xp.where(redo[..., None], 0.0, scale)
        candidate = xp.minimum(xp.maximum(joints.home + (-1.0 + 2.0 * u) * scale, joints.low), joints.high)
        q = xp.where(redo[..., None], candidate, q)
        redo = touching(q, redo)
        if not bool(xp.any(redo)):
            break
        scale = xp.where(redo[..., None], 0.5 * scale, scale)
    return q


__all__ = [
    "GOAL_X",
    "GOAL_Y",
    "PENETRATION",
    "START_TRIES",
    "EpisodeDraw",
    "Touching",
    "Uniform",
    "between",
    "draw_cube",
    "in_box",
    "lift_goal",
    "push_goal",
    "start_pose",
]
