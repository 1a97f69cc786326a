"""The simulation layer's configuration: the ``task`` section and its ``randomization``.

Typed, frozen dataclasses; ``app.config`` composes them into the run's
configuration and checks them with the same rules as its own sections: each
field's type, its ``metadata`` (``help``, and the range ``low``/``high`` with
``low_open``/``high_open``), and the ``problems()`` a dataclass reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from envs.driving.config import DrivingConfig
from envs.fields import param
from envs.manipulation.config import FrankaConfig


@dataclass(frozen=True)
class RandomizationConfig:
    """Domain randomization of the native (cpu) backend, sampled per environment at every reset.

    Scale ranges are [low, high] multipliers of the model's own values; [1, 1] leaves them alone.
    """

    mass_scale: tuple[float, ...] = param((1.0, 1.0), "range [low, high] of each body's mass multiplier")
    friction_scale: tuple[float, ...] = param((1.0, 1.0), "range [low, high] of the geoms' friction multiplier")
    gain_scale: tuple[float, ...] = param((1.0, 1.0), "range [low, high] of the actuators' gain multiplier")
    damping_scale: tuple[float, ...] = param((1.0, 1.0), "range [low, high] of the joints' damping multiplier")
    latency_steps: tuple[int, ...] = param(
        (0, 0), "range [low, high] of the action latency in control steps (the action applied is k steps old)"
    )
    obs_noise_std: float = param(0.0, "std of Gaussian noise added to every observation entry", low=0.0)
    push_every: int = param(0, "push each environment every N control steps (0: never)", low=0)
    push_velocity: float = param(
        0.0,
        "a push adds U(-v, v) to each pushed velocity: the root's translation (m/s); Reacher/Pusher: the arm joints",
        low=0.0,
    )

    def problems(self) -> list[tuple[str, str]]:
        """(key, what is wrong) for every range that is not [low, high] with 0 <= low <= high."""
        out = []
        for name in ("mass_scale", "friction_scale", "gain_scale", "damping_scale", "latency_steps"):
            value = getattr(self, name)
            if len(value) != 2:
                out.append((name, f"must be a range [low, high], got {list(value)}"))
            elif value[0] < 0:
                out.append((name, f"must not be negative, got {list(value)}"))
            elif value[0] > value[1]:
                out.append((name, f"low must not be above high, got {list(value)}"))
        return out

    @property
    def enabled(self) -> bool:
        """Whether anything is randomized (False: the simulation is exactly the unrandomized task)."""
        scales = (self.mass_scale, self.friction_scale, self.gain_scale, self.damping_scale)
        return (
            any(tuple(s) != (1.0, 1.0) for s in scales)
            or tuple(self.latency_steps) != (0, 0)
            or self.obs_noise_std > 0
            or (self.push_every > 0 and self.push_velocity > 0)
        )


@dataclass(frozen=True)
class TaskConfig:
    """Which environment to build, on which backend, and how many in parallel."""

    name: str = param("", "task name, used for the run directory (defaults to the config file name)")
    id: str = param("", "Gymnasium id (Hopper-v5) or dm_control suite task (dmc:walker-walk)")
    backend: Literal["gym", "cpu", "gpu", "auto"] = param(
        "gym",
        "simulation backend: cpu = native task on mujoco.batch, gpu = native task on MuJoCo Warp (on "
        "train.device: CUDA, or Warp's CPU device), auto = gpu where torch sees CUDA and mujoco-warp is installed "
        "(and train.device is not cpu), else cpu (gym for non-native ids), gym = Gymnasium vector envs",
    )
    num_envs: int = param(8, "number of environments stepped in parallel", low=1)
    num_threads: int = param(0, "cpu backend: simulation threads (0: one per available core)", low=0)
    nconmax: int = param(0, "gpu backend: contacts per world in the shared contact pool (0: the task's own)", low=0)
    njmax: int = param(0, "gpu backend: constraint rows per world (0: the task's own)", low=0)
    vectorization: Literal["sync", "async"] = param(
        "sync", "gym backend: step envs in this process (sync) or in subprocesses (async)"
    )
    max_episode_steps: int | None = param(
        None, "episode length limit (truncation); null keeps the environment's own", low=1
    )
    env_kwargs: dict[str, Any] = param({}, "keyword arguments passed to the environment constructor")
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    driving: DrivingConfig = field(default_factory=DrivingConfig)
    franka: FrankaConfig = field(default_factory=FrankaConfig)

    def problems(self) -> list[tuple[str, str]]:
        """(key, what is wrong) for a backend this machine or this task cannot have."""
        from envs.catalog import NATIVE_TASK_IDS, OWN_TASK_IDS

        if self.id in OWN_TASK_IDS and self.backend == "gym":
            return [("backend", f"{self.id} is a native task of our own: use task.backend cpu, gpu or auto")]
        if self.backend != "gpu":
            return []

        if self.id and self.id not in NATIVE_TASK_IDS:
            return [
                (
                    "backend",
                    f"gpu runs the native tasks only ({', '.join(NATIVE_TASK_IDS)}), not '{self.id}'; "
                    "use task.backend: gym",
                )
            ]
        from envs.placement import gpu_backend_missing

        missing = gpu_backend_missing()
        if missing:
            return [("backend", f"gpu needs {missing}; install them with pip install -e '.[gpu]', or use cpu")]
        return []


__all__ = ["RandomizationConfig", "TaskConfig", "param"]
