"""Native tasks: Gymnasium's MuJoCo v5 tasks and our own as torch functions over a simulator (``cpu``, ``gpu``).

``NATIVE_TASKS`` (id -> task class, one per row of :mod:`envs.catalog`) is built on first use: it
imports every task family (``envs.driving.task`` ...), and those import this package's modules, so
importing a family first must not pull the table in half-way.
"""

from functools import cache
from typing import Any

from envs.catalog import NATIVE_TASK_TABLE
from envs.native.simulator import Simulator, make_simulator
from envs.native.task import NativeTask
from envs.native.vecenv import NativeVecEnv


@cache
def native_tasks() -> dict[str, type[NativeTask]]:
    """id -> task class for every row of envs.catalog (importing each task's module)."""
    return {task_id: entry.load() for task_id, entry in NATIVE_TASK_TABLE.items()}


def __getattr__(name: str) -> Any:
    if name == "NATIVE_TASKS":
        return native_tasks()
    raise AttributeError(f"module 'envs.native' has no attribute {name!r}")


__all__ = ["NATIVE_TASKS", "NativeVecEnv", "Simulator", "make_simulator", "native_tasks"]
