"""Native tasks: Gymnasium's MuJoCo v5 tasks rewritten over ``mujoco.batch`` (the ``cpu`` backend)."""

from envs.native.tasks import NATIVE_TASKS
from envs.native.vecenv import NativeVecEnv

__all__ = ["NATIVE_TASKS", "NativeVecEnv"]
