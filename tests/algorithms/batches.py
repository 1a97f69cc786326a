"""Building a :class:`Batch` for algorithm tests from flat tensors."""

from __future__ import annotations

import torch
from torch import Tensor

from app.algorithms.base import Batch


def flat_batch(
    obs: Tensor,
    actions: Tensor,
    advantages: Tensor,
    returns: Tensor | None = None,
    values: Tensor | None = None,
    log_probs: Tensor | None = None,
    time_shape: tuple[int, int] | None = None,
    rewards: Tensor | None = None,
    terminated: Tensor | None = None,
    truncated: Tensor | None = None,
    next_values: Tensor | None = None,
    gamma: float = 0.99,
) -> Batch:
    """A batch of B rows; fields not given are zeros / False (log_probs: zeros, so ratios are pi itself)."""
    b = obs.shape[0]
    zeros = torch.zeros(b)
    false = torch.zeros(b, dtype=torch.bool)
    return Batch(
        obs=obs,
        actions=actions,
        log_probs=zeros if log_probs is None else log_probs,
        advantages=advantages,
        returns=zeros if returns is None else returns,
        values=zeros if values is None else values,
        rewards=zeros if rewards is None else rewards,
        next_values=zeros if next_values is None else next_values,
        terminated=false if terminated is None else terminated,
        truncated=false if truncated is None else truncated,
        age=torch.zeros(b, dtype=torch.long),
        time_shape=time_shape or (b, 1),
        gamma=gamma,
    )
