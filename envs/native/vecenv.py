"""A native task as a :class:`VecEnv`: N worlds of one simulator (the ``cpu`` backend: one ``mujoco.batch``)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import mujoco
import numpy as np
import torch
from gymnasium import spaces
from tensordict import TensorDict
from torch import Tensor

from envs.config import RandomizationConfig
from envs.native.randomization import DomainRandomizer
from envs.native.simulator import Simulator, make_simulator
from envs.native.task import NativeTask
from envs.observations import Obs, finite_rows
from envs.spec import gym_space
from envs.vecenv import VecEnv

F = TypeVar("F", bound=Callable[..., Any])


def one_torch_thread(method: F) -> F:
    """Run a ``cpu``-backend method with torch on one thread, the caller's count restored after.

    ``mujoco.batch`` steps the worlds on a thread pool that uses every core.
    torch's own worker threads busy-wait for a while after each parallel
    operation, so torch work on several threads in between steps takes cores
    from the simulation's pool (and the pool's threads from torch's): measured
    on 2 cores at 128 Humanoids, the env layer ran at 0.58 x the bare
    ``mujoco.batch`` loop with torch's default threads. The per-step tensors
    (a few hundred numbers per world) gain nothing from more threads anyway.
    """

    @functools.wraps(method)
    def wrapped(self: NativeVecEnv, *args: Any, **kwargs: Any) -> Any:
        threads = torch.get_num_threads()
        if threads == 1 or self.device.type != "cpu":
            return method(self, *args, **kwargs)
        torch.set_num_threads(1)
        try:
            return method(self, *args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return wrapped  # type: ignore[return-value]


class NativeVecEnv(VecEnv):
    """N environments of a :class:`NativeTask` speaking torch; see :class:`VecEnv`.

    obs are ``dtype`` (float32 for training, float64 for parity checks)
    [N, obs_dim]; actions [N, act_dim] are applied as float64 controls, exactly
    as Gymnasium applies them. Simulations that go unstable (NaN, infinite or
    huge state) end their episode as terminated with reward 0, are reset, and
    are counted in ``unstable_resets``; the observation reported for them is
    their last finite one.

    ``simulator`` holds the ``num_envs`` worlds of ``task_cls.load_model()``
    (:func:`~envs.native.simulator.make_simulator` builds one per backend);
    without one, a ``cpu`` simulator with ``nthread`` threads is built.
    ``options`` (the task's config section) and ``evaluation`` (held-out
    variations) go to the task.
    Everything lives on the simulator's device, random draws included: they
    come from ``self.generator``, a torch generator on that device.
    """

    def __init__(
        self,
        task_cls: type[NativeTask],
        num_envs: int,
        *,
        randomization: RandomizationConfig | None = None,
        max_episode_steps: int | None = None,
        time_limit: bool = True,
        simulator: Simulator | None = None,
        nthread: int = 0,
        dtype: torch.dtype = torch.float32,
        options: Any = None,
        evaluation: bool = False,
    ) -> None:
        sim = (
            simulator
            if simulator is not None
            else make_simulator("cpu", task_cls, num_envs, nthread=nthread, options=options)
        )
        if sim.num_worlds != num_envs:
            raise ValueError(f"the simulator has {sim.num_worlds} worlds, not num_envs={num_envs}")
        model = sim.model
        self.sim = sim
        self.device = sim.device
        self.task = task_cls(model, self.device, options=options, evaluation=evaluation)
        self.num_envs = num_envs
        self.dtype = dtype
        self.dt = self.task.dt
        self.max_episode_steps = (max_episode_steps or task_cls.max_episode_steps) if time_limit else None
        seed = int(np.random.SeedSequence().generate_state(1)[0])
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.task.generator, self.task.sim = self.generator, sim
        low, high = self.task.action_bounds()
        self.action_space = spaces.Box(np.asarray(low, np.float32), np.asarray(high, np.float32), dtype=np.float32)
        cfg = randomization or RandomizationConfig()
        # latency delays the task's actions, which need not be one per actuator (the arm's joint deltas)
        act_dim = self.action_space.shape[0]
        self.randomizer = DomainRandomizer(cfg, sim, act_dim) if cfg.enabled else None
        self.elapsed = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self._all = torch.arange(num_envs, device=self.device)  # every world's index [N]
        self.unstable_resets = 0
        # [N, k]: what the reward needs from before a step; every row is set by the reset just below
        self._before = self.task.pre_step(self.sim)
        self._reset_ids(self._all)
        obs = self._observation()
        if isinstance(obs, TensorDict):
            float_name = str(torch.empty(0, dtype=dtype).numpy().dtype)  # float fields are reported in dtype
            self._observation_spec = {
                k: f if f.dtype == "uint8" else dataclasses.replace(f, dtype=float_name)
                for k, f in self.task.observation_spec(obs).items()
            }
            self.observation_space = gym_space(self._observation_spec)
        else:
            self.observation_space = spaces.Box(
                -np.inf, np.inf, (obs.shape[1],), dtype=torch.empty(0, dtype=dtype).numpy().dtype
            )
        self._last_obs = obs.clone()

    # -- episode bookkeeping ---------------------------------------------------

    def _reset_ids(self, ids: Tensor) -> None:
        """New episodes in simulations ``ids``: mj_resetData, randomize, initial state, mj_forward."""
        self.sim.reset(ids)
        if self.randomizer is not None:
            self.randomizer.on_reset(ids, self.generator)
        self._start_episodes(ids, *self.task.reset_worlds(ids, self.generator))

    def _start_episodes(self, ids: Tensor, qpos: Tensor, qvel: Tensor) -> None:
        """Write initial states into the (just reset) simulations ``ids`` and ``mj_forward`` them."""
        sim = self.sim
        sim.qpos[ids] = qpos.to(sim.qpos.dtype)  # float64 on the cpu backend, float32 on the gpu one
        sim.qvel[ids] = qvel.to(sim.qvel.dtype)
        sim.forward(ids)
        self.elapsed[ids] = 0
        self._before[ids] = self.task.pre_step(sim)[ids].to(self._before.dtype)

    @one_torch_thread
    def set_initial_state(self, ids: Tensor, qpos: Tensor, qvel: Tensor) -> Tensor:
        """Start new episodes in ``ids`` from given (qpos [k, nq], qvel [k, nv]), as Gymnasium's ``set_state``.

        Returns obs [N, obs_dim] (rows ``ids`` are the new first observations).
        """
        self.sim.reset(ids)
        self._start_episodes(ids, qpos, qvel)
        obs = self._observation()
        self._last_obs[ids] = obs[ids]
        return self._cast(obs)

    def _observation(self) -> Obs:
        """The task's observation of every world: a tensor [N, obs_dim], or a TensorDict [N] of its fields."""
        obs = self.task.observation(self.sim)
        if isinstance(obs, dict):
            return TensorDict(obs, batch_size=[self.num_envs], device=self.device)
        return obs

    def _cast(self, obs: Obs) -> Obs:
        """Float fields to ``dtype`` (images stay uint8)."""
        if isinstance(obs, TensorDict):
            return obs.apply(lambda x: x.to(self.dtype) if x.is_floating_point() else x)
        return obs.to(self.dtype)

    def _observe(self, obs: Obs) -> Obs:
        if self.randomizer is not None:
            if isinstance(obs, TensorDict):
                spec = self.observation_spec
                noisy = obs.clone()
                for key, field in spec.items():
                    if field.normalize and not field.is_image:
                        noisy[key] = self.randomizer.observe(obs[key], self.generator)
                obs = noisy
            else:
                obs = self.randomizer.observe(obs, self.generator)
        return self._cast(obs)

    # -- VecEnv ----------------------------------------------------------------

    @one_torch_thread
    def reset(self, seed: int | None = None) -> Tensor:
        if seed is not None:
            self.generator.manual_seed(int(seed))
        self._reset_ids(self._all)
        obs = self._observation()
        self._last_obs = obs.clone()
        return self._observe(obs)

    @one_torch_thread
    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        sim, task = self.sim, self.task
        action = action.detach().to(self.device, torch.float64).reshape(self.num_envs, -1)
        if self.randomizer is not None:
            action = self.randomizer.delay(action)
            self.randomizer.push(self.elapsed, task.push_dofs, self.generator)
        task.apply_action(sim, action)
        unstable = sim.step(task.frame_skip)
        self.elapsed += 1
        obs = self._observation()
        reward, terminated = task.reward(sim, self._before, action)
        # A simulation that went bad never reaches the learner: last finite obs, reward 0, episode over.
        unstable |= ~finite_rows(obs) | ~torch.isfinite(reward)
        if unstable.any():
            obs[unstable] = self._last_obs[unstable]
            reward[unstable] = 0.0
            terminated = terminated | unstable
            self.unstable_resets += int(unstable.sum())
        truncated = (
            self.elapsed >= self.max_episode_steps
            if self.max_episode_steps is not None
            else torch.zeros_like(terminated)
        )
        goal = task.truncated(sim)
        if goal is not None:
            truncated = (truncated | goal) & ~terminated
        self._before = task.pre_step(sim)
        info: dict[str, Any] = {"unstable": unstable}
        terms = task.reward_terms()
        if terms:
            info["reward_terms"] = {k: v.clone() for k, v in terms.items()}
        done = terminated | truncated
        if done.any():
            noisy = self._observe(obs)
            info["final_obs"] = noisy
            stats = task.episode_stats()
            if stats:
                info["episode_stats"] = {k: v.clone() for k, v in stats.items()}  # rows that ended are valid
            ids = done.nonzero().squeeze(1)
            self._reset_ids(ids)
            obs = self._observation()
            out = self._observe(obs)
            out[~done] = noisy[~done]  # one noise draw per step for the rows that go on
        else:
            out = self._observe(obs)
        self._last_obs = obs
        return out, reward.to(self.dtype), terminated, truncated, info

    def render(
        self, index: int = 0, camera: str | int | None = None, width: int = 640, height: int = 480
    ) -> np.ndarray:
        model, data = self.task.render_scene(self.sim, index)
        with mujoco.Renderer(model, height=height, width=width) as renderer:
            renderer.update_scene(data, camera=camera if camera is not None else -1)
            self.task.decorate_scene(renderer.scene, index)
            return renderer.render()

    def get_state(self) -> dict[str, Any]:
        return {
            "sim": self.sim.get_state(),
            "generator": self.generator.get_state(),
            "elapsed": self.elapsed.clone(),
            "before": self._before.clone(),
            "last_obs": self._last_obs.clone(),
            "unstable_resets": self.unstable_resets,
            "randomizer": None if self.randomizer is None else self.randomizer.get_state(),
            "task": self.task.get_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if state["elapsed"].shape[0] != self.num_envs:
            saved = state["elapsed"].shape[0]
            raise ValueError(f"saved state has {saved} environments, this batch has {self.num_envs}")
        if state["generator"].numel() != self.generator.get_state().numel():  # cpu and cuda generators differ
            raise ValueError(f"saved state comes from another device than this batch's ({self.device})")
        self.sim.set_state(state["sim"])
        self.generator.set_state(state["generator"])
        self.elapsed.copy_(state["elapsed"])
        self._before = state["before"].to(self.device, copy=True)
        self._last_obs = state["last_obs"].to(self.device).clone()  # a tensor or a TensorDict
        self.unstable_resets = int(state["unstable_resets"])
        if self.randomizer is not None and state.get("randomizer") is not None:
            self.randomizer.set_state(state["randomizer"])
        self.task.set_state(state.get("task") or {})

    def close(self) -> None:
        pass
