"""Any Gymnasium environment (or dm_control suite task) as a torch :class:`VecEnv`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import TimeLimit
from torch import Tensor

from envs.dmc import DMCEnv, parse_dmc_id
from envs.mjstate import dump_mjdata, load_mjdata, rng_from_state, rng_state
from envs.vecenv import VecEnv


class ResumableEnv(gym.Wrapper):
    """Outermost wrapper: exposes get/set of the full simulation state for exact resume.

    Reachable through ``VectorEnv.call`` for both sync and async vectorization.
    Supports MuJoCo-based Gymnasium environments and :class:`DMCEnv`.
    """

    def __init__(self, env: gym.Env, index: int) -> None:
        super().__init__(env)
        self.index = index

    def _chain(self) -> list[gym.Env]:
        chain, env = [], self.env
        while isinstance(env, gym.Wrapper):
            chain.append(env)
            env = env.env
        return [*chain, env]

    def get_sim_state(self) -> dict[str, Any]:
        *wrappers, base = self._chain()
        state: dict[str, Any] = {}
        for w in wrappers:
            if isinstance(w, TimeLimit):
                state["elapsed_steps"] = int(w._elapsed_steps or 0)
        if isinstance(base, DMCEnv):
            state["dmc"] = base.get_sim_state()
        elif isinstance(getattr(base, "data", None), mujoco.MjData):
            state["mjdata"] = dump_mjdata(base.data)
        else:
            raise NotImplementedError(f"cannot save the state of {type(base).__name__}")
        state["np_random"] = rng_state(base.np_random)
        return state

    def set_sim_state(self, states: list[dict[str, Any]]) -> None:
        state = states[self.index]
        *wrappers, base = self._chain()
        for w in wrappers:
            if isinstance(w, TimeLimit) and "elapsed_steps" in state:
                w._elapsed_steps = state["elapsed_steps"]
        if "dmc" in state:
            base.set_sim_state(state["dmc"])
        else:
            load_mjdata(base.model, base.data, state["mjdata"])
        base.np_random = rng_from_state(state["np_random"])


def make_env_fn(
    env_id: str, index: int, env_kwargs: dict[str, Any], max_episode_steps: int | None
) -> Callable[[], gym.Env]:
    """A constructor for one wrapped environment (picklable for async vectorization)."""

    def make() -> gym.Env:
        if env_id.startswith("dmc:"):
            domain, task = parse_dmc_id(env_id)
            env: gym.Env = DMCEnv(domain, task, task_kwargs=env_kwargs)
            if max_episode_steps is not None:
                env = TimeLimit(env, max_episode_steps)
        else:
            kwargs = dict(env_kwargs)
            if max_episode_steps is not None:
                kwargs["max_episode_steps"] = max_episode_steps
            env = gym.make(env_id, **kwargs)
        return ResumableEnv(env, index)

    return make


class GymVecEnv(VecEnv):
    """Gymnasium vector env (same-step autoreset) converted to and from torch.

    obs are float32 [N, obs_dim] on the CPU; actions are read as float64.
    """

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        vectorization: str = "sync",
        env_kwargs: dict[str, Any] | None = None,
        max_episode_steps: int | None = None,
    ) -> None:
        fns = [make_env_fn(env_id, i, env_kwargs or {}, max_episode_steps) for i in range(num_envs)]
        vector_cls = AsyncVectorEnv if vectorization == "async" else SyncVectorEnv
        self.env_id = env_id
        self.envs = vector_cls(fns, autoreset_mode=AutoresetMode.SAME_STEP)
        self.num_envs = num_envs
        obs_space, act_space = self.envs.single_observation_space, self.envs.single_action_space
        if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) != 1:
            raise ValueError(f"{env_id}: observations must be a flat Box, got {obs_space}")
        if not isinstance(act_space, spaces.Box) or len(act_space.shape) != 1:
            raise ValueError(f"{env_id}: actions must be a flat Box (continuous control), got {act_space}")
        self.observation_space, self.action_space = obs_space, act_space
        self.device = torch.device("cpu")
        # Read static properties from an in-process copy: with async vectorization an
        # attribute a worker's env lacks would shut that worker down.
        probe = fns[0]()
        base = probe.unwrapped
        fps = probe.metadata.get("render_fps")
        self.dt = float(getattr(base, "dt", None) or (1.0 / fps if fps else 1.0))
        limit = getattr(probe.spec, "max_episode_steps", None) if probe.spec is not None else None
        self.max_episode_steps: int | None = max_episode_steps or limit or getattr(base, "max_episode_steps", None)
        self.observation_names: list[str] | None = getattr(base, "observation_names", None)
        probe.close()

    def _obs(self, obs: np.ndarray) -> Tensor:
        return torch.as_tensor(np.asarray(obs, dtype=np.float32))

    def reset(self, seed: int | None = None) -> Tensor:
        obs, _ = self.envs.reset(seed=seed)
        return self._obs(obs)

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        act = action.detach().to("cpu", torch.float64).numpy()
        obs, reward, terminated, truncated, info = self.envs.step(act)
        out: dict[str, Any] = {}
        done = np.logical_or(terminated, truncated)
        if done.any():
            final = np.zeros_like(obs, dtype=np.float32)
            mask = info.get("_final_obs", done)
            for i in np.flatnonzero(mask):
                final[i] = info["final_obs"][i]
            out["final_obs"] = torch.from_numpy(final)
        return (
            self._obs(obs),
            torch.as_tensor(np.asarray(reward, dtype=np.float32)),
            torch.as_tensor(np.asarray(terminated, dtype=bool)),
            torch.as_tensor(np.asarray(truncated, dtype=bool)),
            out,
        )

    def render(
        self, index: int = 0, camera: str | int | None = None, width: int = 640, height: int = 480
    ) -> np.ndarray:
        if not isinstance(self.envs, SyncVectorEnv):
            raise NotImplementedError("render needs task.vectorization: sync")
        base = self.envs.envs[index].unwrapped
        model, data = base.model, base.data
        with mujoco.Renderer(model, height=height, width=width) as renderer:
            renderer.update_scene(data, camera=camera if camera is not None else -1)
            return renderer.render()

    def get_state(self) -> dict[str, Any]:
        return {"envs": list(self.envs.call("get_sim_state"))}

    def set_state(self, state: dict[str, Any]) -> None:
        if len(state["envs"]) != self.num_envs:
            raise ValueError(f"saved state has {len(state['envs'])} environments, this batch has {self.num_envs}")
        self.envs.call("set_sim_state", state["envs"])

    def close(self) -> None:
        self.envs.close()
