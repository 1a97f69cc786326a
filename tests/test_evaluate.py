"""Deterministic evaluation: exactly the requested episodes, fair per-environment quotas, seeded."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces

import envs
from app.evaluate import evaluate_policy, evaluation_envs
from envs import TaskConfig, VecEnv
from policies import GaussianPolicy
from tests.devices import DEVICES

PENDULUM = TaskConfig(name="inverted_pendulum", id="InvertedPendulum-v5", backend="cpu", num_threads=1)


def quotas(episodes: int, n: int) -> list[int]:
    """Environment i's share: floor(episodes / n), one more for the first episodes % n."""
    return [episodes // n + (1 if i < episodes % n else 0) for i in range(n)]


class Recording(VecEnv):
    """Wraps a VecEnv and records (environment, return, length) of every episode that ends, in order."""

    def __init__(self, env: VecEnv) -> None:
        self.env = env
        self.num_envs, self.device, self.dt = env.num_envs, env.device, env.dt
        self.observation_space, self.action_space = env.observation_space, env.action_space
        self.max_episode_steps = env.max_episode_steps
        self.ended: list[tuple[int, float, int]] = []
        self.seeds: list[int | None] = []

    def reset(self, seed: int | None = None) -> torch.Tensor:
        self.seeds.append(seed)
        self.running = torch.zeros(self.num_envs, dtype=torch.float64)
        self.lengths = torch.zeros(self.num_envs, dtype=torch.long)
        return self.env.reset(seed=seed)

    def step(self, action: torch.Tensor) -> tuple[Any, ...]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.running += reward.double()
        self.lengths += 1
        for i in (terminated | truncated).nonzero().flatten().tolist():
            self.ended.append((i, float(self.running[i]), int(self.lengths[i])))
            self.running[i], self.lengths[i] = 0.0, 0
        return obs, reward, terminated, truncated, info

    def render(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return self.env.render(*args, **kwargs)

    def close(self) -> None:
        self.env.close()


class UnequalEpisodes(VecEnv):
    """Environment i's episodes last i + 1 steps; its j-th episode pays 100 i + j per step.

    The short episodes of environment 0 would fill any shared count first: only per-environment
    quotas give each environment its share.
    """

    def __init__(self, num_envs: int) -> None:
        self.num_envs, self.device, self.dt, self.max_episode_steps = num_envs, torch.device("cpu"), 0.1, None
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, seed: int | None = None) -> torch.Tensor:
        self.k = torch.zeros(self.num_envs, dtype=torch.long)
        self.episode = torch.zeros(self.num_envs, dtype=torch.long)
        return torch.zeros(self.num_envs, 2)

    def step(self, action: torch.Tensor) -> tuple[Any, ...]:
        index = torch.arange(self.num_envs)
        reward = (100 * index + self.episode).float()
        self.k += 1
        truncated = self.k == index + 1
        self.k[truncated] = 0
        self.episode[truncated] += 1
        info = {"final_obs": torch.zeros(self.num_envs, 2)} if truncated.any() else {}
        return torch.zeros(self.num_envs, 2), reward, torch.zeros_like(truncated), truncated, info

    def render(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass


def random_policy(env: VecEnv, seed: int = 0) -> GaussianPolicy:
    """A small untrained policy: near-zero actions, so the pole falls at a pace set by the initial state
    (InvertedPendulum episodes of about 20 to 45 steps that differ with the seed)."""
    torch.manual_seed(seed)
    space = env.action_space
    return GaussianPolicy(env.observation_space.shape[0], space.shape[0], space.low, space.high, (8,)).eval()


@pytest.mark.parametrize("num_envs,episodes", [(1, 3), (2, 5), (5, 5), (5, 12), (7, 5), (7, 10)])
def test_exactly_the_requested_episodes_each_environment_its_share(num_envs, episodes):
    env = Recording(envs.make(PENDULUM, num_envs=num_envs))
    try:
        result = evaluate_policy(random_policy(env), env, episodes, seed=11)
    finally:
        env.close()
    assert len(result.returns) == len(result.lengths) == episodes
    assert env.seeds == [11]
    # environment i contributes its first quota_i episodes (ceil or floor of episodes / num_envs), in the
    # order they ended; any later episode of an environment that already met its quota is left out
    share, counted = quotas(episodes, num_envs), [0] * num_envs
    expected = []
    for i, ret, length in env.ended:
        if counted[i] < share[i]:
            counted[i] += 1
            expected.append((ret, length))
    assert counted == share
    assert list(zip(result.returns, result.lengths, strict=True)) == expected
    assert all(1 <= n <= env.max_episode_steps for n in result.lengths)


@pytest.mark.parametrize("num_envs,episodes", [(3, 7), (4, 2), (1, 4)])
def test_short_episodes_do_not_crowd_out_long_ones(num_envs, episodes):
    result = evaluate_policy(random_policy(UnequalEpisodes(num_envs)), UnequalEpisodes(num_envs), episodes, seed=0)
    share = quotas(episodes, num_envs)
    expected = sorted((100 * i + j) * (i + 1) for i in range(num_envs) for j in range(share[i]))
    assert sorted(result.returns) == expected
    assert sorted(result.lengths) == sorted(i + 1 for i in range(num_envs) for _ in range(share[i]))


@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_same_result_and_another_seed_other_episodes(device):
    env = envs.make(PENDULUM, num_envs=3)
    other = envs.make(PENDULUM, num_envs=3)
    try:
        policy = random_policy(env).to(device)  # the environments stay on the CPU
        first = evaluate_policy(policy, env, 5, seed=123)
        again = evaluate_policy(policy, env, 5, seed=123)  # the same environments, after other episodes
        fresh = evaluate_policy(policy, other, 5, seed=123)  # new environments
        different = evaluate_policy(policy, env, 5, seed=124)
    finally:
        env.close()
        other.close()
    assert first.returns == again.returns == fresh.returns
    assert first.lengths == again.lengths == fresh.lengths
    assert different.returns != first.returns


def test_evaluation_envs_never_more_than_episodes():
    assert [evaluation_envs(k) for k in (1, 2, 5, 16, 40)] == [1, 2, 5, 16, 16]
