"""The native tasks, each declared once: its id, its class, its episode length and its config section.

Light on purpose (no torch, no MuJoCo): ``import envs`` registers every task from
this table with Gymnasium (:mod:`envs.registration`), ``TaskConfig`` checks ids
against it, and :func:`envs.make` reads a task's config section from it and imports
its class only when the task is built. A task class takes its episode length and
config section from its row (``NativeTask.__init_subclass__``), so a task is added
with its class and one row here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import gymnasium

if TYPE_CHECKING:
    from envs.native.task import NativeTask


@dataclass(frozen=True)
class NativeTaskEntry:
    """One native task. A Gymnasium original it reproduces keeps that original's episode length;
    a task of our own states its own (``max_episode_steps``), which is what makes it ours."""

    id: str  # the Gymnasium v5 id it reproduces (Hopper-v5), or our own policylab/<Name>-v0
    entry_point: str  # "module:Class" of its NativeTask, imported only when the task is built
    max_episode_steps: int | None = None  # a task of our own: its episode length (None: the original's)
    options_key: str | None = None  # the TaskConfig section the task reads (task.driving ...), if any

    @property
    def own(self) -> bool:
        """A task of our own (no Gymnasium original behind it)."""
        return self.max_episode_steps is not None

    @property
    def episode_length(self) -> int:
        """Steps before the time limit truncates an episode: ours, or the Gymnasium original's."""
        if self.max_episode_steps is not None:
            return self.max_episode_steps
        return int(gymnasium.spec(self.id).max_episode_steps)

    def load(self) -> type[NativeTask]:
        """The task's class (imports torch, MuJoCo and the task's module)."""
        module, _, name = self.entry_point.partition(":")
        cls: type[NativeTask] = getattr(importlib.import_module(module), name)
        if cls.gym_id != self.id:
            raise TypeError(f"{self.entry_point} is the task {cls.gym_id!r}, not {self.id!r}")
        return cls


NATIVE_TASK_TABLE: dict[str, NativeTaskEntry] = {
    entry.id: entry
    for entry in (
        # Gymnasium's MuJoCo v5 tasks, reproduced (envs/native/tasks.py, checked by tests/envs/test_native_parity.py)
        NativeTaskEntry("Humanoid-v5", "envs.native.tasks:Humanoid"),
        NativeTaskEntry("Ant-v5", "envs.native.tasks:Ant"),
        NativeTaskEntry("HalfCheetah-v5", "envs.native.tasks:HalfCheetah"),
        NativeTaskEntry("Hopper-v5", "envs.native.tasks:Hopper"),
        NativeTaskEntry("Walker2d-v5", "envs.native.tasks:Walker2d"),
        NativeTaskEntry("Swimmer-v5", "envs.native.tasks:Swimmer"),
        NativeTaskEntry("InvertedPendulum-v5", "envs.native.tasks:InvertedPendulum"),
        NativeTaskEntry("InvertedDoublePendulum-v5", "envs.native.tasks:InvertedDoublePendulum"),
        NativeTaskEntry("Reacher-v5", "envs.native.tasks:Reacher"),
        NativeTaskEntry("Pusher-v5", "envs.native.tasks:Pusher"),
        # tasks of our own
        NativeTaskEntry("policylab/Driving-v0", "envs.driving.task:Driving", 1000, "driving"),
        NativeTaskEntry("policylab/DrivingThrottle-v0", "envs.driving.task:DrivingThrottle", 1000, "driving"),
        NativeTaskEntry("policylab/DrivingCamera-v0", "envs.driving.task:DrivingCamera", 1000, "driving"),
        NativeTaskEntry("policylab/FrankaReach-v0", "envs.manipulation.task:FrankaReach", 100, "franka"),  # 2 s
        NativeTaskEntry("policylab/FrankaPush-v0", "envs.manipulation.task:FrankaPush", 200, "franka"),  # 4 s
        NativeTaskEntry("policylab/FrankaLift-v0", "envs.manipulation.task:FrankaLift", 200, "franka"),  # 4 s
    )
}
NATIVE_TASK_IDS = tuple(NATIVE_TASK_TABLE)
# The Gymnasium v5 tasks that have a native version, and the tasks of our own.
GYMNASIUM_TASK_IDS = tuple(entry.id for entry in NATIVE_TASK_TABLE.values() if not entry.own)
OWN_TASK_IDS = tuple(entry.id for entry in NATIVE_TASK_TABLE.values() if entry.own)


__all__ = ["GYMNASIUM_TASK_IDS", "NATIVE_TASK_IDS", "NATIVE_TASK_TABLE", "OWN_TASK_IDS", "NativeTaskEntry"]
