"""State-value function V_phi(s)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from policies.mlp import mlp, orthogonal_init


class ValueFunction(nn.Module):
    """V_phi: normalized observations [B, obs_dim] -> values [B].

    It takes observations already normalized by the policy's normalizer, so the
    policy owns the one copy of the statistics.
    """

    def __init__(
        self, obs_dim: int, hidden_sizes: Sequence[int] = (64, 64), activation: str = "tanh", ortho_init: bool = True
    ) -> None:
        super().__init__()
        self.net = mlp(obs_dim, hidden_sizes, 1, activation)
        if ortho_init:
            orthogonal_init(self.net, output_gain=1.0)

    def forward(self, norm_obs: Tensor) -> Tensor:
        return self.net(norm_obs).squeeze(-1)
