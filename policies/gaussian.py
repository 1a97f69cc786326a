"""Gaussian policy (observation encoder + MLP mean) with a state-independent learnable log standard deviation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Normal

from envs.spec import ObservationSpec, is_flat
from policies.encoders import DictNormalizer, ObservationEncoder
from policies.mlp import mlp, orthogonal_init
from policies.normalizer import RunningNormalizer


class GaussianPolicy(nn.Module):
    """pi(a | s) = N(mu_theta(norm(s)), diag(exp(log_std))^2) over *normalized* actions.

    Actions live in [-1, 1] per dimension (where the actuator range is finite);
    :meth:`to_env_action` clips them and maps them to the actuators' units:
    u = center + half_range * clip(a, -1, 1). Dimensions with an infinite range
    pass through unchanged. The observation normalizer is a submodule, so a
    state dict carries everything needed for inference.

    With a dict observation ``spec`` (several fields, images), observations are
    TensorDicts [B]: per-field normalizers, then :class:`ObservationEncoder`
    (a CNN per image) feeds the MLP; ``obs_dim`` is then the encoder's feature size.
    """

    action_center: Tensor
    action_half_range: Tensor
    action_bounded: Tensor

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        action_low: np.ndarray | Sequence[float],
        action_high: np.ndarray | Sequence[float],
        hidden_sizes: Sequence[int] = (64, 64),
        activation: str = "tanh",
        init_log_std: float = 0.0,
        ortho_init: bool = True,
        normalize_obs: bool = True,
        obs_clip: float = 10.0,
        spec: ObservationSpec | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec if spec is not None and not is_flat(spec) else None
        self.encoder: nn.Module
        if self.spec is not None:
            self.normalizer: nn.Module = DictNormalizer(self.spec, clip=obs_clip, enabled=normalize_obs)
            self.encoder = ObservationEncoder(self.spec)
            obs_dim = self.encoder.out_dim
        else:
            self.normalizer = RunningNormalizer(obs_dim, clip=obs_clip, enabled=normalize_obs)
            self.encoder = nn.Identity()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.mean_net = mlp(obs_dim, hidden_sizes, act_dim, activation)
        if ortho_init:
            orthogonal_init(self.mean_net, output_gain=0.01)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(init_log_std)))
        low = torch.as_tensor(np.asarray(action_low, dtype=np.float64), dtype=torch.float32).reshape(act_dim)
        high = torch.as_tensor(np.asarray(action_high, dtype=np.float64), dtype=torch.float32).reshape(act_dim)
        bounded = torch.isfinite(low) & torch.isfinite(high)
        self.register_buffer("action_bounded", bounded)
        self.register_buffer("action_center", torch.where(bounded, (high + low) / 2, torch.zeros_like(low)))
        self.register_buffer("action_half_range", torch.where(bounded, (high - low) / 2, torch.ones_like(low)))

    def forward(self, obs: Tensor) -> Tensor:
        """obs [B, obs_dim] or a TensorDict [B] (raw) -> mean action [B, act_dim] (normalized units)."""
        return self.mean_net(self.encoder(self.normalizer(obs)))

    def distribution(self, obs: Tensor) -> Normal:
        """The action distribution for raw observations obs [B, obs_dim]."""
        mean = self(obs)
        return Normal(mean, self.log_std.exp().expand_as(mean), validate_args=False)

    def sample(self, obs: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """a = mu + sigma * eps, eps ~ N(0, I) drawn from ``generator``: [B, act_dim]."""
        return self.sample_with_log_prob(obs, generator)[0]

    def sample_with_log_prob(self, obs: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(a [B, act_dim], log pi(a|s) [B]) with a = mu + sigma * eps as in :meth:`sample`.

        log pi(a|s) = sum_i [-eps_i^2 / 2 - log sigma_i - log(2 pi) / 2], computed through
        :func:`log_prob` exactly as an update recomputes it.
        """
        mean = self(obs)
        std = self.log_std.exp().expand_as(mean)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        action = mean + std * noise
        return action, log_prob(Normal(mean, std, validate_args=False), action)

    def to_env_action(self, action: Tensor) -> Tensor:
        """Normalized action [B, act_dim] -> actuator units, clipped to the actuator range."""
        clipped = torch.where(self.action_bounded, action.clamp(-1.0, 1.0), action)
        return self.action_center + self.action_half_range * clipped

    def act(self, obs: Tensor) -> Tensor:
        """Deterministic control: obs [B, obs_dim] -> actuator command [B, act_dim]."""
        return self.to_env_action(self(obs))


def log_prob(dist: Normal, actions: Tensor) -> Tensor:
    """Joint log-density of independent dimensions: [B, act_dim] -> [B]."""
    return dist.log_prob(actions).sum(-1)


def mean_kl(old: Normal, new: Normal) -> Tensor:
    """Mean over the batch of KL(old || new) summed over action dimensions: scalar."""
    return torch.distributions.kl_divergence(old, new).sum(-1).mean()


def entropy(dist: Normal) -> Tensor:
    """Mean entropy of the batch's action distributions: scalar."""
    return dist.entropy().sum(-1).mean()
