"""The one place policies and value functions are built: from a config and the environment's observation spec.

A flat spec (one vector) gives the MLP policy with one running normalizer; a
dict spec gives per-field normalizers (vectors only) and an encoder (a CNN per
image) feeding the same Gaussian head. The value function gets an encoder of
its own of the same shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from envs.spec import ObservationSpec, observation_spec
from policies.config import PolicyConfig
from policies.gaussian import GaussianPolicy
from policies.value import ValueFunction


def flat_size(spec: ObservationSpec) -> int:
    """Entries of all fields together."""
    return sum(math.prod(f.shape) for f in spec.values())


def build_policy(cfg: PolicyConfig, env: Any) -> GaussianPolicy:
    """The Gaussian policy ``cfg`` describes, for ``env``'s observations and its actions in [low, high] [act_dim].

    ``env``: a VecEnv or a single Gymnasium env (:func:`envs.spec.observation_spec`). One flat
    vector: normalizer + MLP. Several fields (images): per-field normalizers, a CNN per image.
    """
    spec = observation_spec(env)
    low, high = env.action_space.low, env.action_space.high
    return GaussianPolicy(
        flat_size(spec),
        len(np.asarray(low).reshape(-1)),
        low,
        high,
        hidden_sizes=cfg.hidden_sizes,
        activation=cfg.activation,
        init_log_std=cfg.init_log_std,
        ortho_init=cfg.ortho_init,
        normalize_obs=cfg.normalize_obs,
        obs_clip=cfg.obs_clip,
        spec=spec,
    )


def make_value(
    spec: ObservationSpec, hidden_sizes: Sequence[int] = (64, 64), activation: str = "tanh", ortho_init: bool = True
) -> ValueFunction:
    """V(s) over normalized observations of ``spec`` (its own CNN per image)."""
    return ValueFunction(flat_size(spec), hidden_sizes, activation, ortho_init, spec=spec)


__all__ = ["build_policy", "flat_size", "make_value"]
