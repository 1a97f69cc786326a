"""The Franka tasks as a robot controller runs them: numpy over one MuJoCo MjData, no torch.

deploy-sim (``app/deploy_sim.py``) drives an exported Franka policy with this: it builds the
observation from the simulator's state and the controller's own memory (joint targets, previous
action), applies the action as joint target deltas held by the PD actuators, and scores episodes
with the task's reward terms and success rule, all from ``policy.json``'s ``franka`` section.
``tests/envs/test_franka.py`` checks the observation and reward against the batched torch task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import mujoco
import numpy as np

from envs.manipulation import scene
from envs.manipulation.config import FrankaConfig
from envs.manipulation.control import GRIPPER_STEP
from envs.manipulation.episodes import GOAL_X, GOAL_Y, PENETRATION, START_TRIES
from envs.manipulation.rules import (
    FELL_OFF,
    GRASP_RADIUS,
    LIFT_CLEARANCE,
    LIFT_HOLD_STEPS,
    PUSH_BEHIND,
    PUSH_TOLERANCE,
    REACH_TOLERANCE,
    SOFT_LIMIT,
)

REACH, PUSH, LIFT = "policylab/FrankaReach-v0", "policylab/FrankaPush-v0", "policylab/FrankaLift-v0"
TOLERANCE = {REACH: REACH_TOLERANCE, PUSH: PUSH_TOLERANCE}


def config_from_options(options: dict[str, Any]) -> FrankaConfig:
    """policy.json's ``options`` back into the config (lists to tuples)."""
    return FrankaConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})


@dataclass
class ArmEpisode:
    """One episode's controller state: joint targets, previous action, goal, cube size, steps held."""

    target_q: np.ndarray
    goal: np.ndarray
    cube_size: float = 0.05
    prev_action: np.ndarray = field(default_factory=lambda: np.zeros(0))
    finger_target: float = 0.0
    held: int = 0
    distance: float = 0.0


class ArmTask:
    """``task`` (a Franka task id) on ``model``/``data`` with config ``cfg``."""

    def __init__(self, task: str, cfg: FrankaConfig, model: mujoco.MjModel, weights: dict[str, float]) -> None:
        self.task, self.cfg, self.model, self.weights = task, cfg, model, weights
        self.arm_qpos = [int(model.joint(n).qposadr[0]) for n in scene.JOINT_NAMES]
        self.arm_dof = [int(model.joint(n).dofadr[0]) for n in scene.JOINT_NAMES]
        self.finger_qpos = [int(model.joint(n).qposadr[0]) for n in scene.FINGER_JOINTS]
        self.arm_act = [int(model.actuator(n).id) for n in scene.ARM_ACTUATORS]
        self.finger_act = [int(model.actuator(n).id) for n in scene.FINGER_ACTUATORS]
        self.site = int(model.site(scene.EE_SITE).id)
        self.limits = scene.joint_ranges(model)
        self.home = np.asarray(scene.HOME if task == REACH else scene.PREGRASP)
        self.gripper = task == LIFT
        self.cube_qpos = int(model.joint("cube").qposadr[0]) if task != REACH else -1

    def reset(self, data: mujoco.MjData, rng: np.random.Generator) -> ArmEpisode:
        """A new episode drawn like the task draws it: cube (resized in the model), goal, then the arm's pose."""
        cfg = self.cfg
        mujoco.mj_resetData(self.model, data)
        data.qpos[self.finger_qpos] = scene.FINGER_OPEN if self.gripper else 0.0
        size = float(rng.uniform(*cfg.cube_size))
        if self.task == REACH:
            goal = rng.uniform(cfg.target_low, cfg.target_high)
        else:
            scene.resize_cube(self.model, size)
            xy = rng.uniform(cfg.cube_low, cfg.cube_high)
            a = self.cube_qpos
            data.qpos[a : a + 7] = [xy[0], xy[1], size / 2, 1.0, 0.0, 0.0, 0.0]
            if self.task == PUSH:
                r, angle = rng.uniform(*cfg.goal_distance), rng.uniform(-np.pi, np.pi)
                g = xy + r * np.array([np.cos(angle), np.sin(angle)])
                goal = np.array([np.clip(g[0], *GOAL_X), np.clip(g[1], *GOAL_Y), size / 2])
            else:
                goal = np.array([xy[0], xy[1], size / 2 + rng.uniform(*cfg.lift_height)])
        q = self.start_arm(data, rng)
        mujoco.mj_forward(self.model, data)
        episode = ArmEpisode(target_q=q.copy(), goal=np.asarray(goal, float), cube_size=size)
        episode.finger_target = scene.FINGER_OPEN if self.gripper else 0.0
        episode.prev_action = np.zeros(7 + int(self.gripper))
        episode.distance = self.goal_distance(data, episode)
        return episode

    def start_arm(self, data: mujoco.MjData, rng: np.random.Generator) -> np.ndarray:
        """The arm's start pose + U(-n, n) within its limits, written to ``data``, touching neither table nor cube.

        As the task: a draw that penetrates is drawn again with half the noise, START_TRIES times, then the
        noiseless start pose.
        """
        scale = self.cfg.init_joint_noise
        for attempt in range(START_TRIES + 1):
            noise = rng.uniform(-scale, scale, 7) if attempt < START_TRIES else np.zeros(7)
            q = np.clip(self.home + noise, *self.limits.T)
            data.qpos[self.arm_qpos] = q
            if not scene.penetrating(self.model, data, PENETRATION):
                break
            scale *= 0.5
        return q

    def hand(self, data: mujoco.MjData) -> np.ndarray:
        return data.site_xpos[self.site].copy()

    def cube(self, data: mujoco.MjData) -> np.ndarray:
        return data.qpos[self.cube_qpos : self.cube_qpos + 3].copy()

    def observation(self, data: mujoco.MjData, episode: ArmEpisode) -> np.ndarray:
        """[q - home, qdot, target - q, opening, gripper target - opening, hand, task part, previous action]."""
        q, hand = data.qpos[self.arm_qpos], self.hand(data)
        opening = float(data.qpos[self.finger_qpos].sum())
        gripper = 2 * episode.finger_target - opening
        parts = [q - self.home, data.qvel[self.arm_dof], episode.target_q - q, [opening, gripper], hand]
        if self.task == REACH:
            parts += [episode.goal, episode.goal - hand]
        else:
            cube = self.cube(data)
            parts += [cube, cube - hand, episode.goal, episode.goal - cube]
        return np.concatenate([np.ravel(p) for p in [*parts, episode.prev_action]])

    def apply(self, data: mujoco.MjData, episode: ArmEpisode, action: np.ndarray) -> float:
        """Targets += action_scale * a (clipped to the limits), fingers; returns |a - a_prev|^2."""
        a = np.clip(action, -1.0, 1.0)
        episode.target_q = np.clip(episode.target_q + self.cfg.action_scale * a[:7], *self.limits.T)
        change = float(np.square(a - episode.prev_action).sum())
        episode.prev_action = a
        data.ctrl[self.arm_act] = episode.target_q
        if self.gripper:
            episode.finger_target = float(np.clip(episode.finger_target + GRIPPER_STEP * a[-1], 0.0, scene.FINGER_OPEN))
        data.ctrl[self.finger_act] = episode.finger_target
        return change

    def goal_distance(self, data: mujoco.MjData, episode: ArmEpisode) -> float:
        if self.task == REACH:
            return float(np.linalg.norm(episode.goal - self.hand(data)))
        cube = self.cube(data)
        if self.task == PUSH:
            return float(np.linalg.norm(episode.goal[:2] - cube[:2]))
        return float(np.linalg.norm(episode.goal - cube))

    def reward(self, data: mujoco.MjData, episode: ArmEpisode, change: float) -> tuple[float, bool]:
        """(reward, terminated) after a step: the task's weighted terms; the held counter is updated."""
        before, distance = episode.distance, self.goal_distance(data, episode)
        episode.distance = distance
        q = data.qpos[self.arm_qpos]
        mid, half = self.limits.mean(axis=1), (self.limits[:, 1] - self.limits[:, 0]) / 2
        if self.task == LIFT:
            now = self.cube(data)[2] - episode.cube_size / 2 > LIFT_CLEARANCE
        else:
            now = distance < TOLERANCE[self.task]
        episode.held = episode.held + 1 if now else 0
        terms = {
            "distance": -distance,
            "progress": 100.0 * (before - distance),
            "success": float(now),
            "action_rate": -change,
            "joint_limit": -float(np.clip(np.abs(q - mid) - SOFT_LIMIT * half, 0.0, None).sum()),
            "posture": -float(np.linalg.norm(q - self.home)),
        }
        hand = self.hand(data)
        if self.task == PUSH:
            cube, goal = self.cube(data), episode.goal
            direction = (goal[:2] - cube[:2]) / max(float(np.linalg.norm(goal[:2] - cube[:2])), 1e-6)
            behind = cube.copy()
            behind[:2] -= direction * (episode.cube_size / 2 + PUSH_BEHIND)
            terms["reach"] = -float(np.linalg.norm(hand - behind))
        elif self.task == LIFT:
            cube, size = self.cube(data), episode.cube_size
            near, gap = float(np.linalg.norm(cube - hand)), float(data.qpos[self.finger_qpos].sum())
            terms["reach"] = -near
            terms["grasp"] = float(near < GRASP_RADIUS and 0.8 * size < gap < 1.2 * size)
            terms["lift"] = 10.0 * min(max(cube[2] - size / 2, 0.0), episode.goal[2] - size / 2)
        reward = sum(w * terms[name] for name, w in self.weights.items())
        fell = self.task != REACH and self.cube(data)[2] < FELL_OFF
        return float(reward), bool(fell)

    def success(self, episode: ArmEpisode) -> bool:
        return episode.held >= (LIFT_HOLD_STEPS if self.task == LIFT else 1)


__all__ = ["ArmEpisode", "ArmTask", "config_from_options"]
