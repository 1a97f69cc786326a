"""State-value function V_phi(s)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from envs.spec import ObservationSpec, is_flat
from policies.encoders import ObservationEncoder
from policies.mlp import mlp, orthogonal_init


class ValueFunction(nn.Module):
    """V_phi: normalized observations [B, obs_dim] -> values [B].

    It takes observations already normalized by the policy's normalizer, so the
    policy owns the one copy of the statistics. With a dict observation ``spec``
    it has an encoder of its own (its own CNN per image) before the MLP.
    """

    def __init__(
        self,
        obs_dim: int,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: str = "tanh",
        ortho_init: bool = True,
        spec: ObservationSpec | None = None,
    ) -> None:
        super().__init__()
        self.encoder: nn.Module = nn.Identity()
        if spec is not None and not is_flat(spec):
            self.encoder = ObservationEncoder(spec)
            obs_dim = self.encoder.out_dim
        self.net = mlp(obs_dim, hidden_sizes, 1, activation)
        if ortho_init:
            orthogonal_init(self.net, output_gain=1.0)

    def forward(self, norm_obs: Tensor) -> Tensor:
        """Normalized observations [B, obs_dim] (or a TensorDict [B]) -> values [B]."""
        return self.net(self.encoder(norm_obs)).squeeze(-1)
