"""The native tasks as Gymnasium environments (``policylab/Hopper-v0`` ...), single and vector.

Importing :mod:`envs` registers them (:mod:`envs.registration`; this module is
imported when one is made), so other libraries can train on them:

    import envs  # registers policylab/*
    env = gymnasium.make("policylab/Hopper-v0")
    vec = gymnasium.make_vec("policylab/Hopper-v0", num_envs=64)  # one mujoco.batch for all 64

Observations are float64 like Gymnasium's own MuJoCo envs; the vector env
autoresets in the same step (``info["final_obs"]``, ``info["_final_obs"]``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.catalog import NATIVE_TASK_TABLE
from envs.native.vecenv import NativeVecEnv
from envs.registration import NAMESPACE, registered_id

__all__ = ["NAMESPACE", "NativeGymEnv", "NativeGymVectorEnv", "registered_id"]


def to_numpy(obs: Any, row: int | None = None) -> Any:
    """A batch of observations (tensor [N, ...] or TensorDict [N]) as numpy: all rows, or row ``row``."""
    if isinstance(obs, torch.Tensor):
        return (obs if row is None else obs[row]).numpy()
    return {key: (value if row is None else value[row]).numpy() for key, value in obs.items()}


def _task(task_id: str) -> type:
    if task_id not in NATIVE_TASK_TABLE:
        raise ValueError(f"unknown native task '{task_id}'; native tasks: {', '.join(NATIVE_TASK_TABLE)}")
    return NATIVE_TASK_TABLE[task_id].load()


class NativeGymEnv(gymnasium.Env):
    """One environment of a native task (a batch of one simulation); episodes end through TimeLimit."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        task_id: str,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        options: Any = None,
        evaluation: bool = False,
    ) -> None:
        self.vec = NativeVecEnv(
            _task(task_id), 1, time_limit=False, nthread=1, dtype=torch.float64, options=options, evaluation=evaluation
        )
        self.observation_space = self.vec.observation_space  # unbounded, float64 like Gymnasium's
        self.action_space = self.vec.action_space
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.vec.dt)}
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode
        self.width, self.height = width, height

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        obs = self.vec.reset(seed=seed)
        return to_numpy(obs, 0), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        act = torch.as_tensor(np.asarray(action, dtype=np.float64)).reshape(1, -1)
        obs, reward, terminated, truncated, info = self.vec.step(act)
        out: dict[str, Any] = {}
        if bool(terminated[0] | truncated[0]):  # the batch already began the next episode; report this one's end
            obs = info["final_obs"]
            out = {k: float(v[0]) for k, v in info.get("episode_stats", {}).items()}
        return to_numpy(obs, 0), float(reward[0]), bool(terminated[0]), bool(truncated[0]), out

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.vec.render(0, width=self.width, height=self.height)


class NativeGymVectorEnv(VectorEnv):
    """``num_envs`` environments of a native task in one ``mujoco.batch`` (same-step autoreset)."""

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self, task_id: str, num_envs: int = 1, max_episode_steps: int | None = None, options: Any = None
    ) -> None:
        cls = _task(task_id)
        self.vec = NativeVecEnv(
            cls, num_envs, max_episode_steps=max_episode_steps, dtype=torch.float64, options=options
        )
        self.num_envs = num_envs
        self.single_observation_space = self.vec.observation_space
        self.single_action_space = self.vec.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.vec.dt)}

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        if isinstance(seed, list | tuple):
            seed = seed[0]
        super().reset(seed=seed)
        return to_numpy(self.vec.reset(seed=seed)), {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, reward, terminated, truncated, info = self.vec.step(torch.as_tensor(np.asarray(actions, np.float64)))
        out: dict[str, Any] = {}
        done = (terminated | truncated).numpy()
        if done.any():
            final = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(done):  # Gymnasium's format: an object array, None where not done
                final[i] = to_numpy(info["final_obs"], i)
            out = {"final_obs": final, "_final_obs": done}
        return to_numpy(obs), reward.numpy(), terminated.numpy(), truncated.numpy(), out
