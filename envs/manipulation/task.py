"""Franka Panda tasks: reach a point, push a cube to a goal, lift a cube; many arms stepped in parallel.

The arm is the Franka Panda of ``gymnasium-robotics`` in our scene (:mod:`envs.manipulation.scene`).
Actions are what a real Franka joint position controller takes: a = [da_1..da_7 (, g)] in [-1, 1];
each joint's target moves by ``action_scale * da_i`` from its current target and is clipped to the
joint's limits, and the PD law tau_i = clip(kp_i (target_i - q_i), +-torque_limit_i) - kd_i qdot_i
(plus the robot's own gravity compensation) holds it for the control period (4 x 5 ms = 20 ms). The
gripper (lift only) takes g the same way: each finger's target opening moves by GRIPPER_STEP g per step
within [0, 0.04] m (episodes start open; a full close takes 8 steps).

Observation (positions in the base frame, m): [q - home (7), qdot (7), target - q (7), gripper
opening (1), gripper target - opening (1), hand position (3), task part, previous action]; the task
part is [target, target - hand] for reach and [cube, cube - hand, goal, goal - cube] for push and
lift. The hand's position is its grip point (between the fingers, 1.5 cm above their tips).

Rewards are sums of named terms, each weighted by ``task.franka.reward_<term>``; each term's mean per
step is logged (``reward_<term>`` in progress.csv and TensorBoard). Success ends no episode: it is
judged when the episode ends (``success`` in the evaluation, a rate over episodes).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, ClassVar

import mujoco
import numpy as np
import torch
from torch import Tensor

from envs.manipulation import scene
from envs.manipulation.config import FrankaConfig
from envs.manipulation.rules import (
    FELL_OFF,
    GOAL_X,
    GOAL_Y,
    GRASP_RADIUS,
    GRIPPER_STEP,
    LIFT_CLEARANCE,
    LIFT_HOLD_STEPS,
    PENETRATION,
    PUSH_BEHIND,
    PUSH_TOLERANCE,
    REACH_TOLERANCE,
    SOFT_LIMIT,
    START_TRIES,
)
from envs.native.simulator import Simulator
from envs.native.task import NativeTask, uniform

GOAL_COLOUR = np.array([0.2, 0.9, 0.3, 0.45], dtype=np.float32)


class Franka(NativeTask):
    """The arm on its table; subclasses say whether there is a cube, a gripper action and what is rewarded."""

    frame_skip = scene.FRAME_SKIP
    options_key = "franka"
    fields = ("site_xpos",)
    default_camera: ClassVar[str] = "front"  # videos look at the table from the front-right
    has_cube: ClassVar[bool] = True
    start_pose: ClassVar[tuple[float, ...]] = scene.PREGRASP  # episodes start here (+ noise)
    gripper: ClassVar[bool] = False  # the action has a gripper command
    terms: ClassVar[tuple[str, ...]]  # the reward's terms, each weighted by task.franka.reward_<term>
    nconmax, njmax = 24, 96

    def __init__(
        self, model: mujoco.MjModel, device: torch.device | str = "cpu", options: Any = None, evaluation: bool = False
    ) -> None:
        super().__init__(model, device, options if options is not None else FrankaConfig(), evaluation)
        cfg: FrankaConfig = self.options
        self.cfg = cfg
        dev, f64 = self.device, torch.float64
        self.arm_qpos = [int(model.joint(n).qposadr[0]) for n in scene.JOINT_NAMES]
        self.arm_dof = [int(model.joint(n).dofadr[0]) for n in scene.JOINT_NAMES]
        self.finger_qpos = [int(model.joint(n).qposadr[0]) for n in scene.FINGER_JOINTS]
        self.arm_act = [int(model.actuator(n).id) for n in scene.ARM_ACTUATORS]
        self.finger_act = [int(model.actuator(n).id) for n in scene.FINGER_ACTUATORS]
        self.ee_site = int(model.site(scene.EE_SITE).id)
        ranges = scene.joint_ranges(model)
        self.q_low = torch.tensor(ranges[:, 0], dtype=f64, device=dev)
        self.q_high = torch.tensor(ranges[:, 1], dtype=f64, device=dev)
        self.home = torch.tensor(self.start_pose, dtype=f64, device=dev)
        if self.has_cube:
            self.cube_qpos = int(model.joint("cube").qposadr[0])
            self.cube_geom = int(model.geom("cube").id)
        self.act_dim = scene.JOINTS + int(self.gripper)
        self.weights = {term: float(getattr(cfg, f"reward_{term}")) for term in self.terms}
        self._per_world: dict[str, Tensor] = {}
        self.last_terms: dict[str, Tensor] = {}

    @classmethod
    def load_model(cls, options: Any = None) -> mujoco.MjModel:
        return scene.scene_model(options, cube=cls.has_cube)

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
        """The arm at home + U(-init_joint_noise, +) (within its limits), targets at the start pose; cube and goal."""
        ids = ids.nonzero().squeeze(1) if ids.dtype == torch.bool else ids
        if not self._per_world:
            self._allocate(len(ids))
        k, dev = len(ids), self.device
        rows = ids.to(dev)
        qpos = self.init_qpos.expand(k, -1).clone()
        opening = scene.FINGER_OPEN if self.gripper else 0.0
        qpos[:, self.finger_qpos] = opening
        state = self._per_world
        state["goal"][rows] = self.draw_goal(qpos, rows, generator)  # places the cube first
        qpos[:, self.arm_qpos] = self.start_arm(qpos, rows, generator)
        state["target_q"][rows] = qpos[:, self.arm_qpos]
        state["finger_target"][rows] = opening
        state["prev_action"][rows] = 0.0
        state["action_change"][rows] = 0.0
        state["held"][rows] = 0.0
        return qpos, self.init_qvel.expand(k, -1).clone()

    def start_arm(self, qpos: Tensor, rows: Tensor, generator: torch.Generator) -> Tensor:
        """Joint positions [k, 7]: start pose + U(-n, n), clipped to the limits, touching nothing.

        A draw that puts the arm into the table or the cube is drawn again with half the noise (up to
        START_TRIES times; the start pose itself touches nothing): MuJoCo's collision detection on the
        CPU for the k new episodes only.
        """
        scale = torch.full((len(rows), 1), self.cfg.init_joint_noise, dtype=torch.float64, device=self.device)
        q = self.home.expand(len(rows), -1).clone()
        redo = torch.ones(len(rows), dtype=torch.bool, device=self.device)
        for attempt in range(START_TRIES + 1):
            if attempt == START_TRIES:
                scale[redo] = 0.0
            noise = uniform(-1.0, 1.0, (len(rows), scene.JOINTS), generator).to(self.device) * scale
            draw = torch.minimum(torch.maximum(self.home + noise, self.q_low), self.q_high)
            q[redo] = draw[redo]
            qpos[:, self.arm_qpos] = q
            redo[redo.clone()] = self.penetrating(qpos[redo], rows[redo])  # only the new draws
            if not bool(redo.any()):
                break
            scale[redo] *= 0.5
        return q

    def penetrating(self, qpos: Tensor, rows: Tensor) -> Tensor:
        """[k] bool: the arm at qpos [k, nq] (worlds ``rows`` [k]) touches the table or the cube (over PENETRATION)."""
        if self._scratch is None:
            model = copy.copy(self.model)  # its cube is resized per world below
            self._scratch = (model, mujoco.MjData(model))
        model, data = self._scratch
        size = self._per_world["cube_size"][rows].cpu().numpy() if self.has_cube else None
        out = torch.zeros(len(rows), dtype=torch.bool)
        for i, row in enumerate(qpos.cpu().numpy()):
            if size is not None:
                scene.resize_cube(model, float(size[i]))
            data.qpos[:] = row
            out[i] = scene.penetrating(model, data, PENETRATION)
        return out.to(self.device)

    _scratch: tuple[mujoco.MjModel, mujoco.MjData] | None = None

    def draw_goal(self, qpos: Tensor, rows: Tensor, generator: torch.Generator) -> Tensor:
        """Goals [k, 3] of new episodes (may also place the cube in ``qpos`` [k, nq])."""
        raise NotImplementedError

    def place_cube(self, qpos: Tensor, rows: Tensor, generator: torch.Generator) -> Tensor:
        """The cube resting upright at a random spot of its start area; sets its size per world. Returns xy [k, 2]."""
        cfg, k, dev = self.cfg, len(rows), self.device
        size = uniform(cfg.cube_size[0], cfg.cube_size[1], (k,), generator).to(dev)
        self._per_world["cube_size"][rows] = size
        if cfg.cube_size[0] != cfg.cube_size[1] and self.sim is not None:  # per-world geometry
            self._resize_cubes(rows, size)
        low = torch.tensor(cfg.cube_low, dtype=torch.float64, device=dev)
        high = torch.tensor(cfg.cube_high, dtype=torch.float64, device=dev)
        xy = low + (high - low) * uniform(0.0, 1.0, (k, 2), generator).to(dev)
        a = self.cube_qpos
        qpos[:, a : a + 2] = xy
        qpos[:, a + 2] = size / 2
        qpos[:, a + 3 : a + 7] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64, device=dev)
        return xy

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
        a = action.clamp(-1.0, 1.0)
        target = state["target_q"] + self.cfg.action_scale * a[:, : scene.JOINTS]
        state["target_q"] = torch.minimum(torch.maximum(target, self.q_low), self.q_high)
        state["action_change"] = (a - state["prev_action"]).square().sum(dim=1)
        state["prev_action"] = a
        sim.ctrl[:, self.arm_act] = state["target_q"].to(sim.ctrl.dtype)
        if self.gripper:
            state["finger_target"] = (state["finger_target"] + GRIPPER_STEP * a[:, -1]).clamp(0.0, scene.FINGER_OPEN)
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

    def task_observation(self, sim: Simulator, hand: Tensor) -> list[Tensor]:
        raise NotImplementedError

    def observation(self, sim: Simulator) -> Tensor:
        qpos, qvel = sim.qpos.to(torch.float64), sim.qvel.to(torch.float64)
        q, hand = qpos[:, self.arm_qpos], self.hand(sim)
        state = self._per_world
        opening = self.opening(sim)[:, None]
        gripper = 2 * state["finger_target"][:, None] - opening  # the gap commanded minus the gap there is
        parts = [q - self.home, qvel[:, self.arm_dof], state["target_q"] - q, opening, gripper, hand]
        return torch.cat([*parts, *self.task_observation(sim, hand), state["prev_action"]], dim=1)

    def joint_limit_excess(self, sim: Simulator) -> Tensor:
        """sum_i max(0, |q_i - mid_i| - 0.95 half_i) [N], rad."""
        q = sim.qpos[:, self.arm_qpos].to(torch.float64)
        mid, half = (self.q_high + self.q_low) / 2, (self.q_high - self.q_low) / 2
        return ((q - mid).abs() - SOFT_LIMIT * half).clamp(min=0.0).sum(dim=1)

    def goal_distance(self, sim: Simulator) -> Tensor:
        """The distance [N] the task shrinks (reach: hand to target; push: cube to goal in the plane ...)."""
        raise NotImplementedError

    def pre_step(self, sim: Simulator) -> Tensor:
        return self.goal_distance(sim)[:, None]

    def task_terms(self, sim: Simulator, distance: Tensor) -> dict[str, Tensor]:
        """The task's own reward terms [N] (besides distance, progress, action rate and joint limit)."""
        raise NotImplementedError

    def succeeding(self, sim: Simulator, distance: Tensor) -> Tensor:
        """[N] bool: the success condition holds now."""
        raise NotImplementedError

    def reward(self, sim: Simulator, before: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """r = sum_term weight_term * term; episodes end early only when the cube falls off the table."""
        distance = self.goal_distance(sim)
        now = self.succeeding(sim, distance)
        state = self._per_world
        state["held"] = torch.where(now, state["held"] + 1, torch.zeros_like(state["held"]))
        state["distance"] = distance
        terms = {
            "distance": -distance,
            "progress": 100.0 * (before[:, 0] - distance),  # cm closer per step
            "success": now.to(torch.float64),
            "action_rate": -state["action_change"],
            "joint_limit": -self.joint_limit_excess(sim),
            "posture": -(sim.qpos[:, self.arm_qpos].to(torch.float64) - self.home).norm(dim=1),
            **self.task_terms(sim, distance),
        }
        self.last_terms = {name: terms[name] for name in self.terms}
        reward = sum(self.weights[name] * terms[name] for name in self.terms)
        fell = self.cube(sim)[:, 2] < FELL_OFF if self.has_cube else torch.zeros_like(now)
        return reward, fell

    def reward_terms(self) -> dict[str, Tensor]:
        """The last step's reward terms, name -> [N] (unweighted)."""
        return self.last_terms

    def episode_stats(self) -> dict[str, Tensor]:
        """success (0/1, judged when the episode ends) and the final goal distance (m)."""
        return {"success": self.success().to(torch.float64), "final_distance": self._per_world["distance"]}

    def success(self) -> Tensor:
        """[N] bool: the episode that ends now has succeeded (the condition holds at its last step)."""
        return self._per_world["held"] >= 1

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
        size = np.array([REACH_TOLERANCE if not self.has_cube else PUSH_TOLERANCE, 0, 0])
        mujoco.mjv_initGeom(geom, mujoco.mjtGeom.mjGEOM_SPHERE, size, goal, np.eye(3).ravel(), GOAL_COLOUR)
        scene_.ngeom += 1

    def action_names(self) -> list[str]:
        """The action's entries, in order: joint target deltas (in units of action_scale), the gripper."""
        names = [f"joint{i}_target_delta" for i in range(1, scene.JOINTS + 1)]
        return [*names, "gripper"] if self.gripper else names

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
        task_names = self.task_observation_names()
        names += task_names + [f"previous_action[{i}]" for i in range(self.act_dim)]
        units += ["m"] * len(task_names) + [""] * self.act_dim
        return names, units

    def task_observation_names(self) -> list[str]:
        raise NotImplementedError

    def deployment(self) -> dict[str, Any]:
        """What the arm's controller needs (policy.json's ``franka``): joints, gains, limits, action mapping."""
        cfg, model = self.cfg, self.model
        return {
            "task": self.gym_id,
            "options": dataclasses.asdict(cfg),
            "robot": "Franka Emika Panda (gymnasium-robotics FrankaKitchen model)",
            "frame": "positions in the robot's base frame: x forward, y left, z up; the table's top is z = 0",
            "physics_timestep_s": float(model.opt.timestep),
            "frame_skip": self.frame_skip,
            "control_period_s": self.dt,
            "joint_names": list(scene.JOINT_NAMES),
            "home_rad": list(self.start_pose),
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
                if self.gripper
                else "fingers held closed",
            },
            "end_effector": {
                "site": scene.EE_SITE,
                "offset_from_flange_m": [0.0, 0.0, scene.EE_OFFSET - 0.107],
                "note": "the grip point: between the fingers, 1.5 cm above their tips, on the hand's approach "
                "axis (link 7's z)",
            },
            "reward_weights": dict(self.weights),
            "success": {
                "reach": f"hand within {REACH_TOLERANCE} m of the target at the episode's last step",
                "push": f"cube within {PUSH_TOLERANCE} m of the goal (in the table's plane) at the last step",
                "lift": f"cube more than {LIFT_CLEARANCE} m above its resting height for the last "
                f"{LIFT_HOLD_STEPS} steps",
            }[self.gym_id.split("Franka")[1].split("-")[0].lower()],
            "entries": self.observation_names()[0],
            "previous_action": "the action of the previous control step after clipping to [-1, 1] (zeros at start)",
        }


class FrankaReach(Franka):
    """Move the hand to a random point of the target box. Success: within 2 cm when the episode ends."""

    gym_id = "policylab/FrankaReach-v0"
    max_episode_steps = 100  # 2 s
    has_cube = False
    start_pose = scene.HOME
    terms = ("distance", "progress", "success", "action_rate", "joint_limit", "posture")

    def draw_goal(self, qpos: Tensor, rows: Tensor, generator: torch.Generator) -> Tensor:
        low = torch.tensor(self.cfg.target_low, dtype=torch.float64, device=self.device)
        high = torch.tensor(self.cfg.target_high, dtype=torch.float64, device=self.device)
        return low + (high - low) * uniform(0.0, 1.0, (len(rows), 3), generator).to(self.device)

    def goal_distance(self, sim: Simulator) -> Tensor:
        if not self._per_world:
            return torch.zeros(sim.num_worlds, dtype=torch.float64, device=self.device)
        return (self._per_world["goal"] - self.hand(sim)).norm(dim=1)

    def task_observation(self, sim: Simulator, hand: Tensor) -> list[Tensor]:
        goal = self._per_world["goal"]
        return [goal, goal - hand]

    def task_observation_names(self) -> list[str]:
        return ["target_x", "target_y", "target_z", "target_x - hand_x", "target_y - hand_y", "target_z - hand_z"]

    def task_terms(self, sim: Simulator, distance: Tensor) -> dict[str, Tensor]:
        return {}

    def succeeding(self, sim: Simulator, distance: Tensor) -> Tensor:
        return distance < REACH_TOLERANCE


class FrankaCubeTask(Franka):
    """Push and lift: the cube and the goal in the observation; the hand is rewarded for nearing the cube."""

    def cube_goal(self, sim: Simulator) -> tuple[Tensor, Tensor]:
        return self.cube(sim), self._per_world["goal"]

    def task_observation(self, sim: Simulator, hand: Tensor) -> list[Tensor]:
        cube, goal = self.cube_goal(sim)
        return [cube, cube - hand, goal, goal - cube]

    def task_observation_names(self) -> list[str]:
        xyz = ("x", "y", "z")
        return (
            [f"cube_{a}" for a in xyz]
            + [f"cube_{a} - hand_{a}" for a in xyz]
            + [f"goal_{a}" for a in xyz]
            + [f"goal_{a} - cube_{a}" for a in xyz]
        )


class FrankaPush(FrankaCubeTask):
    """Push the cube across the table to a goal (fingers closed). Success: within 3 cm when the episode ends.

    The hand is drawn to the cube's far side from the goal (``reach``: minus the hand's distance to the
    point half a cube + 2 cm behind the cube's centre on the goal's line, m).
    """

    gym_id = "policylab/FrankaPush-v0"
    max_episode_steps = 200  # 4 s
    terms = ("reach", "distance", "progress", "success", "action_rate", "joint_limit", "posture")

    def draw_goal(self, qpos: Tensor, rows: Tensor, generator: torch.Generator) -> Tensor:
        cfg, k = self.cfg, len(rows)
        xy = self.place_cube(qpos, rows, generator)
        r = uniform(cfg.goal_distance[0], cfg.goal_distance[1], (k,), generator).to(self.device)
        angle = uniform(-np.pi, np.pi, (k,), generator).to(self.device)
        goal_xy = xy + r[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
        goal_xy[:, 0] = goal_xy[:, 0].clamp(*GOAL_X)  # stays on the table, in reach
        goal_xy[:, 1] = goal_xy[:, 1].clamp(*GOAL_Y)
        return torch.cat([goal_xy, (self._per_world["cube_size"][rows] / 2)[:, None]], dim=1)

    def goal_distance(self, sim: Simulator) -> Tensor:
        if not self._per_world:
            return torch.zeros(sim.num_worlds, dtype=torch.float64, device=self.device)
        cube, goal = self.cube_goal(sim)
        return (goal[:, :2] - cube[:, :2]).norm(dim=1)

    def task_terms(self, sim: Simulator, distance: Tensor) -> dict[str, Tensor]:
        cube, goal = self.cube_goal(sim)
        direction = goal[:, :2] - cube[:, :2]
        direction = direction / direction.norm(dim=1, keepdim=True).clamp(min=1e-6)
        behind = cube.clone()
        behind[:, :2] -= direction * (self._per_world["cube_size"][:, None] / 2 + PUSH_BEHIND)
        return {"reach": -(self.hand(sim) - behind).norm(dim=1)}

    def succeeding(self, sim: Simulator, distance: Tensor) -> Tensor:
        return distance < PUSH_TOLERANCE


class FrankaLift(FrankaCubeTask):
    """Grasp the cube and lift it to a random height above where it lay. Success: the cube more than 5 cm
    above its resting height for the last second (50 steps) of the episode.

    Terms: ``reach`` (minus the hand's distance to the cube, m), ``grasp`` (the cube within 2 cm of the
    grip point and the fingers closed on it: their gap within [0.8, 1.2] x the cube's edge), ``lift`` (the cube's
    rise, clipped at the goal's, per 10 cm), ``distance`` (-|cube - goal|), ``progress``, ``success``.
    """

    gym_id = "policylab/FrankaLift-v0"
    max_episode_steps = 200  # 4 s
    gripper = True
    terms = ("reach", "grasp", "lift", "distance", "progress", "success", "action_rate", "joint_limit", "posture")

    def draw_goal(self, qpos: Tensor, rows: Tensor, generator: torch.Generator) -> Tensor:
        cfg, k = self.cfg, len(rows)
        xy = self.place_cube(qpos, rows, generator)
        rise = uniform(cfg.lift_height[0], cfg.lift_height[1], (k,), generator).to(self.device)
        return torch.cat([xy, (self._per_world["cube_size"][rows] / 2 + rise)[:, None]], dim=1)

    def goal_distance(self, sim: Simulator) -> Tensor:
        if not self._per_world:
            return torch.zeros(sim.num_worlds, dtype=torch.float64, device=self.device)
        cube, goal = self.cube_goal(sim)
        return (goal - cube).norm(dim=1)

    def rise(self, sim: Simulator) -> Tensor:
        """How far [N] the cube's centre is above its resting height, m."""
        return self.cube(sim)[:, 2] - self._per_world["cube_size"] / 2

    def task_terms(self, sim: Simulator, distance: Tensor) -> dict[str, Tensor]:
        cube, goal = self.cube_goal(sim)
        size = self._per_world["cube_size"]
        near = (cube - self.hand(sim)).norm(dim=1)
        gap = self.opening(sim)
        grasp = (near < GRASP_RADIUS) & (gap > 0.8 * size) & (gap < 1.2 * size)
        top = goal[:, 2] - size / 2
        return {
            "reach": -near,
            "grasp": grasp.to(torch.float64),
            "lift": 10.0 * torch.minimum(self.rise(sim).clamp(min=0.0), top),
        }

    def succeeding(self, sim: Simulator, distance: Tensor) -> Tensor:
        return self.rise(sim) > LIFT_CLEARANCE

    def success(self) -> Tensor:
        return self._per_world["held"] >= LIFT_HOLD_STEPS


FRANKA_TASKS: tuple[type[NativeTask], ...] = (FrankaReach, FrankaPush, FrankaLift)
