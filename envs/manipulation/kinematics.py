"""The Franka Panda's forward kinematics from its datasheet (numpy): where a controller believes its hand is.

Franka's published kinematics (modified Denavit-Hartenberg parameters, frankaemika.github.io/docs,
"Robot and interface specifications") give frame 7 from the joint angles; the hand's grip point lies
``scene.EE_OFFSET`` along frame 7's z axis (the flange at 0.107 m, then 0.133 m of hand). A robot's
controller knows its hand only this way, from its joint encoders; the simulator's model (the
gymnasium-robotics arm) agrees with it to half a millimetre over the joint ranges
(``tests/envs/test_franka.py``).
"""

from __future__ import annotations

import math

import numpy as np

from envs.manipulation import scene

# (a_(i-1), d_i, alpha_(i-1)) of joints 1-7, m and rad.
DH = (
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -math.pi / 2),
    (0.0, 0.316, math.pi / 2),
    (0.0825, 0.0, math.pi / 2),
    (-0.0825, 0.384, -math.pi / 2),
    (0.0, 0.0, math.pi / 2),
    (0.088, 0.0, math.pi / 2),
)
JOINT6_OFFSET = math.pi / 2  # the model's joint 6 reads the datasheet's angle minus pi/2


def link(a: float, d: float, alpha: float, theta: float) -> np.ndarray:
    """One joint's transform [4, 4], modified DH: T = RotX(alpha) TransX(a) RotZ(theta) TransZ(d)."""
    ca, sa, ct, st = math.cos(alpha), math.sin(alpha), math.cos(theta), math.sin(theta)
    return np.array(
        [
            [ct, -st, 0.0, a],
            [st * ca, ct * ca, -sa, -d * sa],
            [st * sa, ct * sa, ca, d * ca],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def hand_pose(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(grip point [3] m, approach axis [3]) in the base frame, for the model's joint positions q [7] rad.

    T_7 = T_1 ... T_7; hand = p_7 + EE_OFFSET z_7, approach = z_7.
    """
    theta = np.array(q, dtype=np.float64)
    theta[5] += JOINT6_OFFSET
    t = np.eye(4)
    for (a, d, alpha), angle in zip(DH, theta, strict=True):
        t = t @ link(a, d, alpha, float(angle))
    return t[:3, 3] + scene.EE_OFFSET * t[:3, 2], t[:3, 2].copy()


def hand_position(q: np.ndarray) -> np.ndarray:
    """The grip point [3] m in the base frame, for joint positions q [7] rad."""
    return hand_pose(q)[0]


__all__ = ["DH", "JOINT6_OFFSET", "hand_pose", "hand_position", "link"]
