"""policy.json: everything a robot controller needs to feed the policy and read it."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from app.checkpoint import code_revision
from app.config import Config, config_to_dict
from app.export.weights import ControlLaw
from envs.obs_layout import actuator_names, build_observation, gym_observation_layout, layout_names
from envs.spec import spec_to_dict

FORMAT = "policylab-policy/1"
GYM_CONTROLLER = "envs.gym_deploy:GymController"  # a Gymnasium task's controller: its own env, our layout


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

    ``law`` is the MLP control law of a policy over one observation vector; it is None for a
    policy over several observation fields, whose fields, per-field normalizers, encoder and
    inputs come from ``policy`` instead.
    """
    base = env.unwrapped
    task = getattr(getattr(base, "vec", None), "task", None)  # a native task of our own describes itself
    model = getattr(base, "model", None) or getattr(task, "model", None)
    # a task of our own says how its observation is built and its action applied (driving, franka),
    # and names the controller that runs it; a Gymnasium task is run by its own env
    deployment = dict(task.deployment()) if hasattr(task, "deployment") else None
    controller = deployment.pop("controller", None) if deployment is not None else GYM_CONTROLLER
    act_dim = policy.act_dim if law is None else law.act_dim
    if hasattr(task, "action_names"):
        act_names = task.action_names()[:act_dim]
    elif model is not None and model.nu == act_dim:
        act_names = actuator_names(model)
    else:
        act_names = [f"action[{i}]" for i in range(act_dim)]
    scaling = policy if law is None else law  # both carry action_center, action_half_range, action_bounded
    sections = _fields_sections(policy) if law is None else _vector_sections(law, env, model, task)
    if deployment is not None:
        sections["observation"][task.options_key] = deployment
    space = env.action_space
    runner = ckpt.get("runner", {})
    return {
        "format": FORMAT,
        "task": cfg.task.name,
        "env_id": cfg.task.id,
        "env_kwargs": dict(cfg.task.env_kwargs),
        "max_episode_steps": max_episode_steps,
        "control_period_s": dt,
        "observation": sections.pop("observation"),
        "action": {
            "size": act_dim,
            "names": act_names,
            "low": [float(v) for v in np.asarray(space.low, dtype=np.float64)],
            "high": [float(v) for v in np.asarray(space.high, dtype=np.float64)],
            "scaling": "u = center + half_range * clip(mean, -1, 1) where bounded, u = mean elsewhere",
            "center": scaling.action_center.tolist(),
            "half_range": scaling.action_half_range.tolist(),
            "bounded": scaling.action_bounded.tolist(),
        },
        **sections,
        "deployment": {
            "controller": controller,
            "note": "module:Class of the controller deploy-sim runs this policy with (envs/deploy.py's contract)",
        },
        "env_steps": int(runner.get("env_steps", 0)),
        "iteration": int(runner.get("iteration", 0)),
        "evaluation": evaluation,
        "training_config": config_to_dict(cfg),
        "code_revision": code_revision(),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _vector_sections(law: ControlLaw, env: Any, model: Any, task: Any) -> dict[str, Any]:
    """observation, normalizer, network and io of a policy over one observation vector."""
    layout = verified_layout(env)
    if layout is not None:
        names, units = layout_names(model, layout)
    elif hasattr(task, "observation_names"):
        names, units = task.observation_names()
    else:
        names = list(getattr(env.unwrapped, "observation_names", None) or [f"obs[{i}]" for i in range(law.obs_dim)])
        units = [""] * law.obs_dim
    return {
        "observation": {
            "size": law.obs_dim,
            "names": names,
            "units": units,
            "layout": layout,
            "layout_note": "obs = concat(transform(data.<field>.ravel()[index] - data.<field>.ravel()[minus_index]))"
            " clipped to clip, segment by segment; null when the task's layout is not known",
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
    }


def _fields_sections(policy: Any) -> dict[str, Any]:
    """observation, normalizer, network, io and why there is no policy.c, for a policy over several fields."""
    from app.export import dict_policy

    spec = policy.spec
    linears = [m for m in policy.mean_net if hasattr(m, "out_features")]
    return {
        "observation": {"size": None, "names": list(spec), "layout": None, "fields": spec_to_dict(spec)},
        "normalizer": dict_policy.normalizer_description(policy),
        "network": {
            "encoder": "per image: x / 255, Conv 5x5/2 (16), Conv 3x3/2 (32), Conv 3x3/2 (32), ReLU, Linear (128); "
            "vectors as they are; concatenated in input order",
            "hidden_sizes": [m.out_features for m in linears[:-1]],
            "output": "deterministic mean action (Gaussian mean), then the action scaling above",
        },
        "io": dict_policy.io_description(spec, policy.act_dim),
        "c_export": dict_policy.c_refusal(spec),
    }
