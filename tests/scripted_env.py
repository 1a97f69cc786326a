"""A scripted VecEnv for testing the glue between environment and learner without a simulator."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from envs.vecenv import VecEnv


class ScriptedVecEnv(VecEnv):
    """N environments whose rewards, terminations and truncations follow a script.

    Observation of environment n, ``k`` steps into its ``e``-th episode (e = 0, 1, ...):
    [n + 0.25 e, k, 0, ...] ([obs_dim]), so every observation says where it came from.
    The reward for the step at global time t in environment n is 1 + t + 10 n.
    ``events`` maps (t, n) to "terminated", "truncated" or "both": that step ends the
    episode; ``info["final_obs"]`` then holds the observation it ended in ([n + 0.25 e, k + 1])
    in the ended rows and NaN in every other row (undefined by the interface: must not be read).
    Actions received by ``step`` are recorded in ``received``.
    """

    def __init__(self, num_envs: int, events: dict[tuple[int, int], str], obs_dim: int = 2, act_dim: int = 1) -> None:
        self.num_envs, self.events, self.obs_dim = num_envs, dict(events), obs_dim
        self.observation_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float64)
        self.action_space = spaces.Box(-2.0, 2.0, (act_dim,), np.float32)
        self.device = torch.device("cpu")
        self.dt, self.max_episode_steps = 0.05, None
        self.t = 0
        self.episode = torch.zeros(num_envs)
        self.k = torch.zeros(num_envs)
        self.received: list[Tensor] = []

    def observe(self, episode: Tensor, k: Tensor) -> Tensor:
        obs = torch.zeros(self.num_envs, self.obs_dim)
        obs[:, 0] = torch.arange(self.num_envs) + 0.25 * episode
        obs[:, 1] = k
        return obs

    def reset(self, seed: int | None = None) -> Tensor:
        self.t = 0
        self.episode.zero_()
        self.k.zero_()
        return self.observe(self.episode, self.k)

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        assert action.shape == (self.num_envs, self.action_space.shape[0])
        self.received.append(action.clone())
        n = self.num_envs
        kinds = [self.events.get((self.t, i), "") for i in range(n)]
        terminated = torch.tensor([kind in ("terminated", "both") for kind in kinds])
        truncated = torch.tensor([kind in ("truncated", "both") for kind in kinds])
        reward = 1.0 + self.t + 10.0 * torch.arange(n, dtype=torch.float32)
        self.k += 1
        info: dict[str, Any] = {}
        done = terminated | truncated
        if done.any():
            final = torch.full((n, self.obs_dim), torch.nan)
            final[done] = self.observe(self.episode, self.k)[done]
            info["final_obs"] = final
            self.episode[done] += 1
            self.k[done] = 0
        self.t += 1
        return self.observe(self.episode, self.k), reward, terminated, truncated, info

    def render(self, index: int = 0, camera: str | int | None = None, width: int = 640, height: int = 480):
        raise NotImplementedError

    def close(self) -> None:
        pass
