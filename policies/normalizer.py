"""Running mean/variance statistics and the observation normalizer built on them."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

# x [n, D] -> (mean [D], biased variance [D], count) of a batch: this process's rows, or (data-parallel
# training) every rank's rows together, the moments of their concatenation
Moments = Callable[[Tensor], tuple[Tensor, Tensor, int]]


def local_moments(x: Tensor) -> tuple[Tensor, Tensor, int]:
    """Mean [D], biased variance [D] and row count of x [n, D]."""
    return x.mean(dim=0), x.var(dim=0, unbiased=False), x.shape[0]


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
    def update(self, x: Tensor, moments: Moments | None = None) -> None:
        """Fold a batch x [B, D] into the statistics; rows with a non-finite entry are skipped.

        ``moments`` gives the batch's moments (default: this process's rows); data-parallel training
        passes the ranks' merged moments, so every rank folds in the same statistics of all ranks' rows.
        """
        if not self.enabled:
            return
        x = x.reshape(-1, self.dim).to(torch.float64)
        x = x[torch.isfinite(x).all(dim=1)]
        if moments is None:
            if x.shape[0] == 0:
                return
            moments = local_moments
        batch_mean, batch_var, batch_count = moments(x)
        if batch_count == 0:
            return
        mean, var, count = combine_moments(self.mean, self.var, self.count, batch_mean, batch_var, batch_count)
        self.mean.copy_(mean)
        self.var.copy_(var)
        self.count.copy_(count)
