"""The Franka tasks' rules, written once over numpy or torch arrays: goals, rewards, success, the end.

The batched torch task (:mod:`envs.manipulation.task`, arrays [N, ...] on the simulator's device)
and deploy-sim's numpy controller (:mod:`envs.manipulation.deploy`, one arm: arrays without a
batch axis) call these same functions. Every function takes arrays over any leading batch shape
``[...]`` and ``xp``, the module they come from (``numpy`` or ``torch``), as
:func:`envs.driving.car.steering_command` does; nothing here imports torch.

One task's rules are one object (:data:`REACH`, :data:`PUSH`, :data:`LIFT`): its goal's draw, the
distance it shrinks, its own reward terms and its success condition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from envs.manipulation import scene
from envs.manipulation.config import FrankaConfig
from envs.manipulation.episodes import EpisodeDraw, Uniform, between, draw_cube, in_box, lift_goal, push_goal

REACH_TOLERANCE = 0.02  # m: reach succeeds with the grip point within 2 cm of the target
PUSH_TOLERANCE = 0.03  # m: push succeeds with the cube within 3 cm of the goal (in the table's plane)
LIFT_CLEARANCE = 0.05  # m: lift succeeds with the cube this far above its resting height ...
LIFT_HOLD_STEPS = 50  # ... for the last second of the episode (50 control steps)
GRASP_RADIUS = 0.02  # m: a grasp needs the cube's centre this close to the grip point
PUSH_BEHIND = 0.02  # m: push draws the hand to half a cube + this behind the cube, away from the goal
PUSH_HOVER = 0.05  # m: ... coming down onto that point from this far above it while away from it ...
HOVER_SLOPE = 2.0  # ... and HOVER_SLOPE m lower per m closer to it in the table's plane
SOFT_LIMIT = 0.95  # the joint-limit penalty starts at 95% of each joint's half range
FELL_OFF = -0.05  # m: a cube below the table's top has fallen off: the episode ends
COMMON_TERMS = ("distance", "progress", "success", "action_rate", "joint_limit", "posture")


@dataclass(frozen=True)
class ArmState:
    """The task's state at one moment as the rules read it: arrays [...] (numpy or torch, float64)."""

    q: Any  # [..., 7] joint positions, rad
    qdot: Any  # [..., 7] joint velocities, rad/s
    opening: Any  # [...] the gap between the fingers, m
    hand: Any  # [..., 3] the grip point, m (base frame)
    goal: Any  # [..., 3] the reach target, push or lift goal, m
    cube: Any = None  # [..., 3] the cube's centre, m (reach: none)
    cube_size: Any = None  # [...] the cube's edge, m (reach: none)


@dataclass(frozen=True)
class Joints:
    """The arm's joint constants, [7] each (numpy or torch): the task's start pose and the joint limits, rad."""

    home: Any
    low: Any
    high: Any


def indicator(condition: Any, like: Any, xp: Any = np) -> Any:
    """1.0 where ``condition`` [...] holds, else 0.0, in the dtype and device of ``like`` [...]."""
    return xp.where(condition, xp.ones_like(like), xp.zeros_like(like))


def norm(x: Any, xp: Any = np) -> Any:
    """|x| over the last axis: [..., d] -> [...]."""
    return xp.linalg.norm(x, axis=-1)


def joint_limit_excess(q: Any, joints: Joints, xp: Any = np) -> Any:
    """sum_i max(0, |q_i - mid_i| - SOFT_LIMIT half_i) [...], rad: q [..., 7]; mid, half of each joint's range."""
    mid, half = (joints.high + joints.low) / 2, (joints.high - joints.low) / 2
    return xp.clip(xp.abs(q - mid) - SOFT_LIMIT * half, 0.0, None).sum(-1)


def behind_cube(cube: Any, goal: Any, size: Any, xp: Any = np) -> Any:
    """Push's reach point [..., 3]: half a cube + PUSH_BEHIND behind the cube's centre, away from the goal.

    p = cube - (size / 2 + PUSH_BEHIND) u (in the table's plane), u = (goal - cube)_xy / max(|(goal - cube)_xy|, 1e-6).
    """
    direction = goal[..., :2] - cube[..., :2]
    direction = direction / xp.clip(norm(direction, xp), 1e-6, None)[..., None]
    back = direction * (size[..., None] / 2 + PUSH_BEHIND)
    return xp.concatenate([cube[..., :2] - back, cube[..., 2:]], axis=-1)


def approach_point(hand: Any, cube: Any, goal: Any, size: Any, xp: Any = np) -> Any:
    """Where push draws the hand [..., 3]: above :func:`behind_cube`, the lower the closer the hand is to it.

    p' = p + (0, 0, min(PUSH_HOVER, HOVER_SLOPE d)), d = |(hand - p)_xy|: the hand comes down onto the
    pushing point from above instead of through the cube.
    """
    p = behind_cube(cube, goal, size, xp)
    d = norm(hand[..., :2] - p[..., :2], xp)
    lift = xp.clip(HOVER_SLOPE * d, None, PUSH_HOVER)
    return xp.concatenate([p[..., :2], p[..., 2:] + lift[..., None]], axis=-1)


class TaskRules:
    """One Franka task's rules. Subclasses: the goal's draw, the goal distance, their own terms, success."""

    task_id: ClassVar[str]
    has_cube: ClassVar[bool] = True
    gripper: ClassVar[bool] = False  # the action has a gripper command
    start_pose: ClassVar[tuple[float, ...]] = scene.PREGRASP  # episodes start here (+ noise)
    terms: ClassVar[tuple[str, ...]]  # the reward's terms, each weighted by task.franka.reward_<term>
    hold_steps: ClassVar[int] = 1  # success: the condition held for the episode's last hold_steps steps
    success_note: ClassVar[str]  # the success rule in words (policy.json)
    # the names of :meth:`observed`'s vectors, one per entry with {a} its axis (x, y, z)
    observed_names: ClassVar[tuple[str, ...]] = ("cube_{a}", "cube_{a} - hand_{a}", "goal_{a}", "goal_{a} - cube_{a}")
    marker: ClassVar[float]  # m, the radius of the goal's sphere in videos

    def draw_goal(self, cfg: FrankaConfig, batch: tuple[int, ...], draw: Uniform, xp: Any = np) -> EpisodeDraw:
        """The goal [*batch, 3] of new episodes (and the cube's size and place) from U(0, 1) draws."""
        raise NotImplementedError

    def goal_distance(self, s: ArmState, xp: Any = np) -> Any:
        """The distance [...] the task shrinks, m."""
        raise NotImplementedError

    def task_terms(self, s: ArmState, xp: Any = np) -> dict[str, Any]:
        """The task's own reward terms [...] (besides :data:`COMMON_TERMS`)."""
        return {}

    def succeeding(self, s: ArmState, distance: Any) -> Any:
        """[...] bool: the success condition holds now."""
        raise NotImplementedError

    def observed(self, s: ArmState, xp: Any = np) -> list[Any]:
        """The observation's task part: vectors [..., 3], m, named by ``observed_names`` (push, lift: cube,
        cube - hand, goal, goal - cube)."""
        return [s.cube, s.cube - s.hand, s.goal, s.goal - s.cube]


class ReachRules(TaskRules):
    """Move the hand to a random point of the target box. Success: within 2 cm when the episode ends."""

    task_id = "policylab/FrankaReach-v0"
    has_cube = False
    start_pose = scene.HOME
    terms = COMMON_TERMS
    success_note = f"hand within {REACH_TOLERANCE} m of the target at the episode's last step"
    observed_names = ("target_{a}", "target_{a} - hand_{a}")
    marker = REACH_TOLERANCE

    def draw_goal(self, cfg: FrankaConfig, batch: tuple[int, ...], draw: Uniform, xp: Any = np) -> EpisodeDraw:
        return EpisodeDraw(goal=in_box(cfg.target_low, cfg.target_high, draw((*batch, 3)), xp))

    def goal_distance(self, s: ArmState, xp: Any = np) -> Any:
        return norm(s.goal - s.hand, xp)  # |target - hand|

    def succeeding(self, s: ArmState, distance: Any) -> Any:
        return distance < REACH_TOLERANCE

    def observed(self, s: ArmState, xp: Any = np) -> list[Any]:
        return [s.goal, s.goal - s.hand]  # the target, target - hand


class PushRules(TaskRules):
    """Push the cube across the table to a goal (fingers closed). Success: within 3 cm when the episode ends.

    The hand is drawn to the cube's far side from the goal, down onto it from above (``reach``: minus the
    hand's distance to :func:`approach_point`, m), and observes where that pushing point is.
    """

    task_id = "policylab/FrankaPush-v0"
    terms = ("reach", *COMMON_TERMS)
    success_note = f"cube within {PUSH_TOLERANCE} m of the goal (in the table's plane) at the last step"
    observed_names = (*TaskRules.observed_names, "push_point_{a} - hand_{a}")
    marker = PUSH_TOLERANCE

    def draw_goal(self, cfg: FrankaConfig, batch: tuple[int, ...], draw: Uniform, xp: Any = np) -> EpisodeDraw:
        size, xy, friction = draw_cube(cfg, batch, draw, xp)
        r = between(cfg.goal_distance[0], cfg.goal_distance[1], draw(batch))
        angle = between(-math.pi, math.pi, draw(batch))
        return EpisodeDraw(goal=push_goal(xy, r, angle, size, xp), cube_size=size, cube_xy=xy, cube_friction=friction)

    def goal_distance(self, s: ArmState, xp: Any = np) -> Any:
        return norm(s.goal[..., :2] - s.cube[..., :2], xp)  # |goal - cube| in the table's plane

    def task_terms(self, s: ArmState, xp: Any = np) -> dict[str, Any]:
        return {"reach": -norm(s.hand - approach_point(s.hand, s.cube, s.goal, s.cube_size, xp), xp)}

    def succeeding(self, s: ArmState, distance: Any) -> Any:
        return distance < PUSH_TOLERANCE

    def observed(self, s: ArmState, xp: Any = np) -> list[Any]:
        # ... and the pushing point - hand (:func:`behind_cube`)
        return [*super().observed(s, xp), behind_cube(s.cube, s.goal, s.cube_size, xp) - s.hand]


class LiftRules(TaskRules):
    """Grasp the cube and lift it to a random height above where it lay. Success: the cube more than 5 cm
    above its resting height for the last second (50 steps) of the episode.

    Terms: ``reach`` (minus the hand's distance to the cube, m), ``grasp`` (the cube within 2 cm of the
    grip point and the fingers closed on it: their gap within [0.8, 1.2] x the cube's edge), ``lift`` (the
    cube's rise, clipped at the goal's, per 10 cm), ``distance`` (-|cube - goal|), ``progress``, ``success``.
    """

    task_id = "policylab/FrankaLift-v0"
    gripper = True
    terms = ("reach", "grasp", "lift", *COMMON_TERMS)
    hold_steps = LIFT_HOLD_STEPS
    success_note = f"cube more than {LIFT_CLEARANCE} m above its resting height for the last {LIFT_HOLD_STEPS} steps"
    marker = PUSH_TOLERANCE

    def draw_goal(self, cfg: FrankaConfig, batch: tuple[int, ...], draw: Uniform, xp: Any = np) -> EpisodeDraw:
        size, xy, friction = draw_cube(cfg, batch, draw, xp)
        rise = between(cfg.lift_height[0], cfg.lift_height[1], draw(batch))
        return EpisodeDraw(goal=lift_goal(xy, rise, size, xp), cube_size=size, cube_xy=xy, cube_friction=friction)

    def goal_distance(self, s: ArmState, xp: Any = np) -> Any:
        return norm(s.goal - s.cube, xp)  # |goal - cube|

    @staticmethod
    def rise(s: ArmState) -> Any:
        """How far [...] the cube's centre is above its resting height, m: cube_z - size / 2."""
        return s.cube[..., 2] - s.cube_size / 2

    def task_terms(self, s: ArmState, xp: Any = np) -> dict[str, Any]:
        near = norm(s.cube - s.hand, xp)
        size, gap = s.cube_size, s.opening
        grasp = (near < GRASP_RADIUS) & (gap > 0.8 * size) & (gap < 1.2 * size)
        top = s.goal[..., 2] - size / 2  # the goal's rise
        return {
            "reach": -near,
            "grasp": indicator(grasp, near, xp),
            "lift": 10.0 * xp.minimum(xp.clip(self.rise(s), 0.0, None), top),  # 10 min(max(rise, 0), top)
        }

    def succeeding(self, s: ArmState, distance: Any) -> Any:
        return self.rise(s) > LIFT_CLEARANCE


REACH, PUSH, LIFT = ReachRules(), PushRules(), LiftRules()
RULES: dict[str, TaskRules] = {r.task_id: r for r in (REACH, PUSH, LIFT)}


def reward_terms(
    rules: TaskRules, joints: Joints, s: ArmState, before: Any, distance: Any, now: Any, change: Any, xp: Any = np
) -> dict[str, Any]:
    """The terms of ``rules.terms`` [...] (unweighted) after a step.

    ``before``/``distance``: the goal distance before and after the step; ``now``: the success
    condition after it; ``change``: |a_t - a_(t-1)|^2 of the step's action.
    """
    terms = {
        "distance": -distance,
        "progress": 100.0 * (before - distance),  # cm closer per step
        "success": indicator(now, distance, xp),
        "action_rate": -change,
        "joint_limit": -joint_limit_excess(s.q, joints, xp),
        "posture": -norm(s.q - joints.home, xp),
        **rules.task_terms(s, xp),
    }
    return {name: terms[name] for name in rules.terms}


def weighted_reward(terms: dict[str, Any], weights: dict[str, float]) -> Any:
    """r = sum_term weight_term * term [...], over the terms in their order."""
    return sum(weights[name] * value for name, value in terms.items())


def held_steps(held: Any, now: Any, xp: Any = np) -> Any:
    """Consecutive steps [...] the success condition has held: held + 1 where it holds now, else 0."""
    return xp.where(now, held + 1, xp.zeros_like(held))


def succeeded(rules: TaskRules, held: Any) -> Any:
    """[...] bool: the episode that ends now has succeeded (the condition held for its last hold_steps steps)."""
    return held >= rules.hold_steps


def fell_off(rules: TaskRules, s: ArmState, xp: Any = np) -> Any:
    """[...] bool: the episode ends early: the cube's centre is below FELL_OFF (it left the table)."""
    return s.cube[..., 2] < FELL_OFF if rules.has_cube else xp.zeros_like(s.opening, dtype=xp.bool)


__all__ = [
    "COMMON_TERMS",
    "FELL_OFF",
    "GRASP_RADIUS",
    "HOVER_SLOPE",
    "LIFT",
    "LIFT_CLEARANCE",
    "LIFT_HOLD_STEPS",
    "PUSH",
    "PUSH_BEHIND",
    "PUSH_HOVER",
    "PUSH_TOLERANCE",
    "REACH",
    "REACH_TOLERANCE",
    "RULES",
    "SOFT_LIMIT",
    "ArmState",
    "Joints",
    "TaskRules",
    "approach_point",
    "behind_cube",
    "fell_off",
    "held_steps",
    "indicator",
    "joint_limit_excess",
    "norm",
    "reward_terms",
    "succeeded",
    "weighted_reward",
]
