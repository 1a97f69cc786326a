"""Trust region policy optimization (seed lecture 002, Algorithms 2-4) for a Gaussian policy,
with a separately fitted value function. :mod:`app.algorithms.npg` builds the natural policy
gradient on the same numerics."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn
from torch.distributions import Normal

from app.algorithms.base import Batch, UpdateResult, scheduled_lr
from app.algorithms.collective import SINGLE, Collective
from app.algorithms.numerics import (
    GaussianFisher,
    LineSearchResult,
    backtracking_line_search,
    conjugate_gradient,
    fisher_vector_product,
    flat_grad,
    flat_params,
    set_flat_params,
)
from app.algorithms.value_fit import ValueFitter
from app.params import param
from policies import GaussianPolicy, ValueFunction, entropy, log_prob, mean_kl

if TYPE_CHECKING:
    from app.config import ValueConfig


@dataclass(frozen=True)
class NaturalGradientConfig:
    """What TRPO and NPG share: the natural-gradient direction and its length."""

    name: str = param("", "algorithm")
    max_kl: float = param(0.01, "trust region: largest mean KL(old || new) per update", low=0.0, low_open=True)
    damping: float = param(0.1, "Fisher damping: CG solves (F + damping I) x = g", low=0.0)
    cg_iters: int = param(15, "conjugate gradient iterations", low=1)
    cg_tol: float = param(1e-10, "conjugate gradient stops when the squared residual is below this", low=0.0)
    fvp_subsample: float = param(
        1.0, "fraction of the batch used for Fisher-vector products", low=0.0, high=1.0, low_open=True
    )
    kl_schedule: Literal["constant", "linear"] = param(
        "constant",
        "the trust region over the run: constant, or shrinking linearly from max_kl to max_kl / K by the last of "
        "K updates (as PPO's linear learning rate)",
    )
    ent_coef: float = param(0.0, "entropy bonus: the surrogate adds ent_coef * mean entropy", low=0.0)
    full_step_signal: float = param(
        0.0,
        "take the full trust-region step only while two independent halves of the batch agree at least this "
        "much (their natural gradients' cosine), a proportionally shorter one below it; 0: always the full "
        "step (for tasks with a return ceiling, where a solved policy's advantages are pure noise)",
        low=0.0,
        high=1.0,
    )


@dataclass(frozen=True)
class TRPOConfig(NaturalGradientConfig):
    name: Literal["trpo"] = param("trpo", "trust region policy optimization (natural gradient + line search)")
    line_search_shrink: float = param(
        0.8, "backtracking factor of the line search", low=0.0, high=1.0, low_open=True, high_open=True
    )
    line_search_steps: int = param(10, "largest number of line-search tries", low=1)


def surrogate(dist: Normal, actions: Tensor, advantages: Tensor, old_log_prob: Tensor) -> Tensor:
    """L(theta_k, theta) = mean_t [pi_theta(a_t|s_t) / pi_theta_k(a_t|s_t) * A_t].

    actions [B, act_dim], advantages [B], old_log_prob [B] -> scalar.
    """
    ratio = torch.exp(log_prob(dist, actions) - old_log_prob)
    return (ratio * advantages).mean()


def fisher_product(
    policy: GaussianPolicy, obs: Tensor, params: list[nn.Parameter], damping: float
) -> Callable[[Tensor], Tensor]:
    """v -> (F + damping I) v at the current parameters, for observations obs [B, obs_dim].

    The closed form (:class:`GaussianFisher`) for a policy whose mean is a plain MLP; any
    other policy gets the generic double-backpropagation product through the mean KL.
    """
    try:
        return GaussianFisher(policy, obs, params, damping)
    except (AttributeError, ValueError):
        pass
    with torch.no_grad():
        fixed = policy.distribution(obs)
        fixed = Normal(fixed.loc.detach(), fixed.scale.detach(), validate_args=False)
    return lambda v: fisher_vector_product(lambda: mean_kl(fixed, policy.distribution(obs)), params, v, damping)


def split_halves(batch: Batch, generator: torch.Generator | None) -> Tensor:
    """A mask [B] of half the batch's environment columns (independent trajectories); with one
    column, the first half of its time axis."""
    steps, cols = batch.time_shape
    device = batch.obs.device
    if cols >= 2:
        order = torch.randperm(cols, generator=generator, device=generator.device if generator else "cpu")
        first = torch.zeros(cols, dtype=torch.bool, device=device)
        first[order[: cols // 2].to(device)] = True
        return first.repeat(steps)
    mask = torch.zeros(steps * cols, dtype=torch.bool, device=device)
    mask[: (steps * cols) // 2] = True
    return mask


class TRPO:
    """One update = a natural-gradient policy step (+ line search) and a value fit.

    Policy step: g = grad L at theta_k; s = (F + damping I)^-1 g by conjugate gradient with
    Fisher-vector products; full step sqrt(2 delta / s^T F s) s, shortened when the gradient is
    mostly noise (below); then backtrack until KL <= delta and L improved.

    Signal fraction: g estimated from the batch is the true gradient plus sampling noise. Two
    independent halves of the batch (whole environment columns) give g_1, g_2 with the same signal
    and independent noise; rho, the cosine of their natural gradients in the F^-1 metric
    (:meth:`signal_fraction`), is ~1 when the gradient is mostly signal and ~0 when it is noise.
    The step is scaled by min(1, rho / full_step_signal): full while the halves agree (learning goes
    at TRPO's pace), shrinking to nothing as they stop agreeing. When every episode earns the same
    return (a solved task) the advantages are noise, and the policy is left (nearly) alone instead
    of taking a full trust-region step in a random direction every iteration, which is what made a
    solved InvertedPendulum drift from 1000 to a few hundred. With the check on, the direction is
    the size-weighted mean of the halves' CG solutions, F^-1 g by linearity, at no extra solve.
    It is off by default: on high-dimensional tasks the halves' agreement is low even while the
    policy learns well with full steps (Humanoid 0.0-0.12 early on, Hopper down to 0.02), so a
    task turns it on where its return has a ceiling (configs/inverted_pendulum.yaml: 0.3).

    Several ranks: every mean over samples is the mean over all ranks' samples (``collective``): the
    gradients g, g_1, g_2, every Fisher-vector product F v = (1/B) sum_b J_b^T Sigma^-1 J_b v, and the
    line search's surrogate and KL, each weighted by the rank's sample count. The ranks then compute
    the same step and accept or reject the same tries.
    """

    reuse_rollouts = 0
    gae_lambda: float | None = None

    def __init__(
        self,
        policy: GaussianPolicy,
        value: ValueFunction,
        cfg: NaturalGradientConfig,
        value_cfg: ValueConfig,
        total_updates: int = 1,
        collective: Collective = SINGLE,
    ) -> None:
        self.policy, self.cfg, self.collective = policy, cfg, collective
        self.updates, self.total_updates = 0, max(1, total_updates)
        self.params = [p for p in policy.parameters() if p.requires_grad]
        self.value_fitter = ValueFitter(value, value_cfg, collective)

    @property
    def max_kl(self) -> float:
        """delta_k: max_kl, or max_kl (1 - k / K) after k of K updates with the linear schedule."""
        return scheduled_lr(self.cfg.max_kl, self.cfg.kl_schedule, self.updates, self.total_updates)

    def update(self, batch: Batch, generator: torch.Generator | None = None) -> UpdateResult:
        result = self.policy_step(batch, generator)
        self.updates += 1
        result.metrics |= self.value_fitter.fit(self.policy.normalizer(batch.obs).detach(), batch, generator)
        if result.rejected is None and result.metrics.get("value_rejected"):
            result.rejected = "non-finite value update"
        return result

    def take_step(
        self, full_step: Tensor, evaluate: Callable[[], tuple[float, float]], surrogate_before: float
    ) -> LineSearchResult:
        """TRPO: backtrack from the full step until KL <= max_kl and the surrogate improved."""
        cfg = self.cfg
        assert isinstance(cfg, TRPOConfig)
        return backtracking_line_search(
            self.params,
            full_step,
            evaluate,
            surrogate_before,
            self.max_kl,
            cfg.line_search_shrink,
            cfg.line_search_steps,
        )

    def policy_step(self, batch: Batch, generator: torch.Generator | None = None) -> UpdateResult:
        cfg, policy, params, collective = self.cfg, self.policy, self.params, self.collective
        obs, actions, advantages = batch.obs, batch.actions, batch.advantages
        with torch.no_grad():
            old_dist = policy.distribution(obs)
            old_dist = Normal(old_dist.loc.detach(), old_dist.scale.detach(), validate_args=False)
            old_log_prob = log_prob(old_dist, actions)
        metrics: dict[str, float] = {"entropy": entropy(old_dist).item()}

        def objective(dist: Normal, rows: Tensor | slice = slice(None)) -> Tensor:
            # L(theta) + c_H H(pi_theta): the surrogate with the optional entropy bonus
            loss = surrogate(dist, actions[rows], advantages[rows], old_log_prob[rows])
            return loss + cfg.ent_coef * entropy(dist) if cfg.ent_coef else loss

        loss = objective(policy.distribution(obs))
        g = collective.mean(flat_grad(loss, params), batch.size)  # sum_r B_r g_r / B: the whole batch's gradient
        loss = collective.mean(loss.detach(), batch.size)
        metrics["grad_norm"] = g.norm().item()
        if not torch.isfinite(g).all() or not math.isfinite(loss.item()):
            return self._rejected(metrics, "non-finite policy gradient")

        fvp_obs = obs
        if cfg.fvp_subsample < 1.0:  # Fisher-vector products on a random subset of the batch
            count = max(1, round(cfg.fvp_subsample * obs.shape[0]))
            device = generator.device if generator is not None else obs.device
            idx = torch.randperm(obs.shape[0], generator=generator, device=device)[:count].to(obs.device)
            fvp_obs = obs[idx]
        fvp = fisher_product(policy, fvp_obs, params, cfg.damping)
        if collective.active:  # sum_r B_r (F_r + d I) v / sum_r B_r = (F + d I) v over every rank's samples
            local_fvp, fvp_rows = fvp, fvp_obs.shape[0]
            fvp = lambda v: collective.mean(local_fvp(v), fvp_rows)  # noqa: E731

        scale = 1.0  # rho / full_step_signal, clipped to [0, 1]
        if cfg.full_step_signal > 0 and batch.size >= 4:
            signal, step_dir = self.signal_fraction(batch, objective, fvp, generator)  # s ~ F^-1 g
            metrics["signal_fraction"] = signal
            scale = min(1.0, max(0.0, signal / cfg.full_step_signal)) if math.isfinite(signal) else 1.0
        else:
            step_dir = conjugate_gradient(fvp, g, cfg.cg_iters, cfg.cg_tol)  # s ~ F^-1 g
        shs = step_dir.dot(fvp(step_dir))  # s^T F s
        if not (torch.isfinite(step_dir).all() and torch.isfinite(shs)):
            return self._rejected(metrics, "non-finite natural gradient")
        if shs <= 0:  # a zero gradient (CG stops at once): there is nothing to step along
            scale = 0.0
        metrics["step_scale"] = scale
        if scale <= 0.0:  # no gradient, or one indistinguishable from noise: keep the policy
            return UpdateResult(metrics | self._no_step())
        metrics["max_kl"] = self.max_kl
        full_step = scale * torch.sqrt(2.0 * self.max_kl / shs) * step_dir  # rho sqrt(2 delta_k / s^T F s) s

        def evaluate() -> tuple[float, float]:
            with torch.no_grad():
                dist = policy.distribution(obs)
                both = torch.stack([objective(dist), mean_kl(old_dist, dist)])  # [L(theta), KL(old || theta)]
                surrogate_value, kl = collective.mean(both, batch.size).tolist()
                return surrogate_value, kl

        old_params = flat_params(params)
        search = self.take_step(full_step, evaluate, loss.item())
        if not torch.isfinite(flat_params(params)).all() or not math.isfinite(search.kl):
            set_flat_params(params, old_params)
            return self._rejected(metrics, "non-finite policy update")
        return UpdateResult(
            metrics
            | {
                "line_search_accepted": float(search.accepted),
                "line_search_fraction": search.step_fraction,
                "line_search_tries": float(search.tries),
                "kl": search.kl,
                "surrogate_improvement": search.improvement,
            }
        )

    def signal_fraction(
        self,
        batch: Batch,
        objective: Callable[[Normal, Tensor], Tensor],
        fvp: Callable[[Tensor], Tensor],
        generator: torch.Generator | None,
    ) -> tuple[float, Tensor]:
        """The agreement of two independent halves' natural gradients (class docstring), in [-1, 1],
        and the natural gradient of the whole batch, (n_1 F^-1 g_1 + n_2 F^-1 g_2) / B: [P].

        rho = g_1^T F^-1 g_2 / ((g_1^T F^-1 g_1 + g_2^T F^-1 g_2) / 2), a cosine in the F^-1 metric
        (Cauchy-Schwarz bounds it by 1). With g_k = mu + n_k (signal, independent noise of one half):
        E[numerator] = mu^T F^-1 mu, E[denominator] = mu^T F^-1 mu + E[n^T F^-1 n], so rho estimates
        the signal's share of a half-batch gradient: ~1 for a clear signal, ~0 for pure noise.
        """
        first = split_halves(batch, generator)
        second = ~first
        n1, n2 = int(first.sum()), int(second.sum())
        g1 = flat_grad(objective(self.policy.distribution(batch.obs[first]), first), self.params)
        g2 = flat_grad(objective(self.policy.distribution(batch.obs[second]), second), self.params)
        if self.collective.active:  # each half is the union of every rank's half: its mean gradient and size
            g1, g2 = self.collective.mean(g1, n1), self.collective.mean(g2, n2)
            n1, n2 = (int(n) for n in self.collective.sum(torch.tensor([n1, n2], device=g1.device)).tolist())
        s1 = conjugate_gradient(fvp, g1, self.cfg.cg_iters, self.cfg.cg_tol)  # F^-1 g_1
        s2 = conjugate_gradient(fvp, g2, self.cfg.cg_iters, self.cfg.cg_tol)  # F^-1 g_2
        step_dir = (n1 * s1 + n2 * s2) / (n1 + n2)  # F^-1 g, g = (n_1 g_1 + n_2 g_2) / B
        denominator = (g1.dot(s1) + g2.dot(s2)) / 2
        rho = ((g1.dot(s2) + g2.dot(s1)) / 2 / denominator).item() if denominator > 0 else math.nan
        return rho, step_dir

    @staticmethod
    def _no_step() -> dict[str, float]:
        return {
            "kl": 0.0,
            "surrogate_improvement": 0.0,
            "line_search_accepted": 0.0,
            "line_search_fraction": 0.0,
            "line_search_tries": 0.0,
        }

    def _rejected(self, metrics: dict[str, float], why: str) -> UpdateResult:
        return UpdateResult(metrics | self._no_step(), rejected=why)

    def state_dict(self) -> dict[str, Any]:
        return {"value_optimizer": self.value_fitter.optimizer.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value_fitter.optimizer.load_state_dict(state["value_optimizer"])
        self.updates = int(state.get("updates", 0))  # checkpoints before the trust-region schedule: 0
