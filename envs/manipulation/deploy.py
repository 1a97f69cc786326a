"""The Franka tasks as the arm's controller runs them: numpy over one MuJoCo MjData, no torch.

:class:`FrankaController` is deploy-sim's controller of ``policylab/Franka*-v0`` (the contract is
:mod:`envs.deploy`), built from ``policy.json``'s ``franka`` section alone. It draws episodes, maps
actions to PD joint targets, builds the observation and scores steps with the functions the batched
torch task calls (:mod:`envs.manipulation.rules`, :mod:`~envs.manipulation.episodes`,
:mod:`~envs.manipulation.control`), over arrays of one arm without a batch axis.

What the controller observes (:meth:`FrankaController.observation`) and what the task would observe
(:meth:`FrankaController.reference_observation`) differ in the hand's position only (``hand``,
``target - hand``, ``cube - hand``). The controller knows its hand as a robot does: Franka's datasheet
kinematics (:mod:`envs.manipulation.kinematics`) of its joint encoders now. The task reads MuJoCo's
``grip`` site, which ``mj_step`` leaves computed at the start of the control period's last physics step
(5 ms before the encoders). The gap is the model's departure from the datasheet (under 0.5 mm over the
joint ranges) plus 5 ms of the hand's travel (up to about 6 mm at full speed). Joint and finger
encoders, joint velocities, the controller's own targets and previous action, the goal, and the cube
(as a perception system reporting its centre would give it) are the simulator's values. Rewards and
success are the task's rules on the simulator's full state (the site), so returns compare with the
checkpoint's evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import mujoco
import numpy as np

from envs.episode_stats import episode_means, stack_episodes
from envs.manipulation import control, episodes, kinematics, scene
from envs.manipulation.config import FrankaConfig
from envs.manipulation.episodes import PENETRATION, Uniform
from envs.manipulation.rules import (
    RULES,
    ArmState,
    Joints,
    TaskRules,
    fell_off,
    held_steps,
    reward_terms,
    succeeded,
    weighted_reward,
)
from envs.manipulation.summary import summary_lines as task_summary_lines

Draws = Callable[[int], Uniform]  # episode -> its U(0, 1) sampler


def config_from_options(options: dict[str, Any]) -> FrankaConfig:
    """policy.json's ``options`` back into the config (lists to tuples)."""
    return FrankaConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})


def franka_section(meta: dict[str, Any]) -> dict[str, Any]:
    """policy.json's ``franka`` section (the task's ``deployment()``), where the export writes it."""
    return meta["observation"]["franka"]


class FrankaController:
    """One Franka task (``rules``) with config ``cfg`` on its own scene, as the robot's controller runs it.

    ``weights``: the reward's term -> weight; ``draws(episode)``: that episode's U(0, 1) sampler (default:
    a numpy generator seeded ``seed + episode``). After construction the controller is at episode 0.
    """

    # Largest |observation - reference| the verdict accepts, m: the datasheet's kinematics against the model
    # (under 0.5 mm) plus the site's 5 ms lag behind the encoders (hand speed x 5 ms: measured up to 6.4 mm
    # with every joint's target moving at its full rate, about 1.5 mm typical under random actions).
    obs_tolerance: ClassVar[float] = 1e-2

    def __init__(
        self,
        rules: TaskRules,
        cfg: FrankaConfig,
        weights: dict[str, float],
        max_episode_steps: int,
        seed: int = 0,
        draws: Draws | None = None,
    ) -> None:
        self.rules, self.cfg, self.weights = rules, cfg, dict(weights)
        self.max_episode_steps = int(max_episode_steps)
        self.draws = draws or (lambda episode: np.random.default_rng(seed + episode).random)
        self.model = scene.scene_model(cfg, cube=rules.has_cube)
        self.data = mujoco.MjData(self.model)
        self.frame_skip = scene.FRAME_SKIP
        self.control_period = float(self.model.opt.timestep) * self.frame_skip
        model = self.model
        at = scene.Addresses.of(model)
        self.arm_qpos, self.arm_dof, self.finger_qpos = at.arm_qpos, at.arm_dof, at.finger_qpos
        self.arm_act, self.finger_act, self.site, self.cube_qpos = at.arm_act, at.finger_act, at.site, at.cube_qpos
        limits = scene.joint_ranges(model)
        self.joints = Joints(home=np.asarray(rules.start_pose, dtype=np.float64), low=limits[:, 0], high=limits[:, 1])
        self.act_dim = scene.JOINTS + int(rules.gripper)
        self.reset(0)

    @classmethod
    def from_export(cls, meta: dict[str, Any], seed: int) -> FrankaController:
        """The controller ``policy.json`` (its content ``meta``) describes; episode i is drawn from seed + i."""
        section = franka_section(meta)
        controller = cls(
            RULES[section["task"]],
            config_from_options(section["options"]),
            section["reward_weights"],
            int(meta["max_episode_steps"]),
            seed,
        )
        if int(section["frame_skip"]) != controller.frame_skip:
            raise ValueError(f"policy.json's frame_skip {section['frame_skip']}: this scene steps {scene.FRAME_SKIP}")
        return controller

    # -- episodes ---------------------------------------------------------------------------

    def reset(self, episode: int) -> None:
        """Episode ``episode`` drawn as the task draws it: goal (and cube, resized in the model), then the arm."""
        rules, model, data = self.rules, self.model, self.data
        draw = self.draws(episode)
        mujoco.mj_resetData(model, data)
        opening = scene.FINGER_OPEN if rules.gripper else 0.0
        data.qpos[self.finger_qpos] = opening
        placed = rules.draw_goal(self.cfg, (), draw, np)
        self.goal = np.asarray(placed.goal, dtype=np.float64)
        self.cube_size = np.float64(0.05)  # the task's default (reach has no cube)
        if placed.cube_xy is not None:
            self.cube_size = np.float64(placed.cube_size)
            scene.resize_cube(model, float(self.cube_size))
            if placed.cube_friction is not None:
                model.geom_friction[model.geom("cube").id, 0] = float(placed.cube_friction)
            a = self.cube_qpos
            data.qpos[a : a + 7] = [*placed.cube_xy, self.cube_size / 2, 1.0, 0.0, 0.0, 0.0]  # upright, at rest
        q = episodes.start_pose(self.joints, self.cfg.init_joint_noise, (), draw, self.touching, np)
        data.qpos[self.arm_qpos] = q
        mujoco.mj_forward(model, data)
        # the controller's memory: joint and finger targets, previous action, steps the success condition held
        self.target_q = np.array(q, dtype=np.float64)
        self.finger = np.float64(opening)
        self.previous = np.zeros(self.act_dim)
        self.held = np.float64(0.0)
        self.steps = 0
        self.distance = self.rules.goal_distance(self.state(self.site_hand()), np)

    def touching(self, q: np.ndarray, check: Any) -> np.ndarray:
        """Whether the arm at q [7] touches the table or the cube (over PENETRATION), if ``check``."""
        if not bool(check):
            return np.asarray(False)
        self.data.qpos[self.arm_qpos] = q
        return np.asarray(scene.penetrating(self.model, self.data, PENETRATION))

    # -- what is known ----------------------------------------------------------------------

    def site_hand(self) -> np.ndarray:
        """The grip point [3] as the task reads it: MuJoCo's site."""
        return self.data.site_xpos[self.site].copy()

    def encoder_hand(self) -> np.ndarray:
        """The grip point [3] as the controller knows it: the datasheet's kinematics of the joint encoders."""
        return kinematics.hand_position(self.data.qpos[self.arm_qpos])

    def state(self, hand: np.ndarray) -> ArmState:
        """The rules' view of the arm now, with the hand at ``hand`` [3] (arrays without a batch axis)."""
        data, cube = self.data, self.rules.has_cube
        return ArmState(
            q=data.qpos[self.arm_qpos].copy(),
            qdot=data.qvel[self.arm_dof].copy(),
            opening=np.float64(data.qpos[self.finger_qpos].sum()),
            hand=hand,
            goal=self.goal,
            cube=data.qpos[self.cube_qpos : self.cube_qpos + 3].copy() if cube else None,
            cube_size=self.cube_size if cube else None,
        )

    def _observe(self, hand: np.ndarray) -> np.ndarray:
        s = self.state(hand)
        return control.observation(self.rules, self.joints, s, self.target_q, self.finger, self.previous, np)

    def observation(self) -> np.ndarray:
        """[obs_dim]: the controller's observation (its forward kinematics for the hand)."""
        return self._observe(self.encoder_hand())

    def reference_observation(self) -> np.ndarray:
        """[obs_dim]: the task's observation rule on the simulator's full state (MuJoCo's site for the hand)."""
        return self._observe(self.site_hand())

    # -- control ----------------------------------------------------------------------------

    def step(self, action: np.ndarray) -> tuple[float, bool]:
        """Apply ``action`` [act_dim] for one control period; (the task's reward, whether the episode is over).

        Over: the cube fell off the table, or max_episode_steps control periods have passed.
        """
        a = control.clip_action(np.asarray(action, dtype=np.float64), np)
        self.target_q = control.joint_targets(self.target_q, a, self.cfg.action_scale, self.joints, np)
        change = control.action_change(a, self.previous, np)
        self.previous = a
        if self.rules.gripper:
            self.finger = control.finger_target(self.finger, a, np)
        self.data.ctrl[self.arm_act] = self.target_q
        self.data.ctrl[self.finger_act] = self.finger
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        self.steps += 1
        s = self.state(self.site_hand())
        before, self.distance = self.distance, self.rules.goal_distance(s, np)
        now = self.rules.succeeding(s, self.distance)
        self.held = held_steps(self.held, now, np)
        terms = reward_terms(self.rules, self.joints, s, before, self.distance, now, change, np)
        over = bool(fell_off(self.rules, s, np)) or self.steps >= self.max_episode_steps
        return float(weighted_reward(terms, self.weights)), over

    # -- statistics -------------------------------------------------------------------------

    def episode_stats(self) -> dict[str, float]:
        """success (0/1: the task's rule at the episode's last step) and the final goal distance (m)."""
        return {"success": float(succeeded(self.rules, self.held)), "final_distance": float(self.distance)}

    def summarize(self, episodes: list[dict[str, float]]) -> dict[str, float]:
        """The success rate and the mean final distance over ``episodes``: their means, as ``make eval`` takes them."""
        return episode_means(stack_episodes(episodes))

    def summary_lines(self, summary: dict[str, float], reference: dict[str, Any]) -> list[str]:
        """deploy-sim's line for the arm: the success rate beside the checkpoint evaluation's."""
        controller = f"PD joint targets at {self.control_period:g} s, numpy controller"
        return [f"{controller}: {line}" for line in task_summary_lines(summary, reference)]


__all__ = ["Draws", "FrankaController", "config_from_options", "franka_section"]
