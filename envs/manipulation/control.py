"""The Franka policy's interface, written once over numpy or torch arrays: its observation and its action.

A policy's action a = [da_1..da_7 (, g)] is what a real Franka joint position controller takes: each
joint's target moves by ``action_scale * da_i`` from its current target, within the joint's limits, and
the PD actuators hold it for the control period; the gripper (lift only) moves each finger's target
opening by GRIPPER_STEP g. The batched task ([N, ...] torch) and deploy-sim's controller (one arm, numpy
without a batch axis) map actions and assemble observations with these functions; ``xp`` is ``numpy``
or ``torch``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.manipulation import scene
from envs.manipulation.config import JOINTS
from envs.manipulation.rules import ArmState, Joints, TaskRules

GRIPPER_STEP = 0.005  # m per control step per finger at |g| = 1 (a full close takes 8 steps)


def clip_action(action: Any, xp: Any = np) -> Any:
    """The action [..., act_dim] clipped to [-1, 1] (what is applied, and remembered as the previous action)."""
    return xp.clip(action, -1.0, 1.0)


def joint_targets(target_q: Any, a: Any, action_scale: float, joints: Joints, xp: Any = np) -> Any:
    """New joint targets [..., 7]: clip(target_q + action_scale a[:7], low, high); ``a`` already clipped."""
    return xp.minimum(xp.maximum(target_q + action_scale * a[..., :JOINTS], joints.low), joints.high)


def finger_target(target: Any, a: Any, xp: Any = np) -> Any:
    """New target opening of each finger [...]: clip(target + GRIPPER_STEP a[-1], 0, FINGER_OPEN) m."""
    return xp.clip(target + GRIPPER_STEP * a[..., -1], 0.0, scene.FINGER_OPEN)


def action_change(a: Any, previous: Any, xp: Any = np) -> Any:
    """|a_t - a_(t-1)|^2 [...] of clipped actions [..., act_dim] (the action-rate penalty)."""
    return xp.square(a - previous).sum(-1)


def observation(
    rules: TaskRules, joints: Joints, s: ArmState, target_q: Any, finger: Any, previous: Any, xp: Any = np
) -> Any:
    """The policy's observation [..., obs_dim] (positions in the base frame, m).

    [q - home (7), qdot (7), target - q (7), opening (1), 2 finger - opening (1), hand (3), task part,
    previous action]; the task part is ``rules.observed``: [target, target - hand] (reach), [cube,
    cube - hand, goal, goal - cube] (lift), these and the pushing point - hand (push). ``finger`` [...]:
    each finger's target opening, so 2 finger is the gap commanded; ``previous`` [..., act_dim]: the last
    clipped action.
    """
    opening = s.opening[..., None]
    gripper = 2 * finger[..., None] - opening  # the gap commanded minus the gap there is
    parts = [s.q - joints.home, s.qdot, target_q - s.q, opening, gripper, s.hand, *rules.observed(s, xp), previous]
    return xp.concatenate(parts, axis=-1)


__all__ = ["GRIPPER_STEP", "action_change", "clip_action", "finger_target", "joint_targets", "observation"]
