"""A Gymnasium MuJoCo task as a robot controller runs it: the task's own v5 env is the simulator and the reward.

:class:`GymController` follows the contract of ``envs/deploy.py``. The controller's observation is
rebuilt from the simulator's state (``MjData``) by the layout ``policy.json`` carries
(``envs/obs_layout.py``), as a robot integrator would from its state estimate; the reference is the
env's own observation. No torch, no ``app``: deploy-sim runs it in an isolated process.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from envs.episode_stats import episode_means, stack_episodes
from envs.obs_layout import build_observation

UNLIMITED = 2**62  # steps, for an env without a time limit (it ends its episodes itself)


class GymController:
    """``gym.make(policy.json's env_id)`` stepped with the policy's actions; observations rebuilt from MjData."""

    # max |layout's observation - env's observation|: the same numbers read from the same MjData
    # (0.0 in tests/test_export.py); the margin covers a transform (sin, cos) computed in another order
    obs_tolerance: ClassVar[float] = 1e-6

    def __init__(self, env: gym.Env, layout: list[dict[str, Any]], seed: int) -> None:
        self.env, self.layout, self.seed = env, layout, seed
        self.data = env.unwrapped.data
        self.max_episode_steps = int(getattr(env.spec, "max_episode_steps", None) or UNLIMITED)
        self._obs = np.zeros(0)

    @classmethod
    def from_export(cls, meta: dict[str, Any], seed: int) -> GymController:
        """The env ``meta["env_id"]`` with its ``env_kwargs`` and episode length; refuses a task without a layout."""
        layout = meta["observation"].get("layout")
        if layout is None or str(meta["env_id"]).startswith("dmc:"):
            raise ValueError(
                f"task {meta['task']} ({meta['env_id']}): policy.json has no observation layout; "
                "deploy-sim supports Gymnasium MuJoCo tasks"
            )
        kwargs = dict(meta.get("env_kwargs") or {})
        if meta.get("max_episode_steps"):
            kwargs["max_episode_steps"] = meta["max_episode_steps"]
        return cls(gym.make(meta["env_id"], **kwargs), layout, seed)

    def reset(self, episode: int) -> None:
        """The env's reset with seed ``seed + episode``."""
        obs, _ = self.env.reset(seed=self.seed + episode)
        self._obs = np.asarray(obs, dtype=np.float64)

    def observation(self) -> np.ndarray:
        """[obs_dim] rebuilt from MjData by policy.json's layout."""
        return build_observation(self.data, self.layout)

    def reference_observation(self) -> np.ndarray:
        """[obs_dim]: the env's own observation of the current state."""
        return self._obs

    def step(self, action: np.ndarray) -> tuple[float, bool]:
        """One env step: (the env's reward, terminated or truncated)."""
        obs, reward, terminated, truncated, _ = self.env.step(action)
        self._obs = np.asarray(obs, dtype=np.float64)
        return float(reward), bool(terminated or truncated)

    def episode_stats(self) -> dict[str, float]:
        """Gymnasium's tasks report no statistics besides the return."""
        return {}

    def summarize(self, episodes: list[dict[str, float]]) -> dict[str, float]:
        return episode_means(stack_episodes(episodes))

    def summary_lines(self, summary: dict[str, float], reference: dict[str, Any]) -> list[str]:
        return []


__all__ = ["GymController"]
