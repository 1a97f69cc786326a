"""Synchronous advantage actor-critic (A2C; seed lectures 000 and 003): one gradient step per rollout
of many parallel environments, optionally reusing the last k rollouts with truncated importance weights."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from app.algorithms.base import Batch, UpdateResult, importance_weights, policy_gradient_loss, scheduled_lr
from app.algorithms.collective import SINGLE, Collective
from app.algorithms.value_fit import explained_variance
from app.params import param
from policies import GaussianPolicy, ValueFunction, entropy, log_prob

if TYPE_CHECKING:
    from app.config import ValueConfig


@dataclass(frozen=True)
class A2CConfig:
    name: Literal["a2c"] = param("a2c", "synchronous advantage actor-critic (one gradient step per rollout)")
    advantage: Literal["gae", "nstep"] = param(
        "gae", "gae: advantage.gae_lambda; nstep: n-step returns bootstrapped by the critic (n = train.steps_per_env)"
    )
    optimizer: Literal["rmsprop", "adam"] = param("rmsprop", "optimizer of policy and value together")
    lr: float = param(7e-4, "learning rate", low=0.0, low_open=True)
    lr_schedule: Literal["constant", "linear"] = param("linear", "constant, or linear decay to 0 over the run")
    rmsprop_alpha: float = param(0.99, "RMSprop smoothing constant", low=0.0, high=1.0, low_open=True, high_open=True)
    eps: float = param(1e-5, "optimizer epsilon", low=0.0, low_open=True)
    vf_coef: float = param(0.5, "weight of the value loss 0.5 (V - R)^2 in the joint loss", low=0.0)
    ent_coef: float = param(0.0, "entropy bonus coefficient", low=0.0)
    max_grad_norm: float | None = param(
        0.5, "clip the global gradient norm (null: no clipping)", low=0.0, low_open=True
    )
    reuse_rollouts: int = param(0, "also learn from the last k rollouts, importance-weighted (0: on-policy)", low=0)
    importance_cap: float = param(
        1.0, "truncate importance weights at this value (>= 1: this iteration's weights of 1 are never cut)", low=1.0
    )
    importance: Literal["step", "cumulative"] = param(
        "step", "importance weight per decision (step) or the product over the episode so far (cumulative)"
    )


def build_optimizer(
    params: list[nn.Parameter], kind: str, lr: float, eps: float, alpha: float
) -> torch.optim.Optimizer:
    """RMSprop (alpha, eps) or Adam (eps) over ``params``."""
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=alpha, eps=eps)
    return torch.optim.Adam(params, lr=lr, eps=eps)


class A2C:
    """loss = -(1/B) sum_t w_t log pi(a_t|s_t) A_t + c_V 0.5 mean (V(s_t) - R_t)^2 - c_H H, one step per update.

    w_t = 1 for this iteration's rollout; for reused ones the truncated importance weight
    min(cap, pi / pi_behaviour) (:func:`importance_weights`), which also weights their value loss.
    Several ranks: the step takes the sample-weighted mean of every rank's gradient (the gradient of
    the loss over all ranks' samples), clipped after averaging; the logged values are means over ranks.
    """

    def __init__(
        self,
        policy: GaussianPolicy,
        value: ValueFunction,
        cfg: A2CConfig,
        value_cfg: ValueConfig,
        total_updates: int = 1,
        collective: Collective = SINGLE,
    ) -> None:
        self.policy, self.value, self.cfg, self.collective = policy, value, cfg, collective
        self.reuse_rollouts = cfg.reuse_rollouts
        self.gae_lambda: float | None = 1.0 if cfg.advantage == "nstep" else None
        self.total_updates = max(1, total_updates)
        self.params = [p for p in (*policy.parameters(), *value.parameters()) if p.requires_grad]
        self.optimizer = build_optimizer(self.params, cfg.optimizer, cfg.lr, cfg.eps, cfg.rmsprop_alpha)
        self.updates = 0

    def update(self, batch: Batch, generator: torch.Generator | None = None) -> UpdateResult:
        cfg, policy, value = self.cfg, self.policy, self.value
        lr = scheduled_lr(cfg.lr, cfg.lr_schedule, self.updates, self.total_updates)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        dist = policy.distribution(batch.obs)
        new_log_probs = log_prob(dist, batch.actions)
        weights = importance_weights(new_log_probs, batch, cfg.importance_cap, cfg.importance == "cumulative")
        pg_loss = policy_gradient_loss(new_log_probs, batch.advantages, weights)
        v_loss = 0.5 * (weights * (value(policy.normalizer(batch.obs).detach()) - batch.returns).square()).mean()
        ent = entropy(dist)
        loss = pg_loss + cfg.vf_coef * v_loss - cfg.ent_coef * ent
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.collective.mean_gradients(self.params, batch.size)  # sum_r B_r grad_r / B
        grad_norm = nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm or math.inf)
        # the losses over every rank's samples (one reduction): [total, policy, value, entropy, weight mean]
        parts = torch.stack([loss, pg_loss, v_loss, ent, weights.mean()]).detach()
        total, pg_value, v_value, ent_value, weight_mean = self.collective.mean(parts, batch.size).tolist()
        finite = math.isfinite(total) and math.isfinite(grad_norm.item())
        if finite:  # a non-finite loss or gradient never reaches the parameters or the optimizer state
            self.optimizer.step()
        self.updates += 1
        with torch.no_grad():
            kl = torch.distributions.kl_divergence(dist, policy.distribution(batch.obs)).sum(-1).mean()
        metrics = {
            "policy_loss": pg_value,
            "value_loss": v_value,
            "entropy": ent_value,
            "grad_norm": grad_norm.item(),
            "kl": self.collective.mean(kl, batch.size).item(),
            "lr": lr,
            "importance_weight_mean": weight_mean,
            "explained_variance": explained_variance(batch.values, batch.returns),
        }
        if not finite:
            self.optimizer.zero_grad(set_to_none=True)
            return UpdateResult(metrics, rejected="non-finite loss or gradient")
        return UpdateResult(metrics)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
