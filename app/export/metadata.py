"""policy.json: everything a robot controller needs to feed the policy and read it."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from app.checkpoint import code_revision
from app.config import Config, config_to_dict
from app.export.weights import ControlLaw
from envs.obs_layout import actuator_names, build_observation, gym_observation_layout, layout_names

FORMAT = "policylab-policy/1"


def verified_layout(env: Any, steps: int = 200, seed: int = 0) -> list[dict[str, Any]] | None:
    """The env's observation layout if rebuilding observations from MjData reproduces them.

    ``env`` is a single Gymnasium env; it is stepped with random actions for ``steps`` steps.
    Returns None when the task's layout is unknown or does not reproduce the observations.
    """
    base = env.unwrapped
    if not hasattr(base, "data"):
        return None
    layout = gym_observation_layout(base)
    if layout is None:
        return None
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(steps):
        if not np.allclose(build_observation(base.data, layout), obs, rtol=0.0, atol=1e-9):
            return None
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    return layout


def policy_metadata(
    cfg: Config,
    law: ControlLaw | None,
    env: Any,
    dt: float,
    max_episode_steps: int | None,
    ckpt: dict[str, Any],
    evaluation: dict[str, Any],
    policy: Any = None,
) -> dict[str, Any]:
    """The contents of policy.json (also stored in the ONNX metadata_props).

    ``law`` is None for a policy over several observation fields (``policy`` then gives the action
    scaling; the export adds its fields, normalizers and inputs).
    """
    if law is None:
        return _fields_policy_metadata(cfg, env, dt, max_episode_steps, ckpt, evaluation, policy)
    base = env.unwrapped
    task = getattr(getattr(base, "vec", None), "task", None)  # a native task of our own describes itself
    model = getattr(base, "model", None) or getattr(task, "model", None)
    layout = verified_layout(env)
    driving = task.deployment() if hasattr(task, "deployment") else None
    if layout is not None:
        names, units = layout_names(model, layout)
    elif hasattr(task, "observation_names"):
        names, units = task.observation_names()
    else:
        names = list(getattr(base, "observation_names", None) or [f"obs[{i}]" for i in range(law.obs_dim)])
        units = [""] * law.obs_dim
    space = env.action_space
    low, high = np.asarray(space.low, dtype=np.float64), np.asarray(space.high, dtype=np.float64)
    act_names = actuator_names(model) if model is not None and model.nu == law.act_dim else None
    if driving is not None:
        act_names = ["steering_angle", "speed"][: law.act_dim]
    runner = ckpt.get("runner", {})
    return {
        "format": FORMAT,
        "task": cfg.task.name,
        "env_id": cfg.task.id,
        "env_kwargs": dict(cfg.task.env_kwargs),
        "max_episode_steps": max_episode_steps,
        "control_period_s": dt,
        "observation": {
            "size": law.obs_dim,
            "names": names,
            "units": units,
            "layout": layout,
            "layout_note": "obs = concat(transform(data.<field>.ravel()[index] - data.<field>.ravel()[minus_index]))"
            " clipped to clip, segment by segment; null when the task's layout is not known",
            **({"driving": driving} if driving is not None else {}),
        },
        "action": {
            "size": law.act_dim,
            "names": act_names or [f"action[{i}]" for i in range(law.act_dim)],
            "low": [float(v) for v in low],
            "high": [float(v) for v in high],
            "scaling": "u = center + half_range * clip(mean, -1, 1) where bounded, u = mean elsewhere",
            "center": law.action_center.tolist(),
            "half_range": law.action_half_range.tolist(),
            "bounded": law.action_bounded.tolist(),
        },
        "normalizer": {
            "enabled": law.normalize,
            "formula": "clip((obs - mean) / std, -clip, clip)",
            "mean": law.obs_mean.tolist(),
            "std": law.obs_std.tolist(),
            "clip": law.obs_clip,
        },
        "network": {
            "hidden_sizes": law.hidden_sizes,
            "activation": law.activation,
            "output": "deterministic mean action (Gaussian mean), then the action scaling above",
        },
        "io": {"input": "obs", "input_shape": ["batch", law.obs_dim], "output": "action", "dtype": "float32"},
        "env_steps": int(runner.get("env_steps", 0)),
        "iteration": int(runner.get("iteration", 0)),
        "evaluation": evaluation,
        "training_config": config_to_dict(cfg),
        "code_revision": code_revision(),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _fields_policy_metadata(
    cfg: Config,
    env: Any,
    dt: float,
    max_episode_steps: int | None,
    ckpt: dict[str, Any],
    evaluation: dict[str, Any],
    policy: Any,
) -> dict[str, Any]:
    """policy.json's common part for a dict-observation policy (no single observation vector)."""
    task = getattr(getattr(env.unwrapped, "vec", None), "task", None)
    space = env.action_space
    low, high = np.asarray(space.low, dtype=np.float64), np.asarray(space.high, dtype=np.float64)
    driving = task.deployment() if hasattr(task, "deployment") else None
    runner = ckpt.get("runner", {})
    act_dim = policy.act_dim
    return {
        "format": FORMAT,
        "task": cfg.task.name,
        "env_id": cfg.task.id,
        "env_kwargs": dict(cfg.task.env_kwargs),
        "max_episode_steps": max_episode_steps,
        "control_period_s": dt,
        "observation": {"names": list(policy.spec), **({"driving": driving} if driving is not None else {})},
        "action": {
            "size": act_dim,
            "names": (["steering_angle", "speed"] if driving is not None else [f"action[{i}]" for i in range(act_dim)])[
                :act_dim
            ],
            "low": [float(v) for v in low],
            "high": [float(v) for v in high],
            "scaling": "u = center + half_range * clip(mean, -1, 1) where bounded, u = mean elsewhere",
            "center": policy.action_center.tolist(),
            "half_range": policy.action_half_range.tolist(),
            "bounded": policy.action_bounded.tolist(),
        },
        "env_steps": int(runner.get("env_steps", 0)),
        "iteration": int(runner.get("iteration", 0)),
        "evaluation": evaluation,
        "training_config": config_to_dict(cfg),
        "code_revision": code_revision(),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
