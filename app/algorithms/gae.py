"""Generalized advantage estimation (Schulman et al. 2016), as the seed lectures derive it."""

from __future__ import annotations

import torch
from torch import Tensor


def gae(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    lam: float,
) -> tuple[Tensor, Tensor]:
    """GAE(gamma, lambda) advantages and lambda-return value targets.

    All inputs are [T, N] (time, environment):
      rewards[t]      r_{t+1}, the reward for the action at step t
      values[t]       V(s_t)
      next_values[t]  V(s_{t+1}) of the true successor: the next row's state,
                      V(final_obs) where the episode ended at t, and V of the
                      observation after the rollout at t = T-1
      terminated[t]   the episode truly ended at t: no bootstrap, V(s_{t+1}) := 0
      truncated[t]    the episode was cut at t (time limit): bootstrap with next_values[t]

    delta_t = r_{t+1} + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t)
    A_t     = delta_t + gamma lambda (1 - (terminated_t or truncated_t)) A_{t+1},  A_T = 0
    returns = A_t + V(s_t)  (the lambda-return, the value target)
    Returns (advantages [T, N], returns [T, N]).
    """
    not_terminal = 1.0 - terminated.to(values.dtype)
    not_done = 1.0 - (terminated | truncated).to(values.dtype)
    deltas = rewards + gamma * not_terminal * next_values - values
    advantages = torch.empty_like(values)
    running = torch.zeros_like(values[0])
    for t in range(values.shape[0] - 1, -1, -1):
        running = deltas[t] + gamma * lam * not_done[t] * running
        advantages[t] = running
    return advantages, advantages + values
