"""The Franka Panda scene: the arm from the installed ``gymnasium-robotics`` package, on our table, with a cube.

The arm (kinematics, masses, collision meshes, joint limits from Franka's datasheet) is the model of
Gymnasium-Robotics' FrankaKitchen (``envs/assets/kitchen_franka/franka_assets``), read from the installed
package at run time and never copied. :func:`scene_model` includes its files into an MJCF of our own
with ``mujoco.MjSpec`` and then sets what a real Franka controller sets: gravity compensation on the
links (the robot does this itself), the PD gains and torque limits of the config (the position
actuators' kp, the joints' damping as kd), and a rotor inertia (armature) per joint.

Frames: the robot's base is the world origin, x forward, z up; the table's top is the plane z = 0.
Imports only numpy and mujoco (deploy-sim builds the same scene without torch).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from envs.errors import TaskError
from envs.manipulation.config import JOINTS, FrankaConfig

JOINT_NAMES = tuple(f"robot:panda0_joint{i}" for i in range(1, JOINTS + 1))
FINGER_JOINTS = ("robot:panda0_finger_joint1", "robot:panda0_finger_joint2")
ARM_ACTUATORS = tuple(f"panda0_joint{i}" for i in range(1, JOINTS + 1))
FINGER_ACTUATORS = ("r_gripper_finger_joint", "l_gripper_finger_joint")
# The hand's point: between the fingers, 1.5 cm above their tips (0.24 m from link 7's origin, 0.133 m past
# the flange, on the approach axis): where a grasped cube's centre sits. Added to the package's link 7
# (whose own "end_effector" site is 3 cm higher, between the upper finger pads).
EE_SITE = "grip"
EE_OFFSET = 0.24  # m, from link 7's origin along its z axis
# Start poses (solved once by inverse kinematics on this model; tests/envs/test_franka.py checks where they
# put the hand): the hand pointing down, its fingers closing along the base's y axis (across a cube lying
# square on the table). HOME: the grip point 0.27 m above the table at x = 0.5 m (reach); PREGRASP: 0.12 m
# above the middle of the cube's start area (push, lift), the fingertips 0.1 m above the table.
HOME = (0.0, -0.1096, 0.0, -2.2733, 0.0, 0.5936, 0.0)
PREGRASP = (0.0, 0.211, 0.0, -2.311, 0.0, 0.952, 0.0)
ARMATURE = 0.1  # kg m^2, reflected rotor inertia per arm joint
FINGER_OPEN = 0.04  # m per finger
TIMESTEP = 0.005  # s, physics
FRAME_SKIP = 4  # physics steps per control step: 50 Hz control
TABLE_HALF = (0.5, 0.6, 0.02)  # m, the table's half sizes (its top at z = 0)
TABLE_CENTRE_X = 0.4
CUBE_COLOUR = (0.85, 0.25, 0.2, 1.0)


class MissingAssets(TaskError):
    """gymnasium-robotics, which holds the arm's model, is not installed."""


def franka_assets() -> Path:
    """The folder of the Franka Panda model inside the installed gymnasium-robotics package."""
    found = importlib.util.find_spec("gymnasium_robotics")
    if found is None or found.origin is None:
        raise MissingAssets(
            "the Franka tasks read the arm's model from the gymnasium-robotics package: pip install gymnasium-robotics"
        )
    folder = Path(found.origin).parent / "envs" / "assets" / "kitchen_franka" / "franka_assets"
    if not (folder / "chain.xml").is_file():
        raise MissingAssets(f"gymnasium-robotics has no Franka Panda model at {folder} (version 1.4 expected)")
    return folder


def scene_xml(assets: Path, cube: bool) -> str:
    """Our MJCF around the package's files: table, lights, camera, the arm on the table, and the cube."""
    cube_body = (
        '<body name="cube" pos="0.5 0 0.025"><freejoint name="cube"/>'
        f'<geom name="cube" type="box" size="0.025 0.025 0.025" mass="0.1" rgba="{" ".join(map(str, CUBE_COLOUR))}"'
        ' friction="1 0.005 0.0001" condim="4"/></body>'
        if cube
        else ""
    )
    tx, (hx, hy, hz) = TABLE_CENTRE_X, TABLE_HALF
    return f"""<mujoco model="franka_scene">
  <include file="{assets}/assets.xml"/>
  <compiler angle="radian" meshdir="{assets}/meshes"/>
  <option timestep="{TIMESTEP}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual><global offwidth="1280" offheight="960"/><quality shadowsize="2048"/></visual>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1=".25 .27 .3" rgb2=".3 .32 .35" width="256" height="256"/>
    <material name="grid" texture="grid" texrepeat="8 8"/>
  </asset>
  <worldbody>
    <light pos="0.4 -0.6 1.8" dir="0 0.3 -1" directional="true"/>
    <geom name="floor" type="plane" pos="0 0 -0.75" size="3 3 0.1" material="grid" contype="0" conaffinity="0"/>
    <geom name="table" type="box" pos="{tx} 0 {-hz}" size="{hx} {hy} {hz}" rgba=".55 .45 .35 1"/>
    <camera name="front" pos="1.45 -0.9 0.75" xyaxes="0.53 0.85 0 -0.3 0.19 0.94"/>
    <body name="base" pos="0 0 0">
      <include file="{assets}/chain.xml"/>
    </body>
    {cube_body}
  </worldbody>
  <include file="{assets}/actuator.xml"/>
</mujoco>"""


def scene_spec(cfg: FrankaConfig | None = None, cube: bool = True) -> mujoco.MjSpec:
    """The scene as an MjSpec, with the controller of ``cfg`` (gains, limits) written into it."""
    cfg = cfg or FrankaConfig()
    spec = mujoco.MjSpec.from_string(scene_xml(franka_assets(), cube))
    # Collisions: the arm's links touch the table and the cube, not each other (contype 1, conaffinity 0);
    # the table and the cube touch everything.
    for body in spec.bodies:
        if body.name.startswith("panda0_"):
            body.gravcomp = 1.0  # Franka's controller compensates gravity itself
    spec.body("panda0_link7").add_site(name=EE_SITE, pos=[0.0, 0.0, EE_OFFSET], size=[0.005, 0, 0], group=4)
    for geom in spec.geoms:
        if geom.contype and geom.name not in ("table", "cube"):
            geom.conaffinity = 0
    if cube:  # its mass, and its friction when fixed (a range is drawn per episode over this)
        spec.geom("cube").mass = float(cfg.cube_mass)
        spec.geom("cube").friction[0] = float(cfg.cube_friction[0])
    for i, name in enumerate(JOINT_NAMES):
        joint = spec.joint(name)
        joint.damping = [float(cfg.damping[i]), 0.0, 0.0]  # (linear, higher-order terms)
        joint.armature = ARMATURE
        act = spec.actuator(ARM_ACTUATORS[i])
        kp = float(cfg.stiffness[i])
        act.gainprm[0] = kp
        act.biasprm[:3] = [0.0, -kp, 0.0]
        act.forcerange = [-float(cfg.torque_limit[i]), float(cfg.torque_limit[i])]
        act.ctrlrange = joint.range  # targets within the joint's limits
    return spec


def scene_model(cfg: FrankaConfig | None = None, cube: bool = True) -> mujoco.MjModel:
    """The compiled scene (with or without the cube)."""
    return scene_spec(cfg, cube).compile()


def resize_cube(model: mujoco.MjModel, size: float) -> None:
    """Give ``model``'s cube edge ``size`` (m): geom size, bounding sphere and box."""
    geom, half = model.geom("cube").id, size / 2
    model.geom_size[geom] = half
    model.geom_rbound[geom] = float(np.linalg.norm(model.geom_size[geom]))
    model.geom_aabb[geom, 3:] = half


def penetrating(model: mujoco.MjModel, data: mujoco.MjData, depth: float) -> bool:
    """Whether ``data.qpos`` puts two geoms more than ``depth`` (m) into each other (runs mj_fwdPosition)."""
    mujoco.mj_fwdPosition(model, data)
    return any(data.contact[c].dist < -depth for c in range(data.ncon))


def joint_ranges(model: mujoco.MjModel) -> np.ndarray:
    """[7, 2] (low, high) of the arm's joints, rad."""
    return np.array([model.joint(name).range for name in JOINT_NAMES], dtype=np.float64)


@dataclass(frozen=True)
class Addresses:
    """Where the arm and the cube live in a scene model: qpos and dof addresses, actuator ids, the grip site."""

    arm_qpos: list[int]  # [7] qpos addresses of the arm's joints
    arm_dof: list[int]  # [7] dof (qvel) addresses of the arm's joints
    finger_qpos: list[int]  # [2]
    arm_act: list[int]  # [7] actuator ids
    finger_act: list[int]  # [2]
    site: int  # the grip site's id
    cube_qpos: int  # the cube's free joint's first qpos address; -1 in a scene without the cube

    @classmethod
    def of(cls, model: mujoco.MjModel) -> Addresses:
        cube = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "cube")
        return cls(
            arm_qpos=[int(model.joint(n).qposadr[0]) for n in JOINT_NAMES],
            arm_dof=[int(model.joint(n).dofadr[0]) for n in JOINT_NAMES],
            finger_qpos=[int(model.joint(n).qposadr[0]) for n in FINGER_JOINTS],
            arm_act=[int(model.actuator(n).id) for n in ARM_ACTUATORS],
            finger_act=[int(model.actuator(n).id) for n in FINGER_ACTUATORS],
            site=int(model.site(EE_SITE).id),
            cube_qpos=int(model.jnt_qposadr[cube]) if cube >= 0 else -1,
        )


__all__ = [
    "ARM_ACTUATORS",
    "EE_SITE",
    "FINGER_ACTUATORS",
    "FINGER_JOINTS",
    "FRAME_SKIP",
    "HOME",
    "JOINT_NAMES",
    "PREGRASP",
    "Addresses",
    "MissingAssets",
    "franka_assets",
    "joint_ranges",
    "penetrating",
    "resize_cube",
    "scene_model",
    "scene_spec",
]
