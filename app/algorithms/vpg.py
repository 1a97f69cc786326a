"""REINFORCE / vanilla policy gradient with baselines (seed lectures 001 and 004), optionally
reusing the last k rollouts with truncated importance weights.

grad L = (1/B) sum_t w_t grad log pi(a_t|s_t) (Psi_t - b), one gradient step per update, where
Psi_t is the return estimate (``returns``) and b the baseline (``baseline``); the value function
is fitted afterwards like TRPO's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from app.algorithms.base import Batch, UpdateResult, importance_weights, policy_gradient_loss, scheduled_lr
from app.algorithms.collective import SINGLE, Collective
from app.algorithms.value_fit import ValueFitter
from app.params import param
from policies import GaussianPolicy, ValueFunction, entropy, log_prob

if TYPE_CHECKING:
    from app.config import ValueConfig


@dataclass(frozen=True)
class VPGConfig:
    name: Literal["vpg"] = param("vpg", "REINFORCE / vanilla policy gradient with a baseline")
    returns: Literal["trajectory", "reward_to_go", "gae"] = param(
        "reward_to_go",
        "Psi_t: the whole (discounted) episode return, the return from t on, or the GAE advantage "
        "(which already subtracts the learned value; baseline is then ignored)",
    )
    baseline: Literal["none", "mean", "value", "optimal"] = param(
        "value",
        "b: none; the batch mean of Psi; the learned V(s_t); or the variance-minimizing "
        "b*_k = E[g_k^2 Psi] / E[g_k^2] per parameter k",
    )
    lr: float = param(3e-4, "Adam learning rate of the policy", low=0.0, low_open=True)
    lr_schedule: Literal["constant", "linear"] = param("constant", "constant, or linear decay to 0 over the run")
    ent_coef: float = param(0.0, "entropy bonus coefficient", low=0.0)
    max_grad_norm: float | None = param(
        None, "clip the policy gradient norm (null: no clipping)", low=0.0, low_open=True
    )
    normalize_psi: bool = param(
        True, "divide Psi - b by its root mean square over the batch (its std once a baseline centres it)"
    )
    reuse_rollouts: int = param(0, "also learn from the last k rollouts, importance-weighted (0: on-policy)", low=0)
    importance_cap: float = param(
        1.0, "truncate importance weights at this value (>= 1: this iteration's weights of 1 are never cut)", low=1.0
    )
    importance: Literal["step", "cumulative"] = param(
        "step", "importance weight per decision (step) or the product over the episode so far (cumulative)"
    )
    per_sample_chunk: int = param(1024, "optimal baseline: per-sample gradients computed this many at a time", low=1)


# ---------------------------------------------------------------------------
# return estimates, pure functions over [T, M]


def reward_to_go(rewards: Tensor, next_values: Tensor, terminated: Tensor, truncated: Tensor, gamma: float) -> Tensor:
    """G_t = sum_{k=t}^{end} gamma^(k-t) r_k (+ gamma^(end+1-t) V(s_{end+1}) where the episode was cut): [T, M].

    Causal: G_t holds no reward from before t. ``end`` is the episode's last step within the
    rollout; the sum is bootstrapped with next_values there unless the episode terminated
    (truncation, or the rollout's last row). All inputs [T, M].
    """
    out = torch.empty_like(rewards)
    running = next_values[-1] * (~terminated[-1]).to(rewards.dtype)  # V after the rollout, 0 if terminated
    for t in range(rewards.shape[0] - 1, -1, -1):
        if t < rewards.shape[0] - 1:
            # an episode that ended at t starts nothing from t + 1: restart from its own bootstrap
            cut = (terminated[t] | truncated[t]).to(rewards.dtype)
            running = cut * next_values[t] * (~terminated[t]).to(rewards.dtype) + (1.0 - cut) * running
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def trajectory_returns(
    rewards: Tensor, next_values: Tensor, terminated: Tensor, truncated: Tensor, gamma: float
) -> Tensor:
    """R(tau) of the episode segment each step belongs to, from the segment's first step in the rollout: [T, M].

    Equals reward_to_go at the segment's first step, broadcast over the segment. (An episode
    that began in an earlier rollout counts from this rollout's first row on: rewards of earlier
    steps would only add a term whose expected gradient is zero.)
    """
    rtg = reward_to_go(rewards, next_values, terminated, truncated, gamma)
    out = torch.empty_like(rtg)
    current = rtg[0]
    for t in range(rewards.shape[0]):
        if t > 0:
            started = terminated[t - 1] | truncated[t - 1]
            current = torch.where(started, rtg[t], current)
        out[t] = current
    return out


def optimal_baseline(grads: Tensor, psi: Tensor) -> Tensor:
    """b*_k = sum_i g_ik^2 psi_i / sum_i g_ik^2 per parameter k: the b minimizing Var[g_k (psi - b)].

    grads [S, P] per-sample gradients of log-probabilities, psi [S] -> [P] (0 where every g_ik is 0).
    """
    g2 = grads.square()
    denom = g2.sum(0)
    return torch.where(denom > 0, (g2 * psi[:, None]).sum(0) / denom.clamp_min(1e-30), torch.zeros_like(denom))


def segment_ids(terminated: Tensor, truncated: Tensor) -> Tensor:
    """An id [T * M] (time-major) for each episode segment of a [T, M] rollout."""
    steps, cols = terminated.shape
    starts = torch.zeros(steps, cols, dtype=torch.long, device=terminated.device)
    starts[1:] = (terminated[:-1] | truncated[:-1]).long()
    count = torch.cumsum(starts, 0)  # segment index within each column
    per_col = count[-1] + 1
    offsets = torch.cumsum(per_col, 0) - per_col
    return (count + offsets).reshape(-1)


class VPG:
    """REINFORCE with a choice of return estimate and baseline (module docstring).

    Several ranks: the mean baseline, the RMS scale of Psi - b, the optimal baseline's sums and the
    gradient are over every rank's samples (``collective``); so are the logged values.
    """

    gae_lambda: float | None = None

    def __init__(
        self,
        policy: GaussianPolicy,
        value: ValueFunction,
        cfg: VPGConfig,
        value_cfg: ValueConfig,
        total_updates: int = 1,
        collective: Collective = SINGLE,
    ) -> None:
        self.policy, self.value, self.cfg, self.collective = policy, value, cfg, collective
        self.reuse_rollouts = cfg.reuse_rollouts
        self.total_updates = max(1, total_updates)
        self.params = [p for p in policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr)
        self.value_fitter = ValueFitter(value, value_cfg, collective)
        self.updates = 0

    def psi(self, batch: Batch) -> Tensor:
        """Psi_t [B] before any baseline: the configured return estimate."""
        if self.cfg.returns == "gae":
            return batch.advantages
        steps, cols = batch.time_shape
        fields = [getattr(batch, k).view(steps, cols) for k in ("rewards", "next_values", "terminated", "truncated")]
        estimate = trajectory_returns if self.cfg.returns == "trajectory" else reward_to_go
        return estimate(*fields, batch.gamma).reshape(-1)

    def update(self, batch: Batch, generator: torch.Generator | None = None) -> UpdateResult:
        cfg, policy, collective = self.cfg, self.policy, self.collective
        lr = scheduled_lr(cfg.lr, cfg.lr_schedule, self.updates, self.total_updates)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        psi = self.psi(batch)
        # |Psi| before any baseline (largest over every rank's), for the scale guard below
        reference = collective.max(psi.abs().max()).clamp_min(1e-8)
        baseline = "none" if cfg.returns == "gae" else cfg.baseline
        if baseline == "mean":
            psi = psi - collective.mean(psi.mean(), psi.numel())  # b = sum_r sum_i Psi_ri / B
        elif baseline == "value":
            psi = psi - batch.values
        dist = policy.distribution(batch.obs)
        new_log_probs = log_prob(dist, batch.actions)
        weights = importance_weights(new_log_probs, batch, cfg.importance_cap, cfg.importance == "cumulative")
        # One scale for Psi - b: its RMS (not its std, which would blow up a Psi that is the same for every
        # step without a centring baseline), and no division where only rounding noise is left.
        rms = collective.mean(psi.square().mean(), psi.numel()).sqrt()  # sqrt(sum_r sum_i (Psi - b)^2 / B)
        scale = rms if cfg.normalize_psi and rms > 1e-6 * reference else torch.ones((), device=psi.device)
        ent = entropy(dist)
        self.optimizer.zero_grad(set_to_none=True)
        metrics: dict[str, float] = {}
        if baseline == "optimal":
            grads, b_norm = self.optimal_baseline_gradient(batch, psi / scale, weights)
            metrics["baseline_norm"] = b_norm
            for p, g in zip(self.params, grads, strict=True):
                p.grad = -g
            if cfg.ent_coef:
                (-cfg.ent_coef * ent).backward()
            loss = torch.zeros(())
        else:
            loss = policy_gradient_loss(new_log_probs, psi / scale, weights) - cfg.ent_coef * ent
            loss.backward()
            collective.mean_gradients(self.params, batch.size)  # sum_r B_r grad_r / B
            loss = collective.mean(loss.detach(), batch.size)
        grad_norm = nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm or math.inf)
        finite = math.isfinite(grad_norm.item())
        if finite:  # a non-finite gradient never reaches the parameters or the optimizer state
            self.optimizer.step()
        self.updates += 1
        with torch.no_grad():
            kl = torch.distributions.kl_divergence(dist, policy.distribution(batch.obs)).sum(-1).mean()
            kl, weight_mean = collective.mean(torch.stack([kl, weights.mean()]), batch.size).tolist()
        metrics |= {
            "policy_loss": loss.item(),
            "entropy": ent.item(),
            "grad_norm": grad_norm.item(),
            "kl": kl,
            "lr": lr,
            "psi_rms": rms.item(),
            "importance_weight_mean": weight_mean,
        }
        if not finite:
            self.optimizer.zero_grad(set_to_none=True)
            return UpdateResult(metrics, rejected="non-finite policy gradient")
        metrics |= self.value_fitter.fit(policy.normalizer(batch.obs).detach(), batch, generator)
        return UpdateResult(metrics, rejected="non-finite value update" if metrics["value_rejected"] else None)

    def optimal_baseline_gradient(self, batch: Batch, psi: Tensor, weights: Tensor) -> tuple[list[Tensor], float]:
        """(1/B) sum_i g_i (psi_i - b*) per parameter, from per-sample gradients g_i (torch.func).

        With ``returns: trajectory`` a sample is an episode segment, g(tau) = sum_t w_t grad log pi(a_t|s_t)
        and psi its return; otherwise a sample is a step, g_t = w_t grad log pi(a_t|s_t). Both reduce to four
        sums over samples, S_gpsi = sum_i g_i psi_i, S_g2psi = sum_i g_i^2 psi_i, S_g2 = sum_i g_i^2 and
        S_g = sum_i g_i (per parameter entry k), from which b*_k = S_g2psi / S_g2 and the gradient is
        (S_gpsi - b* S_g) / B; with several ranks the sums and B are over every rank's samples.
        Returns the gradient (one tensor per parameter) and the norm of b*.
        """
        policy = self.policy
        names = [n for n, p in policy.named_parameters() if p.requires_grad]
        params = {n: p.detach() for n, p in policy.named_parameters() if p.requires_grad}
        buffers = dict(policy.named_buffers())

        def sample_log_prob(theta: dict[str, Tensor], obs: Tensor, action: Tensor) -> Tensor:
            mean = torch.func.functional_call(policy, (theta, buffers), (obs[None],), strict=False)  # [1, act_dim]
            std = theta["log_std"].exp()
            return torch.distributions.Normal(mean, std).log_prob(action[None]).sum()

        per_sample = torch.func.vmap(torch.func.grad(sample_log_prob), in_dims=(None, 0, 0))
        trajectory = self.cfg.returns == "trajectory"
        steps, cols = batch.time_shape
        if trajectory:
            seg = segment_ids(batch.terminated.view(steps, cols), batch.truncated.view(steps, cols))
            count = int(seg.max()) + 1
            sums = {n: torch.zeros(count, *params[n].shape, device=psi.device) for n in names}
            seg_psi = torch.zeros(count, device=psi.device).scatter_(0, seg, psi)  # constant per segment
        # per parameter: [S_gpsi, S_g2psi, S_g2, S_g], each shaped like the parameter
        acc = {n: torch.zeros(4, *params[n].shape, device=psi.device) for n in names}

        def accumulate(name: str, g: Tensor, p: Tensor) -> None:
            """Add samples g [S, *shape] with returns p [S] to the four sums of parameter ``name``."""
            p = p.view(-1, *([1] * (g.dim() - 1)))
            acc[name][0] += (g * p).sum(0)
            acc[name][1] += (g.square() * p).sum(0)
            acc[name][2] += g.square().sum(0)
            acc[name][3] += g.sum(0)

        chunk = self.cfg.per_sample_chunk
        for start in range(0, batch.size, chunk):
            rows = slice(start, start + chunk)
            grads = per_sample(params, batch.obs[rows], batch.actions[rows])
            w = weights[rows]
            for n in names:
                g = grads[n] * w.view(-1, *([1] * (grads[n].dim() - 1)))
                if trajectory:
                    sums[n].index_add_(0, seg[rows], g)
                else:
                    accumulate(n, g, psi[rows])
        if trajectory:
            for n in names:
                accumulate(n, sums[n], seg_psi)
        collective = self.collective
        if collective.active:  # one reduction of every sum, and of B
            flat = collective.sum(torch.cat([acc[n].reshape(-1) for n in names]))
            for n, part in zip(names, flat.split([acc[n].numel() for n in names]), strict=True):
                acc[n] = part.view_as(acc[n])
        total = int(collective.sum(torch.tensor(float(batch.size), device=psi.device)).item())
        out: list[Tensor] = []
        b_sq = 0.0
        for n in names:
            g_psi, g2_psi, g2, g_sum = (a.reshape(-1) for a in acc[n])
            b = torch.where(g2 > 0, g2_psi / g2.clamp_min(1e-30), torch.zeros_like(g2))  # b*_k
            grad = (g_psi - b * g_sum) / total  # (1/B) sum_i g_i (psi_i - b*)
            b_sq += float(b.square().sum())
            out.append(grad.view_as(params[n]))
        return out, math.sqrt(b_sq)

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "value_optimizer": self.value_fitter.optimizer.state_dict(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.value_fitter.optimizer.load_state_dict(state["value_optimizer"])
        self.updates = int(state["updates"])
