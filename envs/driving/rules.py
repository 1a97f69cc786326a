"""The driving tasks' rules, written once over numpy or torch arrays: the batched task and the controller share them.

Every function takes a batch of N cars (the deployment controller passes N = 1) and ``xp``, the array
module (numpy or torch); none imports torch. Tracks come as their arrays: centreline ``centre``
[N, M, 2], left normals ``normal`` [N, M, 2], arc length ``arc`` [N, M], ``length`` [N] and ``width``
[N] (:class:`envs.driving.track.Track`, stacked).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.driving.car import WHEEL_RADIUS
from envs.driving.config import DrivingConfig
from envs.driving.lidar import wrap_angle

START_OFFSET = 0.15  # a car starts up to this fraction of the width beside the centreline ...
START_HEADING = 0.1  # rad: ... heading along it +- this


def indicator(mask: Any, like: Any, xp: Any = np) -> Any:
    """1.0 where ``mask`` [..] holds, else 0.0, in ``like``'s dtype (float64 in both numpy and torch)."""
    return xp.where(mask, xp.ones_like(like), xp.zeros_like(like))


def yaw_of(quat: Any, xp: Any = np) -> Any:
    """Heading about z [N] of unit quaternions [N, 4] (w, x, y, z): atan2(2 (w z + x y), 1 - 2 (y^2 + z^2))."""
    w, x, y, z = quat[:, 0], quat[:, 1], quat[:, 2], quat[:, 3]
    return xp.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def yaw_quaternion(yaw: Any, xp: Any = np) -> Any:
    """Unit quaternions [N, 4] (w, x, y, z) of a rotation by yaw [N] about z: (cos(yaw/2), 0, 0, sin(yaw/2))."""
    zero = xp.zeros_like(yaw)
    return xp.stack([xp.cos(yaw / 2), zero, zero, xp.sin(yaw / 2)], axis=1)


def car_to_world(xy: Any, yaw: Any, local: Any, xp: Any = np) -> Any:
    """Points fixed on the cars, local [P, 2] in the car frame, in the world: [N, P, 2] for cars at xy [N, 2], yaw [N].

    p = xy + R(yaw) l with R(yaw) = [[cos, -sin], [sin, cos]].
    """
    cos, sin = xp.cos(yaw)[:, None], xp.sin(yaw)[:, None]  # [N, 1]
    lx, ly = local[None, :, 0], local[None, :, 1]  # [1, P]
    return xy[:, None, :] + xp.stack([cos * lx - sin * ly, sin * lx + cos * ly], axis=-1)


def forward_speed(yaw: Any, qvel: Any, xp: Any = np) -> Any:
    """Velocity of the car's centre of mass along its heading [N]: cos(yaw) v_x + sin(yaw) v_y (qvel [N, nv])."""
    return xp.cos(yaw) * qvel[:, 0] + xp.sin(yaw) * qvel[:, 1]


def project(centre: Any, normal: Any, arc: Any, points: Any, xp: Any = np) -> tuple[Any, Any, Any]:
    """(arc position s, lateral offset (left +), track heading), each [N, P], of points [N, P, 2] on each car's track.

    From the nearest centreline point i: s = arc_i + (p - c_i) . t_i, offset = (p - c_i) . n_i,
    heading = atan2(t_i), with the tangent t_i = (n_y, -n_x) (the normal turned right).
    """
    squared = xp.square(points[:, :, None, :] - centre[:, None, :, :]).sum(-1)  # [N, P, M]
    nearest = squared.argmin(-1)  # [N, P]
    rows = xp.cumsum(xp.ones_like(nearest), 0) - 1  # [N, P]: each entry's car (an arange on nearest's device)
    c, n = centre[rows, nearest], normal[rows, nearest]  # [N, P, 2]
    t = xp.stack([n[..., 1], -n[..., 0]], axis=-1)
    rel = points - c
    return arc[rows, nearest] + (rel * t).sum(-1), (rel * n).sum(-1), xp.arctan2(t[..., 1], t[..., 0])


def progress(s: Any, s_before: Any, length: Any, xp: Any = np) -> Any:
    """Metres driven along the centreline [N] from arc position s_before to s: the change wrapped at the start line.

    progress = remainder(s - s_before + L / 2, L) - L / 2, so crossing the line (s: L -> 0) is no jump of a lap.
    """
    half = 0.5 * length
    return xp.remainder(s - s_before + half, length) - half


def first_lap_time(travelled: Any, time: Any, lap_time: Any, length: Any, xp: Any = np) -> Any:
    """lap_time [N] (nan until then): the episode's time when the distance travelled first reaches a lap."""
    lap = (travelled >= length) & xp.isnan(lap_time)
    return xp.where(lap, time, lap_time)


def wall_contact(centre: Any, normal: Any, arc: Any, width: Any, xy: Any, yaw: Any, outline: Any, xp: Any = np) -> Any:
    """[N] bool: a point of the car's outline (outline [P, 2], car frame) lies past a wall.

    The walls' inner faces are the centreline shifted by +-width / 2 along its normal: a point is past
    one where |lateral offset| > width / 2.
    """
    points = car_to_world(xy, yaw, outline, xp)
    _, offset, _ = project(centre, normal, arc, points, xp)
    return (xp.abs(offset) > 0.5 * width[:, None]).any(-1)


def reward(progress: Any, steer_change: Any, collided: Any, cfg: DrivingConfig, xp: Any = np) -> Any:
    """r = progress (m) - steering_penalty (change of the steering command)^2 - collision_penalty [wall hit], [N]."""
    penalty = cfg.collision_penalty * indicator(collided, progress, xp)
    return progress - cfg.steering_penalty * xp.square(steer_change) - penalty


def finished(travelled: Any, length: Any, cfg: DrivingConfig) -> Any:
    """[N] bool: the car has driven ``laps`` laps (the episode truncates)."""
    return travelled >= cfg.laps * length


def observation(scan: Any, yaw: Any, qvel: Any, steer: Any, track_frame: Any = None, xp: Any = np) -> Any:
    """obs [N, R + 3] = [lidar (m), forward speed (m/s), yaw rate (rad/s), steering command (rad)].

    scan [N, R]; yaw [N]; qvel [N, nv] of the free joint first (qvel[:, 5]: yaw rate in the car's frame);
    steer [N]. With ``track_frame`` = (lateral offset [N], track heading [N]) (``privileged_obs``),
    [heading error = wrap(yaw - track heading), lateral offset] follow: [N, R + 5].
    """
    parts = [scan, forward_speed(yaw, qvel, xp)[:, None], qvel[:, 5:6], steer[:, None]]
    if track_frame is not None:
        offset, heading = track_frame
        parts += [wrap_angle(yaw - heading, xp)[:, None], offset[:, None]]
    return xp.concatenate(parts, axis=1)


def start_pose(point: Any, normal: Any, width: Any, u: Any, xp: Any = np) -> tuple[Any, Any]:
    """(position [k, 2], yaw [k]) of cars starting by centreline points [k, 2] (normals [k, 2]); u ~ U(0, 1) [k, 2].

    position = point + (2 u_0 - 1) START_OFFSET width n, yaw = atan2(tangent) + (2 u_1 - 1) START_HEADING;
    the point is the centreline's point i ~ U{0..M-1}, drawn by the caller.
    """
    tangent = xp.stack([normal[:, 1], -normal[:, 0]], axis=1)
    offset = (u[:, 0] * 2 - 1) * START_OFFSET * width
    yaw = xp.arctan2(tangent[:, 1], tangent[:, 0]) + (u[:, 1] * 2 - 1) * START_HEADING
    return point + offset[:, None] * normal, yaw


def start_speed(throttle: bool, cfg: DrivingConfig) -> float:
    """m/s along the heading at the start: rolling at ``target_speed`` (steering only), at rest (with a throttle)."""
    return 0.0 if throttle else cfg.target_speed


def write_start_state(
    qpos: Any, qvel: Any, position: Any, yaw: Any, ride_height: float, speed: float, wheel_dofs: list[int], xp: Any = np
) -> None:
    """Write cars' start into qpos [k, nq] and qvel [k, nv] (both at the model's defaults): the free joint at
    (position [k, 2], ride_height) heading yaw [k], rolling at ``speed`` along the heading, wheels spinning
    to match: omega = speed / WHEEL_RADIUS.
    """
    qpos[:, :2] = position
    qpos[:, 2] = ride_height
    qpos[:, 3:7] = yaw_quaternion(yaw, xp)
    qvel[:, 0], qvel[:, 1] = speed * xp.cos(yaw), speed * xp.sin(yaw)
    qvel[:, wheel_dofs] = speed / WHEEL_RADIUS


def episode_stats(travelled: Any, length: Any, collided: Any, lap_time: Any, xp: Any = np) -> dict[str, Any]:
    """Per car [N]: laps, lap_completed (1 after a full lap), collision (0/1), distance (m, >= 0), lap_time (s, nan)."""
    laps = travelled / length
    return {
        "laps": laps,
        "lap_completed": indicator(laps >= 1, laps, xp),
        "collision": collided,
        "distance": xp.clip(travelled, 0.0, None),
        "lap_time": lap_time,
    }


__all__ = [
    "car_to_world",
    "episode_stats",
    "finished",
    "first_lap_time",
    "forward_speed",
    "indicator",
    "observation",
    "progress",
    "project",
    "reward",
    "start_pose",
    "start_speed",
    "wall_contact",
    "write_start_state",
    "yaw_of",
    "yaw_quaternion",
]
