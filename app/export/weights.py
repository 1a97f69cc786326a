"""The deterministic control law of a trained policy as plain float32 arrays.

    y   = clip((obs - mean) / std, -obs_clip, obs_clip)        (if the normalizer is enabled)
    h_k = act(W_k h_{k-1} + b_k),  mu = W_L h_{L-1} + b_L         (the mean MLP)
    u   = center + half_range * clip(mu, -1, 1)                  (bounded actuators; else u = mu)

Every exporter (ONNX, C) writes exactly this function from these arrays, in float32,
in this order of operations, so that all of them agree with PyTorch to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from policies.gaussian import GaussianPolicy
from policies.mlp import ACTIVATIONS


@dataclass(frozen=True)
class ControlLaw:
    """Arrays of the control law; shapes in the field comments (float32 unless said)."""

    normalize: bool
    obs_mean: np.ndarray  # [obs_dim]
    obs_std: np.ndarray  # [obs_dim], sqrt(var + eps) rounded to float32 as PyTorch does
    obs_clip: float
    weights: list[np.ndarray]  # W_k [out_k, in_k]
    biases: list[np.ndarray]  # b_k [out_k]
    activation: str  # tanh | relu | elu | silu
    action_bounded: np.ndarray  # [act_dim] bool
    action_center: np.ndarray  # [act_dim]
    action_half_range: np.ndarray  # [act_dim]

    @property
    def obs_dim(self) -> int:
        return int(self.weights[0].shape[1])

    @property
    def act_dim(self) -> int:
        return int(self.weights[-1].shape[0])

    @property
    def hidden_sizes(self) -> list[int]:
        return [int(w.shape[0]) for w in self.weights[:-1]]

    def action_lower(self) -> np.ndarray:
        """Per-dimension lower clip of the mean, [act_dim]: -1 where bounded, -inf elsewhere."""
        return np.where(self.action_bounded, -1.0, -np.inf).astype(np.float32)

    def action_upper(self) -> np.ndarray:
        """Per-dimension upper clip of the mean, [act_dim]: 1 where bounded, +inf elsewhere."""
        return np.where(self.action_bounded, 1.0, np.inf).astype(np.float32)


def _f32(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy().copy()


def control_law(policy: GaussianPolicy, activation: str) -> ControlLaw:
    """Extract the deterministic control law of ``policy`` (built with hidden ``activation``)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{activation}'; valid: {', '.join(ACTIVATIONS)}")
    norm = policy.normalizer
    linears = [m for m in policy.mean_net if isinstance(m, nn.Linear)]
    std = torch.sqrt(norm.var + norm.eps).to(torch.float32)  # the rounding GaussianPolicy.forward does
    return ControlLaw(
        normalize=bool(norm.enabled),
        obs_mean=_f32(norm.mean),
        obs_std=_f32(std),
        obs_clip=float(norm.clip),
        weights=[_f32(m.weight) for m in linears],
        biases=[_f32(m.bias) for m in linears],
        activation=activation,
        action_bounded=policy.action_bounded.detach().cpu().numpy().astype(bool),
        action_center=_f32(policy.action_center),
        action_half_range=_f32(policy.action_half_range),
    )


class DeployedPolicy(nn.Module):
    """obs [B, obs_dim] float32 -> actuator command [B, act_dim]: the policy's deterministic act()."""

    def __init__(self, policy: GaussianPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy.act(obs)
