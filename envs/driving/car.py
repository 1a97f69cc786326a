"""The car (``envs/assets/car.xml``) and the track scene built around it with ``mujoco.MjSpec``.

Vehicle numbers (F1TENTH, the ``vehicle_params`` of f1tenth_gym for the Traxxas
Slash 4x4 chassis): mass 3.74 kg, yaw inertia 0.04712 kg m^2, CoM height
0.074 m, CoM to front axle 0.15875 m and to rear axle 0.17145 m (wheelbase
0.3302 m), width 0.31 m, length 0.58 m, tire-road friction 1.0489, steering
+-0.4189 rad at up to 3.2 rad/s. Wheel radius (0.05 m) and the wheel centres'
spacing (0.265 m) are our estimates for that chassis.

The simulation model is the car and the floor only: the walls never touch the
car (a wall hit ends the episode, detected from the track geometry), so they
cost the physics nothing. The scene model adds them as boxes for rendering and
for ``mj_ray``, the reference the torch lidar is tested against. Only numpy and
mujoco here: the deployment controller (``envs/driving/deploy.py``) builds the same scene
without torch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from envs.driving.track import Track

CAR_XML = Path(__file__).resolve().parents[1] / "assets" / "car.xml"
WHEELBASE = 0.3302  # m, front to rear axle
WHEEL_TRACK = 0.265  # m, between the left and right wheel centres
WHEEL_RADIUS = 0.05  # m
MAX_STEER = 0.4189  # rad
MAX_STEER_RATE = 3.2  # rad/s
FOOTPRINT = (0.29, 0.155)  # m: half length, half width of the car's outline around its CoM
# The outline's corners and side midpoints in the car frame [6, 2]: a wall hit is one of them past a wall.
OUTLINE = np.array(
    [
        [FOOTPRINT[0], FOOTPRINT[1]],
        [FOOTPRINT[0], -FOOTPRINT[1]],
        [-FOOTPRINT[0], FOOTPRINT[1]],
        [-FOOTPRINT[0], -FOOTPRINT[1]],
        [0.0, FOOTPRINT[1]],
        [0.0, -FOOTPRINT[1]],
    ]
)
WALL_THICKNESS = 0.05  # m
WALL_HEIGHT = 0.3  # m
STEER_JOINTS = ("steer_left", "steer_right")
DRIVE_ACTUATORS = ("drive_left", "drive_right")


def load_car_model() -> mujoco.MjModel:
    """The simulation model: the car on a floor (no walls)."""
    return mujoco.MjModel.from_xml_path(str(CAR_XML))


def lidar_offset(model: mujoco.MjModel) -> np.ndarray:
    """The lidar's position in the car's frame, [x, y, z] m (the ``lidar`` site)."""
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "lidar")
    return np.asarray(model.site_pos[site], dtype=np.float64).copy()


def ray_angles(rays: int, fov_deg: float) -> np.ndarray:
    """Ray directions relative to the car's heading [rays], rad, counter-clockwise, evenly over the field of view.

    With a full 360-degree view the last ray stops one step short of the first; one ray looks straight ahead.
    """
    if rays == 1:
        return np.zeros(1)
    fov = math.radians(fov_deg)
    if fov_deg >= 360.0:
        return -math.pi + np.arange(rays) * (2 * math.pi / rays)
    return np.linspace(-fov / 2, fov / 2, rays)


def steering_command(current: Any, target: Any, dt: float, xp: Any = np) -> tuple[Any, Any]:
    """(new command, its change) [..]: ``target`` clipped to +-MAX_STEER, reached at most MAX_STEER_RATE * dt per step.

    ``xp`` is numpy or torch (the controller in deploy-sim and the batched task share this one rule).
    """
    change = xp.clip(xp.clip(target, -MAX_STEER, MAX_STEER) - current, -MAX_STEER_RATE * dt, MAX_STEER_RATE * dt)
    return current + change, change


def ackermann_angles(steer: Any, xp: Any = np) -> tuple[Any, Any]:
    """(left, right) front wheel angles [..] for the bicycle-model steering angle ``steer`` [..], rad.

    Both wheels turn about the same point on the rear axle's line:
    tan(delta_left) = L tan(d) / (L - (T / 2) tan(d)), tan(delta_right) = L tan(d) / (L + (T / 2) tan(d)).
    ``xp`` is numpy or torch.
    """
    t = xp.tan(steer)
    left = xp.arctan(WHEELBASE * t / (WHEELBASE - 0.5 * WHEEL_TRACK * t))
    right = xp.arctan(WHEELBASE * t / (WHEELBASE + 0.5 * WHEEL_TRACK * t))
    return left, right


def scene_model(track_points: int) -> mujoco.MjModel:
    """The car, the floor and 2 * ``track_points`` wall boxes (placed by :func:`place_walls`)."""
    spec = mujoco.MjSpec.from_file(str(CAR_XML))
    for side in ("left", "right"):
        for i in range(track_points):
            spec.worldbody.add_geom(
                name=f"wall_{side}_{i}",
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=[0.1, WALL_THICKNESS / 2, WALL_HEIGHT / 2],
                pos=[0.0, 0.0, -10.0],
                rgba=[0.85, 0.85, 0.8, 1.0] if side == "left" else [0.95, 0.75, 0.2, 1.0],
                contype=0,
                conaffinity=0,
            )
    return spec.compile()


def place_walls(model: mujoco.MjModel, track: Track) -> None:
    """Put the scene model's wall boxes on ``track``: box i spans wall segment i, its inner face on the segment."""
    start, end = track.wall_segments()  # [2M, 2]
    first = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "wall_left_0")
    count = len(start)
    if first < 0 or first + count > model.ngeom:
        raise ValueError(f"the scene model has no room for {count} wall segments")
    edge = end - start
    length = np.linalg.norm(edge, axis=1)
    heading = np.arctan2(edge[:, 1], edge[:, 0])
    # the wall lies outside the track: to the left of the left wall's direction, right of the right wall's
    outward = np.stack([-np.sin(heading), np.cos(heading)], axis=1)
    half = count // 2
    outward[half:] *= -1.0
    centre = 0.5 * (start + end) + 0.5 * WALL_THICKNESS * outward
    rows = slice(first, first + count)
    model.geom_pos[rows, :2] = centre
    model.geom_pos[rows, 2] = WALL_HEIGHT / 2
    model.geom_quat[rows] = np.stack(
        [np.cos(heading / 2), np.zeros(count), np.zeros(count), np.sin(heading / 2)], axis=1
    )
    size = np.stack([length / 2, np.full(count, WALL_THICKNESS / 2), np.full(count, WALL_HEIGHT / 2)], axis=1)
    model.geom_size[rows] = size
    model.geom_rbound[rows] = np.linalg.norm(size, axis=1)
    model.geom_aabb[rows, 3:] = size  # the box's own axis-aligned half-sizes (local frame, centred)
    # the placeholders compiled as "same frame as the world body" (no rotation): take the pose given here
    model.geom_sameframe[rows] = int(mujoco.mjtSameFrame.mjSAMEFRAME_NONE)


__all__ = [
    "FOOTPRINT",
    "MAX_STEER",
    "MAX_STEER_RATE",
    "OUTLINE",
    "WHEELBASE",
    "WHEEL_RADIUS",
    "ackermann_angles",
    "lidar_offset",
    "load_car_model",
    "place_walls",
    "ray_angles",
    "scene_model",
    "steering_command",
]
