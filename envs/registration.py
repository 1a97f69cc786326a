"""Gymnasium registration of the native tasks (``policylab/Hopper-v0`` ...), without importing them.

Registration is all ``import envs`` does, so it must stay light: it names each
task by its Gymnasium v5 id and lets Gymnasium import the environment (torch,
MuJoCo, the task code) only when one is made. Each native task reproduces its
v5 original, episode length included, so the length registered is the
original's (``tests/envs/test_layers.py`` checks this table against
``envs.native.NATIVE_TASKS``).
"""

from __future__ import annotations

import gymnasium

NAMESPACE = "policylab"
# The Gymnasium v5 tasks that have a native version, in the order of envs.native.NATIVE_TASKS.
GYMNASIUM_TASK_IDS = (
    "Humanoid-v5",
    "Ant-v5",
    "HalfCheetah-v5",
    "Hopper-v5",
    "Walker2d-v5",
    "Swimmer-v5",
    "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5",
    "Reacher-v5",
    "Pusher-v5",
)
# Tasks of our own (no Gymnasium original): id -> episode length.
OWN_TASKS = {
    "policylab/Driving-v0": 1000,
    "policylab/DrivingThrottle-v0": 1000,
    "policylab/DrivingCamera-v0": 1000,
    "policylab/FrankaReach-v0": 100,
    "policylab/FrankaPush-v0": 200,
    "policylab/FrankaLift-v0": 200,
}
NATIVE_TASK_IDS = (*GYMNASIUM_TASK_IDS, *OWN_TASKS)
ENTRY_POINTS = "envs.native.gym_env"


def registered_id(task_id: str) -> str:
    """``Hopper-v5`` -> ``policylab/Hopper-v0``; our own tasks keep their id."""
    if task_id in OWN_TASKS:
        return task_id
    return f"{NAMESPACE}/{task_id.rsplit('-v', 1)[0]}-v0"


def register_native_tasks() -> None:
    """Register ``policylab/<Task>-v0`` for every native task, single and vector (idempotent)."""
    for task_id in NATIVE_TASK_IDS:
        env_id = registered_id(task_id)
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(
            id=env_id,
            entry_point=f"{ENTRY_POINTS}:NativeGymEnv",
            vector_entry_point=f"{ENTRY_POINTS}:NativeGymVectorEnv",
            max_episode_steps=OWN_TASKS.get(task_id) or gymnasium.spec(task_id).max_episode_steps,
            kwargs={"task_id": task_id},
        )
