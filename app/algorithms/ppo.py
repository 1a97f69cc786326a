"""Proximal policy optimization with the clipped surrogate (Schulman et al. 2017)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from app.algorithms.base import Batch, UpdateResult, scheduled_lr
from app.algorithms.collective import SINGLE, Collective
from app.algorithms.value_fit import explained_variance
from app.params import param
from policies import GaussianPolicy, ValueFunction, entropy, log_prob

if TYPE_CHECKING:
    from app.config import ValueConfig


@dataclass(frozen=True)
class PPOConfig:
    name: Literal["ppo"] = param("ppo", "proximal policy optimization (clipped surrogate, minibatch epochs)")
    lr: float = param(3e-4, "Adam learning rate of policy and value", low=0.0, low_open=True)
    lr_schedule: Literal["constant", "linear", "kl_adaptive"] = param(
        "linear", "constant; linear decay to 0 over the run; or kl_adaptive (x1.5 / 1.5 to keep KL near target_kl)"
    )
    epochs: int = param(10, "passes over the batch per update", low=1)
    minibatch_size: int = param(64, "samples per gradient step", low=1)
    clip: float = param(0.2, "clip range epsilon of the ratio pi/pi_old", low=0.0, low_open=True)
    clip_value: float | None = param(
        None, "clip the value prediction to V_old +- this (null: unclipped value loss)", low=0.0, low_open=True
    )
    vf_coef: float = param(0.5, "weight of the value loss in the joint loss", low=0.0)
    ent_coef: float = param(0.0, "entropy bonus coefficient", low=0.0)
    max_grad_norm: float | None = param(
        0.5, "clip the global gradient norm (null: no clipping)", low=0.0, low_open=True
    )
    target_kl: float | None = param(
        None,
        "stop the epochs once the approximate KL passes 1.5 x this; the kl_adaptive schedule's target "
        "(null: no early stop)",
        low=0.0,
        low_open=True,
    )
    normalize_minibatch_advantages: bool = param(False, "standardize advantages again within each minibatch")
    recompute_advantages: bool = param(
        False, "re-estimate advantages and value targets (GAE) with the value function fitted so far, each epoch"
    )

    def problems(self) -> list[tuple[str, str]]:
        if self.lr_schedule == "kl_adaptive" and self.target_kl is None:
            return [("target_kl", "lr_schedule kl_adaptive needs a target_kl")]
        return []


def clipped_surrogate(ratio: Tensor, advantages: Tensor, clip: float) -> tuple[Tensor, Tensor]:
    """L^CLIP = mean_t min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t) and the clipped fraction.

    ratio, advantages [B] -> (scalar objective to maximize, scalar fraction of samples where the
    clipped term is the smaller one, i.e. the gradient is zero).
    """
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - clip, 1.0 + clip) * advantages
    objective = torch.minimum(unclipped, clipped)
    return objective.mean(), (clipped < unclipped).float().mean()


def value_loss(new_values: Tensor, old_values: Tensor, returns: Tensor, clip: float | None) -> Tensor:
    """0.5 mean (V - R)^2, or with clipping 0.5 mean max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)."""
    loss = (new_values - returns).square()
    if clip is not None:
        clipped = old_values + (new_values - old_values).clamp(-clip, clip)
        loss = torch.maximum(loss, (clipped - returns).square())
    return 0.5 * loss.mean()


def approx_kl(log_ratio: Tensor) -> Tensor:
    """KL(pi_old || pi) ~ mean((r - 1) - log r): unbiased and never negative (Schulman's k3 estimator)."""
    return ((log_ratio.exp() - 1.0) - log_ratio).mean()


class PPO:
    """Minibatch epochs over the batch on the joint loss -L^CLIP + c_V L^V - c_H H with one Adam.

    Each epoch draws a new random order and takes floor(B / minibatch_size) whole minibatches (the
    few samples left over sit out that epoch only). The early stop looks at the epoch's mean
    approximate KL after the epoch, so the KL can pass 1.5 x target_kl by up to one epoch's steps.

    The ratio is pi_theta(a|s) / pi_behaviour(a|s) with the behaviour log-probabilities recorded
    while collecting (the runner keeps the observation normalizer's statistics fixed from collection
    to the end of the update, so the first minibatch's ratios are 1).

    Several ranks: each takes ceil(minibatch_size / world_size) samples of its own batch per step and
    the step averages every rank's gradients (one minibatch of about minibatch_size samples, as in one
    process when the ranks' batches add up to one process's); the per-minibatch advantage
    standardization, the early stop's approximate KL and the kl_adaptive schedule's use every rank's
    samples, and the logged losses are means over all ranks.
    """

    reuse_rollouts = 0
    gae_lambda: float | None = None

    def __init__(
        self,
        policy: GaussianPolicy,
        value: ValueFunction,
        cfg: PPOConfig,
        value_cfg: ValueConfig,
        total_updates: int = 1,
        collective: Collective = SINGLE,
    ) -> None:
        self.policy, self.value, self.cfg, self.collective = policy, value, cfg, collective
        self.total_updates = max(1, total_updates)
        self.params = [p for p in (*policy.parameters(), *value.parameters()) if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, eps=1e-5)
        self.updates = 0
        self.lr = cfg.lr

    def current_lr(self) -> float:
        if self.cfg.lr_schedule == "kl_adaptive":
            return self.lr
        return scheduled_lr(self.cfg.lr, self.cfg.lr_schedule, self.updates, self.total_updates)

    def update(self, batch: Batch, generator: torch.Generator | None = None) -> UpdateResult:
        cfg, policy, value, collective = self.cfg, self.policy, self.value, self.collective
        lr = self.current_lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        saved = copy.deepcopy((policy.state_dict(), value.state_dict(), self.optimizer.state_dict()))
        norm_obs = policy.normalizer(batch.obs).detach()
        size = min(collective.share(cfg.minibatch_size), batch.size)  # this rank's part of a minibatch
        per_epoch = batch.size // size
        device = generator.device if generator is not None else "cpu"
        stats: dict[str, list[Tensor]] = {
            k: [] for k in ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")
        }
        first_ratio = math.nan
        epochs_done, stopped = 0, False
        advantages_all, returns_all = batch.advantages, batch.returns  # [B], [B]
        for epoch in range(cfg.epochs):
            if epoch > 0 and cfg.recompute_advantages and batch.refresh is not None:
                # A_t, R_t again from V_phi after the previous epochs' value steps (epoch 1: the batch's)
                fresh = batch.refresh()
                advantages_all, returns_all = fresh.advantages, fresh.returns
            order = self.epoch_order(batch.size, generator, device).to(batch.obs.device)
            epoch_kl: list[Tensor] = []
            for start in range(0, per_epoch * size, size):
                idx = order[start : start + size]
                dist = policy.distribution(batch.obs[idx])
                log_ratio = log_prob(dist, batch.actions[idx]) - batch.log_probs[idx]
                ratio = log_ratio.exp()
                if math.isnan(first_ratio):
                    first_ratio = ratio.detach().sub(1.0).abs().max().item()
                advantages = advantages_all[idx]
                if cfg.normalize_minibatch_advantages:
                    advantages = collective.standardize(advantages)
                objective, clip_fraction = clipped_surrogate(ratio, advantages, cfg.clip)
                v_loss = value_loss(value(norm_obs[idx]), batch.values[idx], returns_all[idx], cfg.clip_value)
                ent = entropy(dist)
                loss = -objective + cfg.vf_coef * v_loss - cfg.ent_coef * ent
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                collective.mean_gradients(self.params, idx.numel())  # the gradient over every rank's minibatch
                if cfg.max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                self.optimizer.step()
                kl = approx_kl(log_ratio.detach())
                epoch_kl.append(kl)
                for key, val in zip(stats, (-objective, v_loss, ent, kl, clip_fraction), strict=True):
                    stats[key].append(val.detach())
            epochs_done += 1
            if cfg.target_kl is not None and collective.mean(torch.stack(epoch_kl).mean()).item() > 1.5 * cfg.target_kl:
                stopped = True  # approximate KL past its threshold: stop the epochs here
                break
        # every rank's means, in one reduction (equal minibatch counts: the plain mean over ranks)
        local = torch.stack([torch.stack(v).mean() for v in stats.values()])
        means = dict(zip(stats, collective.mean(local).tolist(), strict=True))
        self.updates += 1
        if cfg.lr_schedule == "kl_adaptive" and cfg.target_kl is not None:
            if means["approx_kl"] > 2.0 * cfg.target_kl:
                self.lr = max(self.lr / 1.5, 1e-6)
            elif means["approx_kl"] < 0.5 * cfg.target_kl:
                self.lr = min(self.lr * 1.5, 1e-2)
        finite = all(math.isfinite(v) for v in means.values()) and all(torch.isfinite(p).all() for p in self.params)
        metrics = means | {
            "kl": means["approx_kl"],
            "lr": lr,
            "epochs": float(epochs_done),
            "early_stop": float(stopped),
            "first_ratio_error": first_ratio,
        }
        with torch.no_grad():
            metrics["explained_variance"] = explained_variance(batch.values, batch.returns)
        if not finite:
            policy.load_state_dict(saved[0])
            value.load_state_dict(saved[1])
            self.optimizer.load_state_dict(saved[2])
            return UpdateResult(metrics, rejected="non-finite loss or parameters")
        return UpdateResult(metrics)

    @staticmethod
    def epoch_order(size: int, generator: torch.Generator | None, device: torch.device | str) -> Tensor:
        """A random order [size] of the batch's samples for one epoch, drawn from ``generator``."""
        return torch.randperm(size, generator=generator, device=device)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "updates": self.updates, "lr": self.lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates, self.lr = int(state["updates"]), float(state["lr"])
