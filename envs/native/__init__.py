"""Native tasks: Gymnasium's MuJoCo v5 tasks as torch functions over a simulator (the ``cpu`` backend).

``NATIVE_TASKS`` (the task table) is loaded on first use: it imports every task family
(``envs.driving.task`` ...), and those import this package's modules, so importing a family
first must not pull the table in half-way.
"""

from typing import Any

from envs.native.simulator import Simulator, make_simulator
from envs.native.vecenv import NativeVecEnv


def __getattr__(name: str) -> Any:
    if name == "NATIVE_TASKS":
        from envs.native.tasks import NATIVE_TASKS

        return NATIVE_TASKS
    raise AttributeError(f"module 'envs.native' has no attribute {name!r}")


__all__ = ["NATIVE_TASKS", "NativeVecEnv", "Simulator", "make_simulator"]
