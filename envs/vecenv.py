"""The batched environment interface every backend implements (see DESIGN.md)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces

from envs.spec import ObservationSpec, flat_spec

if TYPE_CHECKING:  # annotations only: ``import envs`` does not import torch
    import torch
    from torch import Tensor


class VecEnv(ABC):
    """A batch of ``num_envs`` environments speaking torch tensors.

    ``step`` resets ended environments itself: the returned ``obs`` row is then
    the new episode's first observation and ``info["final_obs"]`` [N, obs_dim]
    holds the last observation of each ended episode (rows where
    ``terminated | truncated``; other rows are undefined). Termination (a true
    end: no bootstrap) and truncation (a time limit: bootstrap with
    V(final_obs)) are reported separately.
    """

    num_envs: int
    observation_space: spaces.Space  # one environment's: a Box, or a Dict for dict observations
    action_space: spaces.Box  # one environment's, in actuator units
    device: torch.device
    dt: float  # control period in seconds
    max_episode_steps: int | None
    unstable_resets: int = 0  # simulations reset because they went unstable, since construction

    @property
    def observation_spec(self) -> ObservationSpec:
        """The observed fields (a flat Box: one field ``obs``); dict observations are TensorDicts [N]."""
        spec = getattr(self, "_observation_spec", None)
        return spec if spec is not None else flat_spec(int(self.observation_space.shape[0]))

    @abstractmethod
    def reset(self, seed: int | None = None) -> Tensor:
        """Reset every environment; returns obs [N, obs_dim] (float32)."""

    @abstractmethod
    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        """action [N, act_dim] -> obs [N, obs_dim], reward [N], terminated [N] (bool), truncated [N] (bool), info."""

    @abstractmethod
    def render(
        self, index: int = 0, camera: str | int | None = None, width: int = 640, height: int = 480
    ) -> np.ndarray:
        """An RGB frame of environment ``index``: uint8 [H, W, 3]."""

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue the batch exactly (simulator, RNG, step counters)."""
        raise NotImplementedError(f"{type(self).__name__} cannot save its state")

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""
        raise NotImplementedError(f"{type(self).__name__} cannot restore its state")

    @abstractmethod
    def close(self) -> None:
        """Release simulator resources."""
