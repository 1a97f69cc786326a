"""The ``task.franka`` section: the arm's controller, the scene and the rewards of the Franka Panda tasks.

The arm's gains and torque limits default to the values the ``gymnasium-robotics`` model ships with
(Franka's datasheet: 87 N m on joints 1-4, 12 N m on joints 5-7); positions are in the robot's base
frame (x forward, z up, the table's top at z = 0). Every value is checked at config load with the key
named: a workspace the arm cannot reach, a cube the gripper cannot hold, a gain or limit that is not
positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from envs.fields import param

JOINTS = 7
# Where the arm can put its hand: within REACH of the shoulder (joint 2's axis, 0.333 m above the base).
# Franka's datasheet gives 855 mm from the shoulder to the flange; the hand's grip point sits 0.133 m past
# the flange along the hand, so a position with the hand pointing down must have its flange - 0.133 m
# above it - within 0.855 m of the shoulder.
SHOULDER = (0.0, 0.0, 0.333)
REACH = 0.855
FLANGE_TO_EE = 0.133
GRIPPER_OPENING = 0.08  # m, fingers fully open (two 0.04 m slides)
MIN_HEIGHT = 0.02  # m, end-effector targets stay this far above the table


def reachable(point: tuple[float, float, float]) -> bool:
    """Whether the hand can point down at ``point`` (base frame): its flange within REACH of the shoulder."""
    flange = (point[0], point[1], point[2] + FLANGE_TO_EE)
    return math.dist(flange, SHOULDER) <= REACH


@dataclass(frozen=True)
class FrankaConfig:
    """Controller, scene, randomization and reward weights of ``policylab/Franka*-v0``."""

    # -- the controller: joint position targets held by PD control --------------------------------
    stiffness: tuple[float, ...] = param(
        (870.0, 870.0, 870.0, 870.0, 120.0, 120.0, 120.0), "PD: kp of joints 1-7, N m/rad"
    )
    damping: tuple[float, ...] = param(
        (100.0, 100.0, 100.0, 100.0, 10.0, 10.0, 10.0), "PD: kd of joints 1-7, N m s/rad"
    )
    torque_limit: tuple[float, ...] = param(
        (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0), "PD: |kp (target - q)| is clipped to this, N m, joints 1-7"
    )
    action_scale: float = param(
        0.05, "an action of 1 moves a joint's target this far per control step, rad", low=0.0, low_open=True
    )
    init_joint_noise: float = param(0.1, "initial arm pose: the home pose + U(-n, n) per joint, rad", low=0.0)
    # -- the scene ---------------------------------------------------------------------------------
    target_low: tuple[float, ...] = param((0.35, -0.25, 0.15), "franka_reach: targets' box, low corner [x, y, z], m")
    target_high: tuple[float, ...] = param((0.65, 0.25, 0.45), "franka_reach: targets' box, high corner [x, y, z], m")
    cube_size: tuple[float, ...] = param((0.05, 0.05), "cube: range [low, high] of its edge length, m")
    cube_mass: float = param(0.1, "cube: mass, kg", low=0.0, low_open=True)
    cube_friction: tuple[float, ...] = param(
        (1.0, 1.0),
        "cube: range [low, high] of its sliding friction, drawn per episode (low == high: always that value); "
        "a drawn value takes the place of task.randomization.friction_scale for the cube",
    )
    cube_low: tuple[float, ...] = param((0.45, -0.1), "cube: start area, low corner [x, y] on the table, m")
    cube_high: tuple[float, ...] = param((0.6, 0.1), "cube: start area, high corner [x, y] on the table, m")
    goal_distance: tuple[float, ...] = param(
        (0.1, 0.2), "franka_push: range [low, high] of the goal's distance from the cube's start, m"
    )
    lift_height: tuple[float, ...] = param(
        (0.1, 0.2), "franka_lift: range [low, high] of the target height of the cube, m"
    )
    # -- reward weights (each term's running mean is logged as reward_<term>) ---------------------
    reward_distance: float = param(
        1.0, "weight of -distance to the goal (reach: hand to target; push/lift: cube to goal)"
    )
    reward_reach: float = param(1.0, "push/lift: weight of -(the hand's distance to the cube, m)")
    reward_progress: float = param(1.0, "weight of the decrease of the goal distance per step, per cm")
    reward_grasp: float = param(1.0, "lift: weight of the grasp indicator (cube between the closed fingers)")
    reward_lift: float = param(
        1.0, "lift: weight of the cube's height above the table, clipped at the target, per 10 cm"
    )
    reward_success: float = param(1.0, "weight of the success indicator, every step it holds")
    reward_action_rate: float = param(0.01, "weight of -|a_t - a_(t-1)|^2", low=0.0)
    reward_joint_limit: float = param(
        1.0, "weight of -(rad past 95% of each joint's range), summed over joints", low=0.0
    )
    reward_posture: float = param(
        0.0, "weight of -|q - start pose| (rad, over the 7 joints): keeps the arm near its start posture", low=0.0
    )

    def problems(self) -> list[tuple[str, str]]:
        """(key, what is wrong) for a controller, scene or workspace the arm cannot have."""
        out: list[tuple[str, str]] = []
        for name in ("stiffness", "damping", "torque_limit"):
            value = getattr(self, name)
            if len(value) != JOINTS or not all(v > 0 for v in value):
                out.append((name, f"must be {JOINTS} positive values (joints 1-7), got {list(value)}"))
        ranges = ("cube_size", "cube_friction", "goal_distance", "lift_height")
        for name in ranges:
            value = getattr(self, name)
            if len(value) != 2 or not 0 < value[0] <= value[1]:
                out.append((name, f"must be a range [low, high] with 0 < low <= high, got {list(value)}"))
        for low_name, high_name, size in (("target_low", "target_high", 3), ("cube_low", "cube_high", 2)):
            low, high = getattr(self, low_name), getattr(self, high_name)
            if len(low) != size or len(high) != size or not all(a <= b for a, b in zip(low, high, strict=True)):
                out.append((low_name, f"{low_name} and {high_name} must be {size} values, low <= high each"))
        if out:
            return out
        if self.cube_size[1] >= GRIPPER_OPENING:
            out.append(
                (
                    "cube_size",
                    f"the gripper opens to {GRIPPER_OPENING} m: the cube's edge must be below it, "
                    f"got {list(self.cube_size)}",
                )
            )
        if self.target_low[2] < MIN_HEIGHT:
            out.append(
                ("target_low", f"targets must be at least {MIN_HEIGHT} m above the table, got z = {self.target_low[2]}")
            )
        corners = [
            (x, y, z)
            for x in (self.target_low[0], self.target_high[0])
            for y in (self.target_low[1], self.target_high[1])
            for z in (self.target_low[2], self.target_high[2])
        ]
        far = [c for c in corners if not reachable(c)]
        if far:
            out.append(
                (
                    "target_high",
                    f"the target box [{list(self.target_low)}, {list(self.target_high)}] leaves the arm's reach "
                    f"(flange within {REACH} m of the shoulder with the hand pointing down): corner {list(far[0])}",
                )
            )
        lift_top = (self.cube_high[0], self.cube_high[1], self.lift_height[1])
        cube_corners = [
            (x, y, 0.0) for x in (self.cube_low[0], self.cube_high[0]) for y in (self.cube_low[1], self.cube_high[1])
        ]
        if not all(reachable(c) for c in [*cube_corners, lift_top]):
            out.append(
                (
                    "cube_high",
                    f"the cube's start area [{list(self.cube_low)}, {list(self.cube_high)}] leaves the arm's reach",
                )
            )
        if self.cube_low[0] < 0.25:
            out.append(
                ("cube_low", f"the cube must start at least 0.25 m in front of the base, got x = {self.cube_low[0]}")
            )
        return out


__all__ = ["GRIPPER_OPENING", "JOINTS", "REACH", "FrankaConfig", "reachable"]
