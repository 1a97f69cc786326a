"""The policy's configuration: the ``policy`` section of a run's config, owned by this layer.

A typed, frozen dataclass; ``app.config`` composes it into the run's configuration
and checks it with the same rules as its own sections (each field's type and its
``metadata``: ``help``, and the range ``low``/``high`` with ``low_open``/``high_open``).
:func:`policies.factory.build_policy` builds the network it describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from envs.fields import param


@dataclass(frozen=True)
class PolicyConfig:
    hidden_sizes: tuple[int, ...] = param((64, 64), "hidden layer widths of the mean MLP", low=1)
    activation: Literal["tanh", "relu", "elu", "silu"] = param("tanh", "hidden activation")
    init_log_std: float = param(0.0, "initial log standard deviation (normalized action units)", low=-5.0, high=2.0)
    ortho_init: bool = param(True, "orthogonal initialization (gain sqrt 2, output layer 0.01)")
    normalize_obs: bool = param(True, "running mean/std observation normalization inside the policy")
    obs_clip: float = param(
        10.0, "normalized observations are clipped to [-obs_clip, obs_clip]", low=0.0, low_open=True
    )


__all__ = ["PolicyConfig"]
