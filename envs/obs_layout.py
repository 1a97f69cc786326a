"""Where each observation entry of a Gymnasium MuJoCo v5 task comes from in ``MjData``.

A layout is a list of segments; the observation is their concatenation. One segment:

    {"field": "qvel", "index": [0, 1, ...], "transform": "identity" | "sin" | "cos",
     "clip": [low, high] or null, "minus_index": [...] or null}

meaning ``transform(data.<field>.ravel()[index] - data.<field>.ravel()[minus_index])``,
then clipped. A robot controller (or ``app/deploy_sim.py``) rebuilds observations
from its own state estimate with nothing but this description; the export
checks the layout against the simulator's observations before writing it.

Names and units come from the model: ``qpos[j]`` entries are named after their
joint (``rootz``, ``thigh_joint``; free joints ``root.x .. root.qz``), body
quantities after their body (``torso.cvel.wx``).
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

Segment = dict[str, Any]

# Per-row components of MuJoCo's [nbody, k] arrays (cinert: inertia about the CoM frame,
# mass-weighted CoM offset, mass; cvel/cfrc_ext: rotational then translational part).
ROW_COMPONENTS: dict[str, list[tuple[str, str]]] = {
    "cinert": [
        ("Ixx", "kg*m^2"),
        ("Iyy", "kg*m^2"),
        ("Izz", "kg*m^2"),
        ("Ixy", "kg*m^2"),
        ("Ixz", "kg*m^2"),
        ("Iyz", "kg*m^2"),
        ("mx", "kg*m"),
        ("my", "kg*m"),
        ("mz", "kg*m"),
        ("m", "kg"),
    ],
    "cvel": [("wx", "rad/s"), ("wy", "rad/s"), ("wz", "rad/s"), ("vx", "m/s"), ("vy", "m/s"), ("vz", "m/s")],
    "cfrc_ext": [("tx", "N*m"), ("ty", "N*m"), ("tz", "N*m"), ("fx", "N"), ("fy", "N"), ("fz", "N")],
    "xpos": [("x", "m"), ("y", "m"), ("z", "m")],
}


def _segment(
    field: str,
    index: range | list[int],
    transform: str = "identity",
    clip: tuple[float, float] | None = None,
    minus_index: list[int] | None = None,
) -> Segment:
    return {
        "field": field,
        "index": [int(i) for i in index],
        "transform": transform,
        "clip": None if clip is None else [float(clip[0]), float(clip[1])],
        "minus_index": minus_index,
    }


def _rows(model: mujoco.MjModel, field: str, first_body: int) -> range:
    width = len(ROW_COMPONENTS[field])
    return range(first_body * width, model.nbody * width)


def _body_xyz(model: mujoco.MjModel, body: str, dims: int = 3) -> list[int]:
    b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body)
    if b < 0:
        raise KeyError(f"model has no body '{body}'")
    return [3 * b + k for k in range(dims)]


def gym_observation_layout(env: Any) -> list[Segment] | None:
    """The layout of a Gymnasium MuJoCo v5 env's default observation (None if unknown).

    ``env`` is the unwrapped environment; its options (excluded positions,
    included force terms, clip ranges) are read from it.
    """
    model = env.model
    kind = type(env).__name__
    skip = getattr(env, "observation_structure", {}).get("skipped_qpos", 0)
    qpos = range(skip, model.nq)
    if kind in ("HopperEnv", "Walker2dEnv"):
        return [_segment("qpos", qpos), _segment("qvel", range(model.nv), clip=(-10.0, 10.0))]
    if kind in ("HalfCheetahEnv", "SwimmerEnv", "InvertedPendulumEnv"):
        return [_segment("qpos", qpos), _segment("qvel", range(model.nv))]
    if kind == "AntEnv":
        layout = [_segment("qpos", qpos), _segment("qvel", range(model.nv))]
        if env._include_cfrc_ext_in_observation:
            layout.append(_segment("cfrc_ext", _rows(model, "cfrc_ext", 1), clip=env._contact_force_range))
        return layout
    if kind in ("HumanoidEnv", "HumanoidStandupEnv"):
        layout = [_segment("qpos", qpos), _segment("qvel", range(model.nv))]
        if env._include_cinert_in_observation:
            layout.append(_segment("cinert", _rows(model, "cinert", 1)))
        if env._include_cvel_in_observation:
            layout.append(_segment("cvel", _rows(model, "cvel", 1)))
        if env._include_qfrc_actuator_in_observation:
            layout.append(_segment("qfrc_actuator", range(6, model.nv)))
        if env._include_cfrc_ext_in_observation:
            layout.append(_segment("cfrc_ext", _rows(model, "cfrc_ext", 1)))
        return layout
    if kind == "InvertedDoublePendulumEnv":
        return [
            _segment("qpos", range(1)),
            _segment("qpos", range(1, model.nq), transform="sin"),
            _segment("qpos", range(1, model.nq), transform="cos"),
            _segment("qvel", range(model.nv), clip=(-10.0, 10.0)),
            _segment("qfrc_constraint", range(1), clip=(-10.0, 10.0)),
        ]
    if kind == "ReacherEnv":
        return [
            _segment("qpos", range(2), transform="cos"),
            _segment("qpos", range(2), transform="sin"),
            _segment("qpos", range(2, model.nq)),
            _segment("qvel", range(2)),
            _segment("xpos", _body_xyz(model, "fingertip", 2), minus_index=_body_xyz(model, "target", 2)),
        ]
    if kind == "PusherEnv":
        return [
            _segment("qpos", range(7)),
            _segment("qvel", range(7)),
            _segment("xpos", _body_xyz(model, "tips_arm")),
            _segment("xpos", _body_xyz(model, "object")),
            _segment("xpos", _body_xyz(model, "goal")),
        ]
    return None


def build_observation(data: Any, layout: list[Segment]) -> np.ndarray:
    """Apply a layout to a simulator state (anything with the MjData fields): [obs_dim] float64."""
    parts = []
    for seg in layout:
        flat = np.asarray(getattr(data, seg["field"]), dtype=np.float64).ravel()
        value = flat[seg["index"]]
        if seg.get("minus_index"):
            value = value - flat[seg["minus_index"]]
        if seg["transform"] == "sin":
            value = np.sin(value)
        elif seg["transform"] == "cos":
            value = np.cos(value)
        if seg.get("clip") is not None:
            value = np.clip(value, seg["clip"][0], seg["clip"][1])
        parts.append(value)
    return np.concatenate(parts) if parts else np.zeros(0)


def _joint_entries(model: mujoco.MjModel, velocity: bool) -> list[tuple[str, str]]:
    """(name, unit) for every qpos (or qvel) entry, from the joints that own them."""
    n = model.nv if velocity else model.nq
    out: list[tuple[str, str]] = [(f"{'qvel' if velocity else 'qpos'}[{i}]", "") for i in range(n)]
    free_pos = [("x", "m"), ("y", "m"), ("z", "m"), ("qw", "1"), ("qx", "1"), ("qy", "1"), ("qz", "1")]
    free_vel = [("vx", "m/s"), ("vy", "m/s"), ("vz", "m/s"), ("wx", "rad/s"), ("wy", "rad/s"), ("wz", "rad/s")]
    ball_pos = [("qw", "1"), ("qx", "1"), ("qy", "1"), ("qz", "1")]
    ball_vel = [("wx", "rad/s"), ("wy", "rad/s"), ("wz", "rad/s")]
    for j in range(model.njnt):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or f"joint{j}"
        jtype = int(model.jnt_type[j])
        start = int(model.jnt_dofadr[j] if velocity else model.jnt_qposadr[j])
        if jtype == mujoco.mjtJoint.mjJNT_FREE:
            comps = free_vel if velocity else free_pos
        elif jtype == mujoco.mjtJoint.mjJNT_BALL:
            comps = ball_vel if velocity else ball_pos
        else:
            slide = jtype == mujoco.mjtJoint.mjJNT_SLIDE
            unit = ("m/s" if velocity else "m") if slide else ("rad/s" if velocity else "rad")
            out[start] = (name, unit)
            continue
        for k, (suffix, unit) in enumerate(comps):
            out[start + k] = (f"{name}.{suffix}", unit)
    return out


def _dof_force_units(model: mujoco.MjModel) -> list[tuple[str, str]]:
    """(joint name, unit) of each generalized force entry (N for translation, N*m for rotation)."""
    out = []
    for name, unit in _joint_entries(model, velocity=True):
        out.append((name, "N" if unit == "m/s" else "N*m"))
    return out


def entry_name(model: mujoco.MjModel, field: str, flat: int) -> tuple[str, str]:
    """(name, unit) of ``data.<field>.ravel()[flat]``."""
    if field in ("qpos", "qvel"):
        name, unit = _joint_entries(model, velocity=field == "qvel")[flat]
        return (name if field == "qpos" else f"{name}.vel"), unit
    if field in ("qfrc_actuator", "qfrc_constraint"):
        name, unit = _dof_force_units(model)[flat]
        return f"{name}.{field}", unit
    if field in ROW_COMPONENTS:
        comps = ROW_COMPONENTS[field]
        body, k = divmod(flat, len(comps))
        body_name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, body) or f"body{body}"
        return f"{body_name}.{field}.{comps[k][0]}", comps[k][1]
    return f"{field}[{flat}]", ""


def layout_names(model: mujoco.MjModel, layout: list[Segment]) -> tuple[list[str], list[str]]:
    """One (name, unit) per observation entry of ``layout``: two lists of length obs_dim."""
    names, units = [], []
    for seg in layout:
        minus = seg.get("minus_index") or [None] * len(seg["index"])
        for flat, other in zip(seg["index"], minus, strict=True):
            name, unit = entry_name(model, seg["field"], flat)
            if other is not None:
                name = f"{name}-{entry_name(model, seg['field'], other)[0]}"
            if seg["transform"] != "identity":
                name, unit = f"{seg['transform']}({name})", "1"
            names.append(name)
            units.append(unit)
    return names, units


def actuator_names(model: mujoco.MjModel) -> list[str]:
    """Actuator names in control order (``ctrl[i]``)."""
    return [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, i) or f"actuator{i}" for i in range(model.nu)]
