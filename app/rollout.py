"""Collecting on-policy experience from a VecEnv, and the per-environment
bookkeeping that goes with it (episode statistics, reward scaling)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from tensordict import TensorDict
from torch import Tensor

from envs import VecEnv
from envs.observations import Obs, finite_rows
from policies import GaussianPolicy, combine_moments
from policies.normalizer import Moments, local_moments


def all_finite(obs: Obs) -> bool:
    """Every float entry finite (every float field of a TensorDict)."""
    return bool(finite_rows(obs).all())


def empty_like_steps(obs: Obs, steps: int) -> Obs:
    """A buffer [steps, N, ...] for observations like ``obs`` [N, ...] (each field of a TensorDict kept)."""
    if isinstance(obs, TensorDict):
        fields = {k: torch.empty((steps, *v.shape), dtype=v.dtype, device=v.device) for k, v in obs.items()}
        return TensorDict(fields, batch_size=[steps, obs.shape[0]], device=obs.device)
    return torch.empty((steps, *obs.shape), dtype=torch.float32, device=obs.device)


@dataclass(frozen=True)
class Rollout:
    """T steps of N environments. Rewards are raw (unscaled). Dict observations are TensorDicts, each field kept."""

    obs: Obs  # [T, N, obs_dim] observation each action was taken in
    actions: Tensor  # [T, N, act_dim] sampled actions, normalized units, before clipping
    log_probs: Tensor  # [T, N] log pi_behaviour(a|s) of each action, as it was sampled
    rewards: Tensor  # [T, N]
    terminated: Tensor  # [T, N] bool
    truncated: Tensor  # [T, N] bool
    last_obs: Obs  # [N, obs_dim] observation after the last step
    final_index: Tensor  # [K, 2] (t, n) of steps where an episode was truncated
    final_obs: Obs  # [K, obs_dim] last observation of each of those episodes
    # what the environment reports beside the reward: reward_<term> (each reward term's mean per step)
    # and train_<stat> (the mean of an episode statistic, success ..., over the episodes that ended)
    env_stats: dict[str, float] = field(default_factory=dict)

    def is_finite(self) -> bool:
        return (
            all_finite(self.obs)
            and bool(torch.isfinite(self.rewards).all())
            and all_finite(self.last_obs)
            and all_finite(self.final_obs)
        )


class EpisodeTracker:
    """Undiscounted return and length of every environment's current episode."""

    def __init__(self, num_envs: int, device: torch.device | str = "cpu") -> None:
        self.returns = torch.zeros(num_envs, dtype=torch.float64, device=device)
        self.lengths = torch.zeros(num_envs, dtype=torch.long, device=device)

    def step(self, rewards: Tensor, done: Tensor) -> list[tuple[float, int]]:
        """rewards [N], done [N] -> (return, length) of each episode that ended."""
        self.returns += rewards.to(self.returns)
        self.lengths += 1
        ended: list[tuple[float, int]] = []
        if done.any():
            idx = done.nonzero().squeeze(-1)
            ended = list(zip(self.returns[idx].tolist(), self.lengths[idx].tolist(), strict=True))
            self.returns[idx] = 0.0
            self.lengths[idx] = 0
        return ended

    def state_dict(self) -> dict[str, Tensor]:
        return {"returns": self.returns.clone(), "lengths": self.lengths.clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.returns.copy_(state["returns"])
        self.lengths.copy_(state["lengths"])


class RewardScaler:
    """Scale rewards by the running std of the discounted return (not its mean).

    R_t = gamma R_{t-1} (1 - done_{t-1}) + r_t per environment; r'_t = r_t / sqrt(Var[R] + eps).
    Keeps the value targets near unit scale whatever the task's reward scale. ``moments`` gives a batch's
    moments (:data:`policies.normalizer.Moments`; default this process's): data-parallel training passes
    the ranks' merged ones, so Var[R] is over every rank's environments and all ranks scale alike.
    """

    def __init__(
        self,
        num_envs: int,
        gamma: float,
        eps: float = 1e-8,
        device: torch.device | str = "cpu",
        moments: Moments | None = None,
    ) -> None:
        self.gamma, self.eps, self.moments = gamma, eps, moments
        self.discounted = torch.zeros(num_envs, dtype=torch.float64, device=device)
        self.mean = torch.zeros((), dtype=torch.float64, device=device)
        self.var = torch.ones((), dtype=torch.float64, device=device)
        self.count = torch.zeros((), dtype=torch.float64, device=device)

    def __call__(self, rewards: Tensor, done: Tensor) -> Tensor:
        """rewards, done [T, N] -> scaled rewards [T, N]; statistics include this batch."""
        history = torch.empty(rewards.shape, dtype=torch.float64, device=rewards.device)
        running = self.discounted
        for t in range(rewards.shape[0]):
            running = self.gamma * running + rewards[t].to(torch.float64)
            history[t] = running
            running = running * (~done[t]).to(torch.float64)
        self.discounted = running
        finite = history[torch.isfinite(history)]
        # this process's returns, or (data-parallel) every rank's together (a collective: every rank calls it)
        if self.moments is not None or finite.numel() > 0:
            batch_mean, batch_var, batch_count = (self.moments or local_moments)(finite)
            if batch_count > 0:
                self.mean, self.var, self.count = combine_moments(
                    self.mean, self.var, self.count, batch_mean, batch_var, batch_count
                )
        return (rewards / torch.sqrt(self.var + self.eps)).to(rewards.dtype)

    def state_dict(self) -> dict[str, Tensor]:
        return {"discounted": self.discounted.clone(), "mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.discounted = state["discounted"].to(self.discounted)
        self.mean, self.var, self.count = (state[k].to(self.mean) for k in ("mean", "var", "count"))


def collect(
    env: VecEnv,
    policy: GaussianPolicy,
    obs: Tensor,
    steps: int,
    generator: torch.Generator,
    tracker: EpisodeTracker,
) -> tuple[Rollout, Tensor, list[tuple[float, int]]]:
    """Run the stochastic policy for ``steps`` steps of every environment.

    obs [N, obs_dim] is the current observation of each environment. Returns the
    rollout, the observation to continue from, and (return, length) of every
    episode that ended.
    """
    device = obs.device
    n = obs.shape[0]
    obs_buf = empty_like_steps(obs, steps)
    act_buf = torch.empty((steps, n, policy.act_dim), device=device)
    logp_buf = torch.empty((steps, n), device=device)
    rew_buf = torch.empty((steps, n), device=device)
    term_buf = torch.empty((steps, n), dtype=torch.bool, device=device)
    trunc_buf = torch.empty((steps, n), dtype=torch.bool, device=device)
    final_index: list[Tensor] = []
    final_obs: list[Obs] = []
    episodes: list[tuple[float, int]] = []
    # kept on the environment's device and read once after the loop (no per-step device sync):
    # per term, the sum over steps of its mean over environments; per statistic, (sum, count) over the
    # ended episodes where it is not NaN, and the count of ended episodes (all NaN: the mean is NaN)
    term_sums: dict[str, Tensor] = {}
    stat_sums: dict[str, tuple[Tensor, Tensor, Tensor]] = {}
    with torch.no_grad():
        for t in range(steps):
            action, logp_buf[t] = policy.sample_with_log_prob(obs, generator)
            next_obs, reward, terminated, truncated, info = env.step(policy.to_env_action(action).to(env.device))
            next_obs, reward = next_obs.to(device), reward.to(device)
            terminated, truncated = terminated.to(device), truncated.to(device)
            obs_buf[t], act_buf[t], rew_buf[t] = obs, action, reward
            term_buf[t], trunc_buf[t] = terminated, truncated
            if truncated.any():
                idx = truncated.nonzero().squeeze(-1)
                final_index.append(torch.stack([torch.full_like(idx, t), idx], dim=1))
                final_obs.append(info["final_obs"].to(device)[idx])
            episodes += tracker.step(reward, terminated | truncated)
            for name, value in info.get("reward_terms", {}).items():
                term_sums[name] = term_sums.get(name, 0.0) + value.double().mean()
            if "episode_stats" in info:
                ended = (terminated | truncated).to(env.device)
                for name, value in info["episode_stats"].items():
                    counted = ended & ~torch.isnan(value)
                    total, count, n_ended = stat_sums.get(name, (0.0, 0, 0))
                    total = total + torch.where(counted, value.double(), 0.0).sum()
                    stat_sums[name] = (total, count + counted.sum(), n_ended + ended.sum())
            obs = next_obs
    rollout = Rollout(
        obs=obs_buf,
        actions=act_buf,
        log_probs=logp_buf,
        rewards=rew_buf,
        terminated=term_buf,
        truncated=trunc_buf,
        last_obs=obs,
        final_index=torch.cat(final_index) if final_index else torch.empty((0, 2), dtype=torch.long, device=device),
        final_obs=torch.cat(final_obs) if final_obs else obs[:0].clone(),
        env_stats={f"reward_{k}": float(v) / steps for k, v in term_sums.items()}
        | {
            f"train_{k}": float(total) / int(count) if int(count) else math.nan
            for k, (total, count, n_ended) in stat_sums.items()
            if int(n_ended)
        },
    )
    return rollout, obs, episodes


def bootstrap_values(values: Tensor, last_values: Tensor, final_index: Tensor, final_values: Tensor) -> Tensor:
    """next_values [T, N] for :func:`gae`: V(s_{t+1}) of each step's true successor.

    values [T, N] = V(obs[t]); last_values [N] = V(last_obs); final_values [K] =
    V(final_obs) at the truncated steps final_index [K, 2]. (Rows where an
    episode terminated get the next episode's value, which GAE masks out.)
    """
    next_values = torch.cat([values[1:], last_values.unsqueeze(0)], dim=0)
    if final_index.numel():
        next_values[final_index[:, 0], final_index[:, 1]] = final_values
    return next_values
