"""Fitting the value function by regression on value targets."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from app.algorithms.collective import SINGLE, Collective

if TYPE_CHECKING:
    from app.algorithms.base import Batch
    from app.config import ValueConfig


def fit_value(
    value: nn.Module,
    optimizer: torch.optim.Optimizer,
    norm_obs: Tensor,
    targets: Tensor,
    epochs: int,
    minibatch_size: int,
    generator: torch.Generator | None = None,
    max_grad_norm: float | None = None,
    collective: Collective = SINGLE,
) -> dict[str, float]:
    """Minimize mean (V_phi(s) - target)^2 with Adam over shuffled minibatches.

    norm_obs [B, obs_dim] (already normalized), targets [B]. If a loss or
    the weights are ever non-finite the value net and optimizer are restored
    to their state before the call and ``value_rejected`` is 1.
    With several ranks ``minibatch_size`` is each rank's part of a minibatch and the step takes the
    mean gradient of every rank's (the gradient of the loss over their union); the ranks hold equal
    batches, so they take the same number of steps.
    Returns ``value_loss`` (mean minibatch loss of the last epoch) and ``value_rejected``.
    """
    saved_params = copy.deepcopy(value.state_dict())
    saved_optim = copy.deepcopy(optimizer.state_dict())
    batch = targets.shape[0]
    size = min(minibatch_size, batch)
    per_epoch = batch // size
    losses: list[Tensor] = []
    for _ in range(epochs):
        order = torch.randperm(batch, generator=generator, device=generator.device if generator else "cpu")
        order = order.to(targets.device)
        for start in range(0, per_epoch * size, size):
            idx = order[start : start + size]
            loss = (value(norm_obs[idx]) - targets[idx]).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            collective.mean_gradients(value.parameters(), idx.numel())  # mean over every rank's minibatch
            if max_grad_norm is not None:
                nn.utils.clip_grad_norm_(value.parameters(), max_grad_norm)
            optimizer.step()
            losses.append(loss.detach())
    # One check at the end (no per-step synchronization): a non-finite loss anywhere, or
    # non-finite weights after it, undoes the whole fit.
    all_losses = torch.stack(losses)
    finite = bool(torch.isfinite(all_losses).all()) and all(bool(torch.isfinite(p).all()) for p in value.parameters())
    if not collective.all(finite):  # every rank restores, or none
        value.load_state_dict(saved_params)
        optimizer.load_state_dict(saved_optim)
        return {"value_loss": float("nan"), "value_rejected": 1.0}
    return {"value_loss": collective.mean(all_losses[-per_epoch:].mean()).item(), "value_rejected": 0.0}


def explained_variance(predictions: Tensor, targets: Tensor) -> float:
    """1 - Var[target - prediction] / Var[target] (1: perfect, 0: no better than a constant)."""
    var = targets.var()
    if var <= 0:
        return float("nan")
    return (1.0 - (targets - predictions).var() / var).item()


class ValueFitter:
    """The value function fitted by its own Adam regression after each policy step (TRPO, NPG, VPG)."""

    def __init__(self, value: nn.Module, cfg: ValueConfig, collective: Collective = SINGLE) -> None:
        self.value, self.cfg, self.collective = value, cfg, collective
        self.optimizer = torch.optim.Adam(value.parameters(), lr=cfg.lr, fused=True)

    def fit(self, norm_obs: Tensor, batch: Batch, generator: torch.Generator | None) -> dict[str, float]:
        """Regress V(norm_obs [B, obs_dim]) on batch.returns; metrics value_loss, value_rejected, explained_variance."""
        cfg = self.cfg
        metrics = fit_value(
            self.value,
            self.optimizer,
            norm_obs,
            batch.returns,
            cfg.epochs,
            self.collective.share(cfg.minibatch_size),  # this rank's part: the configured size over all ranks
            generator,
            cfg.max_grad_norm,
            self.collective,
        )
        metrics["explained_variance"] = explained_variance(batch.values, batch.returns)
        return metrics
