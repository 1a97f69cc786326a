"""dm_control suite tasks as Gymnasium environments (``dmc:domain-task``).

Observations: the task's observation dict flattened in the order its
``observation_spec()`` lists the keys, each array flattened row-major, as
float64. ``observation_names`` gives one name per entry (``key`` for a scalar,
``key[i]`` otherwise). An episode's last step is ``terminated`` when
dm_control reports discount 0 (a true end) and ``truncated`` otherwise (the
suite's time limit).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from envs.mjstate import dump_mjdata, load_mjdata


def parse_dmc_id(env_id: str) -> tuple[str, str]:
    """'dmc:walker-walk' -> ('walker', 'walk'); ValueError listing valid tasks otherwise."""
    from dm_control import suite

    name = env_id.removeprefix("dmc:")
    domain, _, task = name.partition("-")
    if (domain, task) not in suite.ALL_TASKS:
        valid = ", ".join(f"dmc:{d}-{t}" for d, t in suite.ALL_TASKS)
        raise ValueError(f"unknown dm_control task '{env_id}'; valid: {valid}")
    return domain, task


class DMCEnv(gym.Env):
    """One dm_control suite task behind Gymnasium's API."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"]}

    def __init__(
        self, domain: str, task: str, task_kwargs: dict[str, Any] | None = None, render_mode: str | None = None
    ) -> None:
        self.domain, self.task = domain, task
        self.task_kwargs = dict(task_kwargs or {})
        self.render_mode = render_mode
        self._env = self._load(seed=None)
        obs_spec = self._env.observation_spec()
        self.observation_names: list[str] = []
        for key, spec in obs_spec.items():
            size = int(np.prod(spec.shape))
            self.observation_names += [key] if spec.shape == () else [f"{key}[{i}]" for i in range(size)]
        dim = len(self.observation_names)
        self.observation_space = spaces.Box(-np.inf, np.inf, (dim,), np.float64)
        act = self._env.action_spec()
        self.action_space = spaces.Box(
            act.minimum.astype(np.float32), act.maximum.astype(np.float32), act.shape, np.float32
        )
        self.dt = float(self._env.control_timestep())
        limit = float(self._env._step_limit)
        self.max_episode_steps = int(limit) if np.isfinite(limit) else None
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.dt)}

    def _load(self, seed: int | None) -> Any:
        from dm_control import suite

        return suite.load(self.domain, self.task, task_kwargs={**self.task_kwargs, "random": seed})

    def _flatten(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in observation.values()])

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._env = self._load(seed)
        step = self._env.reset()
        return self._flatten(step.observation), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        step = self._env.step(action)
        last = step.last()
        terminated = bool(last and step.discount == 0.0)
        truncated = bool(last and not terminated)
        return self._flatten(step.observation), float(step.reward or 0.0), terminated, truncated, {}

    @property
    def model(self) -> mujoco.MjModel:
        return self._env.physics.model.ptr

    @property
    def data(self) -> mujoco.MjData:
        return self._env.physics.data.ptr

    def render(self) -> np.ndarray:
        return self._env.physics.render(height=480, width=640, camera_id=0)

    def get_sim_state(self) -> dict[str, Any]:
        _, keys, pos, has_gauss, cached = self._env.task.random.get_state()
        return {
            "mjdata": dump_mjdata(self.data),
            "task_random": {
                "keys": np.asarray(keys),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached": float(cached),
            },
            "step_count": int(self._env._step_count),
            "reset_next_step": bool(self._env._reset_next_step),
        }

    def set_sim_state(self, state: dict[str, Any]) -> None:
        load_mjdata(self.model, self.data, state["mjdata"])
        rnd = state["task_random"]
        self._env.task.random.set_state(
            ("MT19937", np.asarray(rnd["keys"], dtype=np.uint32), rnd["pos"], rnd["has_gauss"], rnd["cached"])
        )
        self._env._step_count = state["step_count"]
        self._env._reset_next_step = state["reset_next_step"]
