"""The one place policies and value functions are built: from the environment's observation spec.

A flat spec (one vector) gives the MLP policy with one running normalizer; a
dict spec gives per-field normalizers (vectors only) and an encoder (a CNN per
image) feeding the same Gaussian head. The value function gets an encoder of
its own of the same shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from envs.spec import ObservationSpec
from policies.gaussian import GaussianPolicy
from policies.value import ValueFunction


def flat_size(spec: ObservationSpec) -> int:
    """Entries of all fields together."""
    return sum(math.prod(f.shape) for f in spec.values())


def make_policy(
    spec: ObservationSpec,
    action_low: np.ndarray | Sequence[float],
    action_high: np.ndarray | Sequence[float],
    *,
    hidden_sizes: Sequence[int] = (64, 64),
    activation: str = "tanh",
    init_log_std: float = 0.0,
    ortho_init: bool = True,
    normalize_obs: bool = True,
    obs_clip: float = 10.0,
) -> GaussianPolicy:
    """The Gaussian policy for observations of ``spec`` and actions in [low, high]."""
    return GaussianPolicy(
        flat_size(spec),
        len(np.asarray(action_low).reshape(-1)),
        action_low,
        action_high,
        hidden_sizes=hidden_sizes,
        activation=activation,
        init_log_std=init_log_std,
        ortho_init=ortho_init,
        normalize_obs=normalize_obs,
        obs_clip=obs_clip,
        spec=spec,
    )


def make_value(
    spec: ObservationSpec, hidden_sizes: Sequence[int] = (64, 64), activation: str = "tanh", ortho_init: bool = True
) -> ValueFunction:
    """V(s) over normalized observations of ``spec`` (its own CNN per image)."""
    return ValueFunction(flat_size(spec), hidden_sizes, activation, ortho_init, spec=spec)


__all__ = ["flat_size", "make_policy", "make_value"]
