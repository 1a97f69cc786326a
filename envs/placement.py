"""Where a run lives: its simulation backend and its torch device, decided once.

Every question of the form "is there a GPU here?" is answered in this module
and nowhere else: :func:`cuda_available` (torch sees a CUDA device),
:func:`gpu_backend_missing` (mujoco-warp and warp-lang import), and
:func:`resolve_placement`, which turns ``task.backend`` and ``train.device`` into
one :class:`Placement`. The runner builds the simulator on that device and puts
the networks on the same one, and prints :meth:`Placement.describe` when a run
starts.

The rules (``task.backend`` x ``train.device``):

- ``auto`` backend: a native task runs on ``gpu`` where torch sees a CUDA device,
  mujoco-warp imports and ``train.device`` is not ``cpu``; else on ``cpu``. Any
  other environment id runs on ``gym``.
- ``auto`` device: the backend's own device. ``gpu`` -> ``cuda:0`` where torch
  sees CUDA, else Warp's CPU device; ``cpu`` and ``gym`` -> the CPU.
- An explicit device is obeyed. The ``gpu`` backend's simulator lives on that
  device: ``cuda:N``, or Warp's CPU device for ``cpu`` (slow; how the tests run
  it). The ``cpu`` and ``gym`` backends simulate on the CPU whatever the device:
  with ``train.device: cuda`` only the networks are on the GPU, and the start
  line says that observations and actions cross the bus every step.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from envs.errors import TaskError

if TYPE_CHECKING:
    import torch

# train.device values: auto, cpu, cuda, cuda:N
DEVICE_NAME = re.compile(r"auto|cpu|cuda(:\d+)?")
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N"


class DeviceError(TaskError):
    """A ``train.device`` that this machine cannot give."""


@dataclass(frozen=True)
class Placement:
    """One run's place: the backend that simulates and the device of the networks (and of a gpu simulator).

    ``reason`` says why, in a few words, for the start line.
    """

    backend: str  # "cpu", "gpu" or "gym"
    device: torch.device
    reason: str

    @property
    def simulator_device(self) -> str:
        """The device the worlds live on: the Warp device name for ``gpu``, else ``cpu``."""
        return str(self.device) if self.backend == "gpu" else "cpu"

    def describe(self, num_envs: int) -> str:
        """One line: backend, where the worlds and networks are, how many worlds, why."""
        where = {"gpu": "MuJoCo Warp", "cpu": "mujoco.batch", "gym": "Gymnasium vector envs"}[self.backend]
        sim = self.simulator_device
        sim_name = device_name(sim) if sim != "cpu" else ("Warp's CPU device" if self.backend == "gpu" else "CPU")
        nets = device_name(str(self.device)) if self.device.type == "cuda" else "CPU"
        line = f"backend {self.backend}: {num_envs:,} worlds on {where} ({sim_name}), networks on {nets}"
        if self.backend != "gpu" and self.device.type == "cuda":
            line += "; observations and actions cross the bus every step"
        return f"{line} [{self.reason}]"


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (the one place this is asked)."""
    import torch

    return torch.cuda.is_available()


@functools.lru_cache(maxsize=1)
def gpu_backend_missing() -> str:
    """What the gpu backend lacks ('' if nothing), asked once a process: warp must import, mujoco-warp be installed.

    mujoco-warp is only looked up, not imported: importing it imports MuJoCo, whose rendering
    backend (MUJOCO_GL) is chosen after the configuration loads.
    """
    from importlib.util import find_spec

    missing = []
    try:
        import warp  # noqa: F401
    except Exception:  # an ImportError, or a broken install raising anything at import
        missing.append("warp-lang")
    if find_spec("mujoco_warp") is None:
        missing.append("mujoco-warp")
    return " and ".join(missing)


def available_cores() -> int:
    """CPU cores this process may run on (the cpu backend's simulation threads, the update's torch threads)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def device_name(device: str) -> str:
    """``cuda:0 (NVIDIA H200)`` for a CUDA device, the name itself otherwise."""
    if not device.startswith("cuda"):
        return device
    import torch

    return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"


def check_device(name: str) -> torch.device | None:
    """The torch device ``train.device`` names (None for ``auto``); DeviceError if this machine has none such."""
    import torch

    if not DEVICE_NAME.fullmatch(name):
        raise DeviceError(f"train.device: unknown device {name!r}; valid: {DEVICE_CHOICES}")
    if name == "auto":
        return None
    if name == "cpu":
        return torch.device("cpu")
    if not cuda_available():
        raise DeviceError(f"train.device: {name} was requested but torch sees no CUDA device; valid here: auto, cpu")
    device = torch.device(name if ":" in name else "cuda:0")
    count = torch.cuda.device_count()
    if device.index >= count:
        raise DeviceError(
            f"train.device: {name} does not exist; this machine has {count} CUDA device(s): "
            + ", ".join(f"cuda:{i}" for i in range(count))
        )
    return device


def resolve_backend(backend: str, native: bool, device: str = "auto") -> tuple[str, str]:
    """(the backend ``backend`` resolves to, why) for a native task or not, given ``train.device``."""
    if backend != "auto":
        if not native or backend == "gym":
            return backend, f"task.backend {backend}"
        auto, why = resolve_backend("auto", native, device)
        return backend, f"task.backend {backend}; auto would pick {auto} here ({why.removeprefix('auto: ')})"
    if not native:
        return "gym", "not a native task"
    if device == "cpu":
        return "cpu", "train.device cpu"
    if not cuda_available():
        return "cpu", "auto: torch sees no CUDA device"
    missing = gpu_backend_missing()
    if missing:
        return "cpu", f"auto: CUDA is there but {missing} is not installed (pip install -e '.[gpu]')"
    return "gpu", "auto: CUDA and mujoco-warp"


def resolve_placement(backend: str, native: bool, device: str = "auto") -> Placement:
    """The :class:`Placement` of a run of a (``native`` or not) task with these ``task.backend`` and ``train.device``.

    Raises DeviceError for a device this machine does not have.
    """
    import torch

    chosen = check_device(device)
    resolved, reason = resolve_backend(backend, native, device)
    if chosen is None:
        if resolved == "gpu" and cuda_available():
            chosen = torch.device("cuda", 0)
        else:
            chosen = torch.device("cpu")
            if resolved == "gpu":
                reason += "; no CUDA device: MuJoCo Warp on its CPU device"
    elif resolved == "gpu" and chosen.type == "cpu":
        reason += "; train.device cpu: MuJoCo Warp on its CPU device"
    return Placement(resolved, chosen, reason)


__all__ = [
    "DEVICE_CHOICES",
    "DeviceError",
    "Placement",
    "available_cores",
    "check_device",
    "cuda_available",
    "gpu_backend_missing",
    "resolve_backend",
    "resolve_placement",
]
