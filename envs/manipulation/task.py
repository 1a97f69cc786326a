"""Franka Panda tasks: reach a point, push a cube to a goal, lift a cube; many arms stepped in parallel.

The arm is the Franka Panda of ``gymnasium-robotics`` in our scene (:mod:`envs.manipulation.scene`).
Actions are what a real Franka joint position controller takes (:mod:`envs.manipulation.control`):
a = [da_1..da_7 (, g)] in [-1, 1]; each joint's target moves by ``action_scale * da_i`` from its current
target and is clipped to the joint's limits, and the PD law tau_i = clip(kp_i (target_i - q_i),
+-torque_limit_i) - kd_i qdot_i (plus the robot's own gravity compensation) holds it for the control
period (4 x 5 ms = 20 ms). The gripper (lift only) takes g the same way: each finger's target opening
moves by GRIPPER_STEP g per step within [0, 0.04] m (episodes start open; a full close takes 8 steps).

Observation (positions in the base frame, m): [q - home (7), qdot (7), target - q (7), gripper
opening (1), gripper target - opening (1), hand position (3), task part, previous action]; the task
part is [target, target - hand] for reach, [cube, cube - hand, goal, goal - cube] for lift, and
these and the pushing point - hand for push. The hand's position is its grip point (between the
fingers, 1.5 cm above their tips): MuJoCo's ``grip`` site as ``mj_step`` leaves it (computed at the
start of the control period's last physics step).

Rewards are sums of named terms, each weighted by ``task.franka.reward_<term>``; each term's mean per
step is logged (``reward_<term>`` in progress.csv and TensorBoard). Success ends no episode: it is
judged when the episode ends (``success`` in the evaluation, a rate over episodes).

This module is the batch of N arms in torch; the rules it applies (draws, observation, action mapping,
reward terms, success) are written once in :mod:`envs.manipulation.rules`, :mod:`~envs.manipulation.episodes`
and :mod:`~envs.manipulation.control`, which deploy-sim's numpy controller (:mod:`envs.manipulation.deploy`)
calls too.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, ClassVar

import mujoco
import numpy as np
import torch
from torch import Tensor

from envs.manipulation import control, episodes, scene, summary
from envs.manipulation.config import FrankaConfig
from envs.manipulation.control import GRIPPER_STEP
from envs.manipulation.episodes import PENETRATION
from envs.manipulation.rules import (
    LIFT,
    PUSH,
    REACH,
    ArmState,
    Joints,
    TaskRules,
    fell_off,
    held_steps,
    reward_terms,
    succeeded,
    weighted_reward,
)
from envs.native.simulator import Simulator
from envs.native.task import NativeTask, uniform

GOAL_COLOUR = np.array([0.2, 0.9, 0.3, 0.45], dtype=np.float32)
CONTROLLER = "envs.manipulation.deploy:FrankaController"  # deploy-sim's controller of these tasks


class Franka(NativeTask):
    """The arm on its table; subclasses name their rules (:mod:`envs.manipulation.rules`): cube, gripper, terms."""

    rules: ClassVar[TaskRules]
    frame_skip = scene.FRAME_SKIP
    fields = ("site_xpos",)
    default_camera: ClassVar[str] = "front"  # videos look at the table from the front-right
    nconmax, njmax = 24, 96

    def __init__(
        self, model: mujoco.MjModel, device: torch.device | str = "cpu", options: Any = None, evaluation: bool = False
    ) -> None:
        super().__init__(model, device, options if options is not None else FrankaConfig(), evaluation)
        cfg: FrankaConfig = self.options
        self.cfg = cfg
        dev, f64 = self.device, torch.float64
        at = scene.Addresses.of(model)
        self.arm_qpos, self.arm_dof, self.finger_qpos = at.arm_qpos, at.arm_dof, at.finger_qpos
        self.arm_act, self.finger_act, self.ee_site = at.arm_act, at.finger_act, at.site
        ranges = scene.joint_ranges(model)
        self.q_low = torch.tensor(ranges[:, 0], dtype=f64, device=dev)
        self.q_high = torch.tensor(ranges[:, 1], dtype=f64, device=dev)
        self.home = torch.tensor(self.rules.start_pose, dtype=f64, device=dev)
        self.joints = Joints(home=self.home, low=self.q_low, high=self.q_high)
        if self.rules.has_cube:
            self.cube_qpos = at.cube_qpos
            self.cube_geom = int(model.geom("cube").id)
        self.act_dim = scene.JOINTS + int(self.rules.gripper)
        self.weights = {term: float(getattr(cfg, f"reward_{term}")) for term in self.rules.terms}
        self._per_world: dict[str, Tensor] = {}
        self.last_terms: dict[str, Tensor] = {}

    @classmethod
    def load_model(cls, options: Any = None) -> mujoco.MjModel:
        return scene.scene_model(options, cube=cls.rules.has_cube)

    # -- episodes -------------------------------------------------------------------------

    def _allocate(self, n: int) -> None:
        dev, f64 = self.device, torch.float64
        self._per_world = {
            "target_q": torch.zeros((n, scene.JOINTS), dtype=f64, device=dev),  # the PD's joint targets
            "finger_target": torch.zeros(n, dtype=f64, device=dev),  # each finger's target opening, m
            "prev_action": torch.zeros((n, self.act_dim), dtype=f64, device=dev),
            "action_change": torch.zeros(n, dtype=f64, device=dev),  # |a_t - a_(t-1)|^2 of the last step
            "goal": torch.zeros((n, 3), dtype=f64, device=dev),  # reach target, push or lift goal
            "cube_size": torch.full((n,), 0.05, dtype=f64, device=dev),  # edge length
            "held": torch.zeros(n, dtype=f64, device=dev),  # consecutive steps the success condition held
            "distance": torch.zeros(n, dtype=f64, device=dev),  # the goal distance after the last step
        }

    def reset_worlds(self, ids: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Goal (and cube), then the arm at home + U(-init_joint_noise, +) touching nothing; targets there.

        The draws are :mod:`envs.manipulation.episodes`' over U(0, 1) samples of ``generator`` ([k, ...]).
        """
        ids = ids.nonzero().squeeze(1) if ids.dtype == torch.bool else ids
        if not self._per_world:
            self._allocate(len(ids))
        k, dev = len(ids), self.device
        rows = ids.to(dev)
        qpos = self.init_qpos.expand(k, -1).clone()
        opening = scene.FINGER_OPEN if self.rules.gripper else 0.0
        qpos[:, self.finger_qpos] = opening

        def draw(shape: tuple[int, ...]) -> Tensor:
            return uniform(0.0, 1.0, shape, generator).to(dev)

        state = self._per_world
        placed = self.rules.draw_goal(self.cfg, (k,), draw, torch)
        state["goal"][rows] = placed.goal
        if placed.cube_xy is not None:
            self.place_cube(qpos, rows, placed.cube_xy, placed.cube_size, placed.cube_friction)
        qpos[:, self.arm_qpos] = self.start_arm(qpos, rows, draw)
        state["target_q"][rows] = qpos[:, self.arm_qpos]
        state["finger_target"][rows] = opening
        state["prev_action"][rows] = 0.0
        state["action_change"][rows] = 0.0
        state["held"][rows] = 0.0
        return qpos, self.init_qvel.expand(k, -1).clone()

    def start_arm(self, qpos: Tensor, rows: Tensor, draw: episodes.Uniform) -> Tensor:
        """Joint positions [k, 7] of :func:`episodes.start_pose`, tested by MuJoCo's collision detection (CPU)."""

        def touching(q: Tensor, check: Tensor) -> Tensor:
            qpos[:, self.arm_qpos] = q
            out = torch.zeros_like(check)
            out[check] = self.penetrating(qpos[check], rows[check])  # only the new draws
            return out

        return episodes.start_pose(self.joints, self.cfg.init_joint_noise, (len(rows),), draw, touching, torch)

    def penetrating(self, qpos: Tensor, rows: Tensor) -> Tensor:
        """[k] bool: the arm at qpos [k, nq] (worlds ``rows`` [k]) touches the table or the cube (over PENETRATION)."""
        if self._scratch is None:
            model = copy.copy(self.model)  # its cube is resized per world below
            self._scratch = (model, mujoco.MjData(model))
        model, data = self._scratch
        size = self._per_world["cube_size"][rows].cpu().numpy() if self.rules.has_cube else None
        out = torch.zeros(len(rows), dtype=torch.bool)
        for i, row in enumerate(qpos.cpu().numpy()):
            if size is not None:
                scene.resize_cube(model, float(size[i]))
            data.qpos[:] = row
            out[i] = scene.penetrating(model, data, PENETRATION)
        return out.to(self.device)

    _scratch: tuple[mujoco.MjModel, mujoco.MjData] | None = None

    def place_cube(self, qpos: Tensor, rows: Tensor, xy: Tensor, size: Tensor, friction: Tensor | None) -> None:
        """The cube resting upright at xy [k, 2] in ``qpos`` [k, nq]; its edge ``size`` [k] and sliding
        ``friction`` [k] (None: the scene's) per world."""
        self._per_world["cube_size"][rows] = size
        if self.cfg.cube_size[0] != self.cfg.cube_size[1] and self.sim is not None:  # per-world geometry
            self._resize_cubes(rows, size)
        if friction is not None and self.sim is not None:  # per world, in place of the randomizer's scale
            field = self.sim.model_field("geom_friction")
            field[rows, self.cube_geom, 0] = friction.to(field.dtype)
        a = self.cube_qpos
        qpos[:, a : a + 2] = xy
        qpos[:, a + 2] = size / 2
        qpos[:, a + 3 : a + 7] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64, device=self.device)

    def _resize_cubes(self, rows: Tensor, size: Tensor) -> None:
        """Give worlds ``rows`` cubes of edge ``size`` [k]: geom size, bounding sphere and box."""
        sim, g = self.sim, self.cube_geom
        half = (size / 2)[:, None].expand(-1, 3)
        sim.model_field("geom_size")[rows, g] = half.to(sim.qpos.dtype)
        sim.model_field("geom_rbound")[rows, g] = (half.norm(dim=1)).to(sim.qpos.dtype)
        aabb = sim.model_field("geom_aabb")
        aabb[rows, g, 3:] = half.to(aabb.dtype)

    # -- control --------------------------------------------------------------------------

    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return -np.ones(self.act_dim), np.ones(self.act_dim)

    def apply_action(self, sim: Simulator, action: Tensor) -> None:
        """target_q <- clip(target_q + action_scale * a[:7], joint limits); fingers += GRIPPER_STEP a[7] (or closed)."""
        state = self._per_world
        a = control.clip_action(action, torch)
        state["target_q"] = control.joint_targets(state["target_q"], a, self.cfg.action_scale, self.joints, torch)
        state["action_change"] = control.action_change(a, state["prev_action"], torch)
        state["prev_action"] = a
        sim.ctrl[:, self.arm_act] = state["target_q"].to(sim.ctrl.dtype)
        if self.rules.gripper:
            state["finger_target"] = control.finger_target(state["finger_target"], a, torch)
        sim.ctrl[:, self.finger_act] = state["finger_target"][:, None].expand(-1, 2).to(sim.ctrl.dtype)

    # -- observation, reward --------------------------------------------------------------

    def hand(self, sim: Simulator) -> Tensor:
        """The end effector's position [N, 3] (between the fingertips)."""
        return sim.site_xpos[:, self.ee_site].to(torch.float64)

    def cube(self, sim: Simulator) -> Tensor:
        """The cube's centre [N, 3]."""
        a = self.cube_qpos
        return sim.qpos[:, a : a + 3].to(torch.float64)

    def opening(self, sim: Simulator) -> Tensor:
        """The gap between the fingers [N], m."""
        return sim.qpos[:, self.finger_qpos].to(torch.float64).sum(dim=1)

    def arm_state(self, sim: Simulator) -> ArmState:
        """The rules' view of every world now ([N, ...] float64)."""
        state = self._per_world
        cube = self.rules.has_cube
        return ArmState(
            q=sim.qpos[:, self.arm_qpos].to(torch.float64),
            qdot=sim.qvel[:, self.arm_dof].to(torch.float64),
            opening=self.opening(sim),
            hand=self.hand(sim),
            goal=state["goal"],
            cube=self.cube(sim) if cube else None,
            cube_size=state["cube_size"] if cube else None,
        )

    def observation(self, sim: Simulator) -> Tensor:
        state = self._per_world
        s = self.arm_state(sim)
        return control.observation(
            self.rules, self.joints, s, state["target_q"], state["finger_target"], state["prev_action"], torch
        )

    def goal_distance(self, sim: Simulator) -> Tensor:
        """The distance [N] the task shrinks (reach: hand to target; push: cube to goal in the plane ...)."""
        if not self._per_world:
            return torch.zeros(sim.num_worlds, dtype=torch.float64, device=self.device)
        return self.rules.goal_distance(self.arm_state(sim), torch)

    def pre_step(self, sim: Simulator) -> Tensor:
        return self.goal_distance(sim)[:, None]

    def reward(self, sim: Simulator, before: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """r = sum_term weight_term * term; episodes end early only when the cube falls off the table."""
        state = self._per_world
        s = self.arm_state(sim)
        distance = self.rules.goal_distance(s, torch)
        now = self.rules.succeeding(s, distance)
        state["held"] = held_steps(state["held"], now, torch)
        state["distance"] = distance
        terms = reward_terms(self.rules, self.joints, s, before[:, 0], distance, now, state["action_change"], torch)
        self.last_terms = terms
        return weighted_reward(terms, self.weights), fell_off(self.rules, s, torch)

    def reward_terms(self) -> dict[str, Tensor]:
        """The last step's reward terms, name -> [N] (unweighted)."""
        return self.last_terms

    def episode_stats(self) -> dict[str, Tensor]:
        """success (0/1, judged when the episode ends) and the final goal distance (m)."""
        return {"success": self.success().to(torch.float64), "final_distance": self._per_world["distance"]}

    @classmethod
    def summary_lines(cls, result: dict[str, Any]) -> list[str]:
        """The success rate and the final distance to the goal (:func:`envs.manipulation.summary.summary_lines`)."""
        return summary.summary_lines(result)

    def success(self) -> Tensor:
        """[N] bool: the episode that ends now has succeeded (the condition held for its last hold_steps steps)."""
        return succeeded(self.rules, self._per_world["held"])

    # -- state, rendering, deployment ----------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        return {k: v.clone() for k, v in self._per_world.items()}

    def set_state(self, state: dict[str, Any]) -> None:
        if "target_q" not in state:
            return
        self._per_world = {k: state[k].to(self.device, copy=True) for k in self._per_world}

    def decorate_scene(self, scene_: mujoco.MjvScene, index: int) -> None:
        """The goal as a translucent green sphere."""
        if not self._per_world or scene_.ngeom >= scene_.maxgeom:
            return
        goal = self._per_world["goal"][index].detach().cpu().numpy()
        geom = scene_.geoms[scene_.ngeom]
        size = np.array([self.rules.marker, 0, 0])
        mujoco.mjv_initGeom(geom, mujoco.mjtGeom.mjGEOM_SPHERE, size, goal, np.eye(3).ravel(), GOAL_COLOUR)
        scene_.ngeom += 1

    def action_names(self) -> list[str]:
        """The action's entries, in order: joint target deltas (in units of action_scale), the gripper."""
        names = [f"joint{i}_target_delta" for i in range(1, scene.JOINTS + 1)]
        return [*names, "gripper"] if self.rules.gripper else names

    def observation_names(self) -> tuple[list[str], list[str]]:
        """(names, units) of the observation entries."""
        joints = [f"joint{i}" for i in range(1, scene.JOINTS + 1)]
        names = (
            [f"q_{j} - home" for j in joints]
            + [f"qdot_{j}" for j in joints]
            + [f"target_{j} - q_{j}" for j in joints]
            + ["gripper_opening", "gripper_target - gripper_opening", "hand_x", "hand_y", "hand_z"]
        )
        units = ["rad"] * 7 + ["rad/s"] * 7 + ["rad"] * 7 + ["m"] * 5
        task_names = [name.format(a=a) for name in self.rules.observed_names for a in ("x", "y", "z")]
        names += task_names + [f"previous_action[{i}]" for i in range(self.act_dim)]
        units += ["m"] * len(task_names) + [""] * self.act_dim
        return names, units

    def deployment(self) -> dict[str, Any]:
        """What the arm's controller needs (policy.json's ``franka``): joints, gains, limits, action mapping.

        ``controller``: deploy-sim's controller for it (``envs.deploy``), built from this section.
        """
        cfg, model = self.cfg, self.model
        return {
            "task": self.gym_id,
            "controller": CONTROLLER,
            "options": dataclasses.asdict(cfg),
            "robot": "Franka Emika Panda (gymnasium-robotics FrankaKitchen model)",
            "frame": "positions in the robot's base frame: x forward, y left, z up; the table's top is z = 0",
            "physics_timestep_s": float(model.opt.timestep),
            "frame_skip": self.frame_skip,
            "control_period_s": self.dt,
            "joint_names": list(scene.JOINT_NAMES),
            "home_rad": list(self.rules.start_pose),
            "home_note": "the start pose of every episode (+ U(-init_joint_noise, init_joint_noise) per joint); "
            "the observation's q - home is relative to it",
            "joint_limits_rad": scene.joint_ranges(model).tolist(),
            "pd": {
                "law": "tau_i = clip(kp_i (target_i - q_i), -torque_limit_i, torque_limit_i) - kd_i qdot_i "
                "+ gravity compensation",
                "kp_nm_per_rad": list(cfg.stiffness),
                "kd_nm_s_per_rad": list(cfg.damping),
                "torque_limit_nm": list(cfg.torque_limit),
                "armature_kg_m2": scene.ARMATURE,
            },
            "action_mapping": {
                "joints": "target_i <- clip(target_i + action_scale * clip(a_i, -1, 1), limit_low_i, limit_high_i), "
                "i = 1..7; targets start at the joint positions when the episode starts",
                "action_scale_rad": cfg.action_scale,
                "gripper": f"each finger's target opening <- clip(target + {GRIPPER_STEP} clip(a_8, -1, 1), 0, "
                f"{scene.FINGER_OPEN}) m; episodes start open; gripper_opening is the gap between the fingers "
                "(the sum of both), gripper_target the commanded gap (twice a finger's target)"
                if self.rules.gripper
                else "fingers held closed",
            },
            "end_effector": {
                "site": scene.EE_SITE,
                "offset_from_flange_m": [0.0, 0.0, scene.EE_OFFSET - 0.107],
                "note": "the grip point: between the fingers, 1.5 cm above their tips, on the hand's approach "
                "axis (link 7's z)",
            },
            "reward_weights": dict(self.weights),
            "success": self.rules.success_note,
            "entries": self.observation_names()[0],
            "previous_action": "the action of the previous control step after clipping to [-1, 1] (zeros at start)",
        }


class FrankaReach(Franka):
    """Move the hand to a random point of the target box. Success: within 2 cm when the episode ends."""

    gym_id = "policylab/FrankaReach-v0"
    rules = REACH


class FrankaPush(Franka):
    """Push the cube across the table to a goal (fingers closed); see :class:`envs.manipulation.rules.PushRules`."""

    gym_id = "policylab/FrankaPush-v0"
    rules = PUSH


class FrankaLift(Franka):
    """Grasp the cube and lift it to a random height; see :class:`envs.manipulation.rules.LiftRules`."""

    gym_id = "policylab/FrankaLift-v0"
    rules = LIFT


FRANKA_TASKS: tuple[type[NativeTask], ...] = (FrankaReach, FrankaPush, FrankaLift)
