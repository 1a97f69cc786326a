"""Native tasks: Gymnasium's MuJoCo v5 tasks and our own as torch functions over a simulator (``cpu``, ``gpu``)."""

from envs.catalog import NATIVE_TASK_TABLE
from envs.native.simulator import Simulator, make_simulator
from envs.native.task import NativeTask
from envs.native.vecenv import NativeVecEnv

# id -> task class, for every row of envs.catalog (importing each task's module).
NATIVE_TASKS: dict[str, type[NativeTask]] = {task_id: entry.load() for task_id, entry in NATIVE_TASK_TABLE.items()}

__all__ = ["NATIVE_TASKS", "NativeVecEnv", "Simulator", "make_simulator"]
