"""Trust region policy optimization and the natural policy gradient (seed lecture 002,
Algorithms 2-4) for a Gaussian policy, with a separately fitted value function."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Normal

from app.algorithms.numerics import (
    GaussianFisher,
    backtracking_line_search,
    conjugate_gradient,
    flat_grad,
    flat_params,
    set_flat_params,
)
from app.algorithms.value_fit import explained_variance, fit_value
from app.config import TRPOConfig, ValueConfig
from policies import GaussianPolicy, ValueFunction, entropy, log_prob, mean_kl


@dataclass(frozen=True)
class Batch:
    """One iteration's data, flattened over time and environments (B = T * N)."""

    obs: Tensor  # [B, obs_dim] raw observations
    actions: Tensor  # [B, act_dim] sampled actions (normalized units, before clipping)
    advantages: Tensor  # [B] GAE advantages
    returns: Tensor  # [B] lambda-returns: value targets
    values: Tensor  # [B] V(s) before this update


def surrogate(
    dist: Normal, actions: Tensor, advantages: Tensor, old_log_prob: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """L(theta_k, theta) = mean_t [pi_theta(a_t|s_t) / pi_theta_k(a_t|s_t) * A_t].

    actions [B, act_dim], advantages [B], old_log_prob [B]. Returns (L, metrics).
    """
    ratio = torch.exp(log_prob(dist, actions) - old_log_prob)
    loss = (ratio * advantages).mean()
    return loss, {"ratio_max": ratio.max().detach()}


class TRPO:
    """One update = a natural-gradient policy step (+ line search for TRPO) and a value fit.

    Policy step: g = grad L at theta_k; s = (F + damping I)^-1 g by conjugate
    gradient with Fisher-vector products; full step sqrt(2 delta / s^T F s) s;
    TRPO then backtracks until KL <= delta and L improved, NPG takes the full step.
    """

    def __init__(self, policy: GaussianPolicy, value: ValueFunction, cfg: TRPOConfig, value_cfg: ValueConfig) -> None:
        self.policy, self.value, self.cfg, self.value_cfg = policy, value, cfg, value_cfg
        self.params = [p for p in policy.parameters() if p.requires_grad]
        self.value_optimizer = torch.optim.Adam(value.parameters(), lr=value_cfg.lr, fused=True)

    def update(self, batch: Batch, generator: torch.Generator | None = None) -> dict[str, float]:
        metrics = self.policy_step(batch, generator)
        with torch.no_grad():
            norm_obs = self.policy.normalizer(batch.obs)
        metrics |= fit_value(
            self.value,
            self.value_optimizer,
            norm_obs,
            batch.returns,
            self.value_cfg.epochs,
            self.value_cfg.minibatch_size,
            generator,
            self.value_cfg.max_grad_norm,
        )
        metrics["explained_variance"] = explained_variance(batch.values, batch.returns)
        return metrics

    def policy_step(self, batch: Batch, generator: torch.Generator | None = None) -> dict[str, float]:
        cfg, policy, params = self.cfg, self.policy, self.params
        advantages = batch.advantages
        if cfg.normalize_advantages and advantages.numel() > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

        with torch.no_grad():
            old_dist = policy.distribution(batch.obs)
            old_dist = Normal(old_dist.loc.detach(), old_dist.scale.detach())
            old_log_prob = log_prob(old_dist, batch.actions)
        metrics: dict[str, float] = {"entropy": entropy(old_dist).item()}

        loss, _ = surrogate(policy.distribution(batch.obs), batch.actions, advantages, old_log_prob)
        g = flat_grad(loss, params)
        metrics["grad_norm"] = g.norm().item()

        # Fisher-vector products on an optional random subset of the batch.
        fvp_obs = batch.obs
        if cfg.fvp_subsample < 1.0:
            count = max(1, round(cfg.fvp_subsample * batch.obs.shape[0]))
            device = generator.device if generator is not None else batch.obs.device
            idx = torch.randperm(batch.obs.shape[0], generator=generator, device=device)[:count].to(batch.obs.device)
            fvp_obs = batch.obs[idx]

        fvp = GaussianFisher(policy, fvp_obs, params, cfg.damping)  # (F + damping I) v in closed form

        rejected = {
            "policy_rejected": 1.0,
            "kl": 0.0,
            "surrogate_improvement": 0.0,
            "line_search_accepted": 0.0,
            "line_search_fraction": 0.0,
            "line_search_tries": 0.0,
        }
        if not torch.isfinite(g).all() or not math.isfinite(loss.item()):
            return metrics | rejected

        step_dir = conjugate_gradient(fvp, g, cfg.cg_iters, cfg.cg_tol)  # s ~ F^-1 g
        shs = step_dir.dot(fvp(step_dir))  # s^T F s
        if not (torch.isfinite(step_dir).all() and torch.isfinite(shs) and shs > 0):
            return metrics | rejected
        full_step = torch.sqrt(2.0 * cfg.max_kl / shs) * step_dir  # sqrt(2 delta / s^T F s) s

        def evaluate() -> tuple[float, float]:
            with torch.no_grad():
                dist = policy.distribution(batch.obs)
                new_loss, _ = surrogate(dist, batch.actions, advantages, old_log_prob)
                return new_loss.item(), mean_kl(old_dist, dist).item()

        old_params = flat_params(params)
        if cfg.name == "npg":
            set_flat_params(params, old_params + full_step)
            new_loss, kl = evaluate()
            result = {
                "line_search_accepted": 1.0,
                "line_search_fraction": 1.0,
                "line_search_tries": 0.0,
                "kl": kl,
                "surrogate_improvement": new_loss - loss.item(),
            }
        else:
            search = backtracking_line_search(
                params, full_step, evaluate, loss.item(), cfg.max_kl, cfg.line_search_shrink, cfg.line_search_steps
            )
            result = {
                "line_search_accepted": float(search.accepted),
                "line_search_fraction": search.step_fraction,
                "line_search_tries": float(search.tries),
                "kl": search.kl,
                "surrogate_improvement": search.improvement,
            }
        if not torch.isfinite(flat_params(params)).all() or not math.isfinite(result["kl"]):
            set_flat_params(params, old_params)
            return metrics | rejected
        return metrics | result | {"policy_rejected": 0.0}

    def state_dict(self) -> dict[str, Any]:
        return {"value_optimizer": self.value_optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value_optimizer.load_state_dict(state["value_optimizer"])
