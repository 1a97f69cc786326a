"""Building a :class:`Batch` for algorithm tests from flat tensors; brute-force gradients to check updates against."""

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


def per_sample_grads(module, inputs, fn) -> torch.Tensor:
    """Brute force: the gradient of fn(module(row)) for each row by its own backward pass, flat: [B, P] float64."""
    params = [p for p in module.parameters() if p.requires_grad]
    rows = []
    for i in range(inputs[0].shape[0]):
        out = fn(*(x[i : i + 1] for x in inputs))
        grads = torch.autograd.grad(out, params, allow_unused=True)
        rows.append(
            torch.cat(
                [(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params, strict=True)]
            )
        )
    return torch.stack(rows).double()


def flat_grads(module) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in module.parameters() if p.requires_grad]).double()


def entropy_gradient(policy) -> torch.Tensor:
    """d H / d theta, flat, by hand: H = sum_j (log sigma_j + 0.5 log(2 pi e)) per state, so 1 for each log sigma_j
    and 0 for every weight of the mean network."""
    return torch.cat(
        [torch.ones(p.numel()) if n == "log_std" else torch.zeros(p.numel()) for n, p in policy.named_parameters()]
    ).double()
