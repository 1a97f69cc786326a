"""Gymnasium registration of the native tasks (``policylab/Hopper-v0`` ...), without importing them.

Registration is all ``import envs`` does, so it must stay light: it reads each
task's id and episode length from :mod:`envs.catalog` and lets Gymnasium import
the environment (torch, MuJoCo, the task code) only when one is made. A native
version of a Gymnasium v5 task reproduces its original, episode length included,
so the length registered is the original's; a task of our own registers its own.
"""

from __future__ import annotations

import gymnasium

from envs.catalog import NATIVE_TASK_TABLE, OWN_TASK_IDS

NAMESPACE = "policylab"
ENTRY_POINTS = "envs.native.gym_env"


def registered_id(task_id: str) -> str:
    """``Hopper-v5`` -> ``policylab/Hopper-v0``; our own tasks keep their id."""
    if task_id in OWN_TASK_IDS:
        return task_id
    return f"{NAMESPACE}/{task_id.rsplit('-v', 1)[0]}-v0"


def register_native_tasks() -> None:
    """Register ``policylab/<Task>-v0`` for every native task, single and vector (idempotent)."""
    for task_id, entry in NATIVE_TASK_TABLE.items():
        env_id = registered_id(task_id)
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(
            id=env_id,
            entry_point=f"{ENTRY_POINTS}:NativeGymEnv",
            vector_entry_point=f"{ENTRY_POINTS}:NativeGymVectorEnv",
            max_episode_steps=entry.episode_length,
            kwargs={"task_id": task_id},
        )


__all__ = ["NAMESPACE", "register_native_tasks", "registered_id"]
