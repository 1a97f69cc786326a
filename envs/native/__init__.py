"""Native tasks: Gymnasium's MuJoCo v5 tasks as torch functions over a simulator (the ``cpu`` backend).

``NATIVE_TASKS`` is loaded on first use: the task families outside this package (``envs.manipulation``)
build on ``envs.native.task`` and are listed by ``envs.native.tasks``, so importing one of them first
must not need the list.
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
