"""The simulation side: the VecEnv interface and the backends that implement it.

``import envs`` only registers the native tasks with Gymnasium; it imports
neither torch nor MuJoCo nor anything of ``app`` (the environments are built,
and their modules imported, by :func:`make`). ``app.config`` imports this
package for the task's config types, and MuJoCo's rendering backend is chosen
after the config loads, before MuJoCo is imported.
"""

from __future__ import annotations

import difflib
import os
from typing import TYPE_CHECKING, Any

# Headless rendering by default (dm_control and mujoco.Renderer read this at import).
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium

from envs.catalog import NATIVE_TASK_IDS, NATIVE_TASK_TABLE, OWN_TASK_IDS
from envs.config import RandomizationConfig, TaskConfig
from envs.errors import PolicylabError, TaskError
from envs.placement import Placement, resolve_placement
from envs.placement import resolve_backend as resolve_placement_backend
from envs.registration import register_native_tasks
from envs.vecenv import VecEnv

if TYPE_CHECKING:
    from envs.native.simulator import Simulator

register_native_tasks()  # policylab/Hopper-v0 ... for other libraries


def placement_of(task: TaskConfig, device: str = "auto") -> Placement:
    """Where a run of ``task`` lives with ``train.device`` = ``device``: see :mod:`envs.placement`."""
    return resolve_placement(task.backend, task.id in NATIVE_TASK_IDS, device)


def resolve_backend(task: TaskConfig, device: str = "auto") -> str:
    """The backend ``task`` runs on: ``task.backend``, with ``auto`` resolved (see :mod:`envs.placement`)."""
    return resolve_placement_backend(task.backend, task.id in NATIVE_TASK_IDS, device)[0]


def make(
    task: TaskConfig, num_envs: int | None = None, evaluation: bool = False, where: Placement | None = None
) -> VecEnv:
    """Build the VecEnv a task config describes (``num_envs`` overrides the config's).

    ``evaluation``: the held-out variations of a task that has them (the driving tasks' tracks).
    ``where``: the run's placement (default: :func:`placement_of` with ``train.device`` auto); a gpu
    simulator is built on its device.
    """
    n = num_envs or task.num_envs
    where = where or placement_of(task)
    if where.backend in ("cpu", "gpu"):
        return make_native(task, n, where.backend, evaluation=evaluation, device=where.simulator_device)
    if task.randomization.enabled:
        raise TaskError(
            f"task {task.name or task.id}: task.randomization needs task.backend: cpu or gpu (the native tasks); "
            "the gym backend cannot change the simulation"
        )
    from envs.gym_adapter import GymVecEnv

    check_env_id(task.id)
    try:
        return GymVecEnv(
            task.id,
            n,
            vectorization=task.vectorization,
            env_kwargs=task.env_kwargs,
            max_episode_steps=task.max_episode_steps,
        )
    except TaskError:
        raise
    except (TypeError, ValueError) as exc:
        raise TaskError(f"task {task.name or task.id}: cannot build environment {task.id}: {exc}") from None


def make_native(
    task: TaskConfig, num_envs: int, backend: str | None = None, evaluation: bool = False, device: str | None = None
) -> VecEnv:
    """A native backend (``backend``, default ``task.backend``): the native version of ``task.id`` on its simulator.

    ``device``: the gpu simulator's Warp device (``cuda:N`` or ``cpu``; None: the gpu backend's default).
    """
    backend = backend or task.backend
    if task.id not in NATIVE_TASK_IDS:
        raise TaskError(
            f"task {task.name or task.id}: task.backend {backend} has no native version of '{task.id}'; "
            f"native tasks: {', '.join(NATIVE_TASK_IDS)}; use task.backend: gym for other environments"
        )
    if task.env_kwargs:
        raise TaskError(
            f"task {task.name or task.id}: task.env_kwargs ({', '.join(task.env_kwargs)}) is only read by "
            "task.backend: gym; the native tasks use Gymnasium v5's defaults"
        )
    from envs.native import NativeVecEnv, make_simulator

    task_cls = NATIVE_TASK_TABLE[task.id].load()
    try:
        sim: Simulator = make_simulator(
            backend,
            task_cls,
            num_envs,
            nthread=task.num_threads,
            nconmax=task.nconmax,
            njmax=task.njmax,
            device=device,
            options=task_options(task),
        )
    except ImportError as exc:
        raise TaskError(
            f"task {task.name or task.id}: task.backend gpu cannot import {exc.name}; "
            "pip install -e '.[gpu]', or use task.backend: cpu"
        ) from None
    except (NotImplementedError, ValueError) as exc:
        if backend != "gpu":
            raise
        # MuJoCo Warp refuses a model feature (put_model raises on what it does not implement)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TaskError(
            f"task {task.name or task.id}: task.backend {backend} cannot run {task.id}: {first}; use task.backend: cpu"
        ) from None
    return NativeVecEnv(
        task_cls,
        num_envs,
        simulator=sim,
        randomization=task.randomization,
        max_episode_steps=task.max_episode_steps,
        options=task_options(task),
        evaluation=evaluation,
    )


def task_options(task: TaskConfig) -> Any:
    """The config section a native task reads (``task.driving`` for the driving tasks), or None."""
    key = NATIVE_TASK_TABLE[task.id].options_key if task.id in NATIVE_TASK_TABLE else None
    return getattr(task, key) if key else None


def make_single(task: TaskConfig, evaluation: bool = False) -> gymnasium.Env:
    """One Gymnasium env of the task (for rendering, export checks): the same constructor as each VecEnv member.

    Our own tasks (no Gymnasium original) are their native version with the config's options.
    """
    from envs.gym_adapter import make_env_fn

    if task.id in OWN_TASK_IDS:
        from envs.native.gym_env import NativeGymEnv

        env: gymnasium.Env = NativeGymEnv(task.id, options=task_options(task), evaluation=evaluation)
        return gymnasium.wrappers.TimeLimit(env, task.max_episode_steps or NATIVE_TASK_TABLE[task.id].episode_length)
    check_env_id(task.id)
    return make_env_fn(task.id, 0, task.env_kwargs, task.max_episode_steps)()


def is_env_id(env_id: str) -> bool:
    """Whether ``env_id`` names an environment rather than a config: a Gymnasium id or ``dmc:...``."""
    return env_id.startswith("dmc:") or env_id in gymnasium.registry


def check_env_id(env_id: str) -> None:
    """Raise TaskError unless ``env_id`` is a registered Gymnasium id or a dm_control task."""
    if not env_id:
        raise TaskError("task.id is empty; set it to a Gymnasium id (Hopper-v5) or dmc:domain-task")
    if env_id.startswith("dmc:"):
        from envs.dmc import parse_dmc_id

        try:
            parse_dmc_id(env_id)
        except ValueError as exc:
            raise TaskError(str(exc)) from None
        return
    if not is_env_id(env_id):
        close = difflib.get_close_matches(env_id, list(gymnasium.registry), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise TaskError(f"unknown Gymnasium id '{env_id}'{hint}")


__all__ = [
    "Placement",
    "PolicylabError",
    "RandomizationConfig",
    "TaskConfig",
    "TaskError",
    "VecEnv",
    "check_env_id",
    "is_env_id",
    "make",
    "make_native",
    "make_single",
    "placement_of",
    "resolve_backend",
]
