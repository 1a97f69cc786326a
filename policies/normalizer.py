"""Running mean/variance statistics and the observation normalizer built on them."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def combine_moments(
    mean: Tensor, var: Tensor, count: Tensor, batch_mean: Tensor, batch_var: Tensor, batch_count: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Merge running moments with a batch's (Chan et al. parallel algorithm).

    delta = mb - m,  n' = n + nb,  m' = m + delta nb / n',
    M2' = var n + var_b nb + delta^2 n nb / n',  var' = M2' / n'.
    Shapes: mean, var, batch_mean, batch_var [D]; count [] (all float64).
    """
    total = count + batch_count
    delta = batch_mean - mean
    new_mean = mean + delta * (batch_count / total)
    m2 = var * count + batch_var * batch_count + delta.square() * (count * batch_count / total)
    return new_mean, m2 / total, total


class RunningNormalizer(nn.Module):
    """y = clip((x - mean) / sqrt(var + eps), -clip, clip), statistics in float64 buffers.

    Part of the policy: saved, restored and exported with it. ``update`` is called
    by the trainer once per rollout; between updates the statistics are frozen.
    With ``enabled=False`` it is the identity (the buffers stay, unused).
    """

    mean: Tensor
    var: Tensor
    count: Tensor

    def __init__(self, dim: int, clip: float = 10.0, eps: float = 1e-8, enabled: bool = True) -> None:
        super().__init__()
        self.dim, self.clip, self.eps, self.enabled = dim, clip, eps, enabled
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        """x [..., D] -> normalized [..., D] in x's dtype."""
        if not self.enabled:
            return x
        std = torch.sqrt(self.var + self.eps).to(x.dtype)
        return torch.clamp((x - self.mean.to(x.dtype)) / std, -self.clip, self.clip)

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        """Fold a batch x [B, D] into the statistics; rows with a non-finite entry are skipped."""
        if not self.enabled:
            return
        x = x.reshape(-1, self.dim).to(torch.float64)
        x = x[torch.isfinite(x).all(dim=1)]
        if x.shape[0] == 0:
            return
        batch_var = x.var(dim=0, unbiased=False)
        mean, var, count = combine_moments(self.mean, self.var, self.count, x.mean(dim=0), batch_var, x.shape[0])
        self.mean.copy_(mean)
        self.var.copy_(var)
        self.count.copy_(count)
