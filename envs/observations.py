"""Batches of observations as the VecEnvs give them: a tensor [..., obs_dim], or a TensorDict [...] of fields.

Imported by the backends and the runner, not by ``import envs`` (it needs torch).
"""

from __future__ import annotations

import torch
from tensordict import TensorDict
from torch import Tensor

Obs = Tensor | TensorDict


def finite_rows(obs: Obs) -> Tensor:
    """[B] bool: every float entry of each row (first dimension) finite, over all fields of a TensorDict."""
    if isinstance(obs, TensorDict):
        rows = torch.ones(obs.shape[0], dtype=torch.bool, device=obs.device)
        for value in obs.values():
            if value.is_floating_point():
                rows &= torch.isfinite(value.flatten(1)).all(dim=1)
        return rows
    return torch.isfinite(obs.flatten(1)).all(dim=1)


__all__ = ["Obs", "finite_rows"]
