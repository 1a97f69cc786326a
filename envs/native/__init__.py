"""Native tasks: Gymnasium's MuJoCo v5 tasks as torch functions over a simulator (the ``cpu`` backend)."""

from envs.native.simulator import Simulator, make_simulator
from envs.native.tasks import NATIVE_TASKS
from envs.native.vecenv import NativeVecEnv

__all__ = ["NATIVE_TASKS", "NativeVecEnv", "Simulator", "make_simulator"]
