"""The on-policy algorithm interface: the batch the runner hands over and what an update returns.

Every algorithm in ``app/algorithms`` is a class with the constructor
``(policy, value, cfg, value_cfg, total_updates, collective)`` and the methods of
:class:`Algorithm`. The runner owns what they share (discount, GAE lambda,
reward and advantage normalization: the ``advantage`` config section) and hands
each update one :class:`Batch`. With several ranks (torchrun) each holds its own batch, and the
algorithm turns every mean over samples into the mean over all ranks' through the collective
(:mod:`app.algorithms.collective`), so every rank takes the same update.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor


@dataclass(frozen=True)
class Batch:
    """One update's data, flattened over time and environments: B = T * M, index t * M + m.

    M is the number of environment columns: N for one rollout, N * (k + 1) when an
    algorithm reuses the last k rollouts (each old rollout is a block of N more
    columns, its own time axis, bootstrapped at its own end). ``time_shape`` = (T, M)
    lets an algorithm that needs the time structure view any [B] field as [T, M].
    """

    obs: Tensor  # [B, obs_dim] raw observations
    actions: Tensor  # [B, act_dim] sampled actions (normalized units, before clipping)
    log_probs: Tensor  # [B] log pi_behaviour(a|s), recorded at collection (the policy that acted)
    advantages: Tensor  # [B] GAE advantages (standardized if advantage.normalize_advantages)
    returns: Tensor  # [B] lambda-returns: value targets
    values: Tensor  # [B] V(s) before this update
    rewards: Tensor  # [B] rewards as the advantages saw them (scaled if advantage.normalize_rewards)
    next_values: Tensor  # [B] V of each step's true successor (V(final_obs) at truncations)
    terminated: Tensor  # [B] bool
    truncated: Tensor  # [B] bool: the episode was cut by its time limit (bootstrapped with next_values)
    age: Tensor  # [B] long: 0 for this iteration's rollout, k for one collected k iterations ago
    time_shape: tuple[int, int]  # (T, M)
    gamma: float = 0.99  # the discount the advantages and returns were computed with
    # The same batch rebuilt with the value function as it is now (advantages [B] and returns [B] from
    # V_phi's current predictions, standardized as the first were); None where nobody can rebuild it.
    refresh: Callable[[], Batch] | None = field(default=None, repr=False, compare=False)

    @property
    def size(self) -> int:
        return self.obs.shape[0]


@dataclass
class UpdateResult:
    """What one update did: its metrics (any names; all reach progress.csv and TensorBoard) and,
    when the update was rejected (parameters restored), why."""

    metrics: dict[str, float] = field(default_factory=dict)
    rejected: str | None = None


class Algorithm(Protocol):
    """What the runner needs of an algorithm."""

    # Past rollouts the runner keeps and passes in the batch beside the fresh one (0: on-policy only).
    reuse_rollouts: int
    # GAE lambda of the batch's advantages and returns; None: the shared advantage.gae_lambda.
    gae_lambda: float | None

    def update(self, batch: Batch, generator: torch.Generator | None = None) -> UpdateResult:
        """Update the policy (and value) from ``batch``; draw any randomness from ``generator``."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything of the algorithm's own (optimizer states, schedules) a resumed run needs."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def importance_weights(new_log_probs: Tensor, batch: Batch, cap: float, cumulative: bool) -> Tensor:
    """Truncated importance weights pi_new / pi_behaviour of each step, detached: [B].

    Per-decision (``cumulative`` False): w_t = min(cap, rho_t), rho_t = pi_new(a_t|s_t) / pi_b(a_t|s_t),
    the first-order form of the off-policy gradient (seed 004). ``cumulative``: w_t = min(cap, prod_{t'<=t}
    rho_t') over the steps of the same episode within the rollout, the causal weights of the seed's
    derivation (past actions' ratios weight the gradient at t; future ones are dropped). With the behaviour
    policy equal to the current one every weight is 1.
    """
    log_rho = (new_log_probs - batch.log_probs).detach()
    if cumulative:
        steps, cols = batch.time_shape
        log_rho = log_rho.view(steps, cols)
        done = (batch.terminated | batch.truncated).view(steps, cols)
        running = torch.zeros_like(log_rho[0])
        out = torch.empty_like(log_rho)
        for t in range(steps):  # log prod over the episode so far; restarts after an episode ends
            running = running + log_rho[t]
            out[t] = running
            running = torch.where(done[t], torch.zeros_like(running), running)
        log_rho = out.reshape(-1)
    return torch.exp(log_rho).clamp(max=cap)


def policy_gradient_loss(new_log_probs: Tensor, advantages: Tensor, weights: Tensor | None = None) -> Tensor:
    """-(1/B) sum_t w_t log pi(a_t|s_t) A_t: its gradient is minus the (importance-weighted) policy gradient.

    new_log_probs [B] with graph, advantages [B], weights [B] detached (None: on-policy, all 1).
    """
    terms = new_log_probs * advantages.detach()
    if weights is not None:
        terms = terms * weights.detach()
    return -terms.mean()


def scheduled_lr(lr: float, schedule: str, updates: int, total_updates: int) -> float:
    """lr_0, or lr_0 (1 - k / K) after k of K updates for the ``linear`` schedule (never quite 0)."""
    if schedule == "linear":
        return lr * max(1.0 - updates / total_updates, 1.0 / total_updates)
    return lr


def standardize(x: Tensor) -> Tensor:
    """(x - mean) / std over all entries; only centred where there is no spread to divide by.

    A single entry, or entries equal up to rounding (std <= 1e-6 max |x|), are only centred: dividing
    their rounding noise by its own tiny std would turn a batch that carries no information into
    unit-size advantages of one sign.
    """
    centred = x - x.mean()
    if x.numel() < 2:
        return centred
    std = x.std()
    if std <= 1e-6 * x.abs().max().clamp_min(1e-8):
        return centred
    return centred / std
