"""What a native task is: an MJCF, a frame skip, an episode length and torch functions over the batch.

Every function takes the :class:`~envs.native.simulator.Simulator` of all N
simulations and works on [N, ...] float64 tensors on its device; none loops
over simulations, and random draws come from a generator on that device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import gymnasium
import mujoco
import numpy as np
import torch
from torch import Tensor

from envs.catalog import NATIVE_TASK_TABLE
from envs.episode_stats import episode_means
from envs.native.simulator import Simulator
from envs.spec import ObservationSpec, ObsField

GYMNASIUM_ASSETS = Path(gymnasium.__file__).resolve().parent / "envs" / "mujoco" / "assets"


def uniform(low: float, high: float, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """U(low, high) samples [shape], float64 on the generator's device: low + (high - low) * U(0, 1)."""
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64, device=generator.device)


def normal(scale: float, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """N(0, scale^2) samples [shape], float64 on the generator's device."""
    return scale * torch.randn(shape, generator=generator, dtype=torch.float64, device=generator.device)


def control_cost(weight: float, action: Tensor) -> Tensor:
    """weight * sum_i a_i^2: action [N, act_dim] -> [N]."""
    return weight * action.square().sum(dim=1)


def within(x: Tensor, low: float, high: float) -> Tensor:
    """low < x < high, elementwise (Gymnasium's strict health ranges)."""
    return (x > low) & (x < high)


# Declared once, in the task's row of envs.catalog: a task class takes them from there.
DECLARED_IN_CATALOG = ("max_episode_steps", "options_key")


class NativeTask:
    """One task over a batch of simulations. Subclasses set the class attributes and the four functions.

    ``pre_step`` is what the reward needs from before the step (a position),
    evaluated once the previous step or reset has finished. Tasks of our own
    (not a Gymnasium original) override the hooks below it: their own model,
    action space, per-world episode state, extra truncation, episode statistics
    (and their summary over evaluation episodes, with the report's lines) and
    scene for rendering. ``options`` is the config section named by
    ``options_key`` (``task.driving`` ...); ``evaluation`` asks for the held-out
    variations of the task (tracks training never sees). ``generator`` is the
    batch's torch generator and ``sim`` its simulator, both set by the VecEnv,
    for draws outside resets and per-world model fields.

    A class that sets ``gym_id`` is a task: its row in :mod:`envs.catalog` gives it
    ``max_episode_steps`` and ``options_key`` (neither is written on a class).
    """

    gym_id: ClassVar[str]  # the Gymnasium v5 task this one reproduces (or our own policylab/<Name>-v0)
    xml_file: ClassVar[str]  # file name in gymnasium's MuJoCo assets
    frame_skip: ClassVar[int]
    max_episode_steps: ClassVar[int]  # from envs.catalog
    fields: ClassVar[tuple[str, ...]] = ()  # derived MjData fields the task reads
    rne_post: ClassVar[bool] = False  # reads cfrc_ext after mj_rnePostConstraint
    push_dofs: ClassVar[tuple[int, ...]] = (0,)  # qvel entries a random push kicks
    # gpu backend buffers, per world: contacts (an average share of one pool) and constraint rows.
    # About twice the most seen in 8 random-action episodes of the cpu backend (Newton solver).
    nconmax: ClassVar[int] = 4
    njmax: ClassVar[int] = 8
    options_key: ClassVar[str | None] = None  # the TaskConfig section the task reads, if any (from envs.catalog)
    generator: torch.Generator | None = None
    sim: Simulator | None = None  # the batch's simulator, set by the VecEnv (for per-world model fields)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A task (a class that sets ``gym_id``) takes its episode length and config section from envs.catalog."""
        super().__init_subclass__(**kwargs)
        if "gym_id" not in cls.__dict__:
            return  # a family's shared base (PlanarWalker, Franka ...)
        entry = NATIVE_TASK_TABLE.get(cls.gym_id)
        if entry is None:
            raise TypeError(f"{cls.__name__}: native task {cls.gym_id!r} has no row in envs.catalog.NATIVE_TASK_TABLE")
        for klass in cls.__mro__[: cls.__mro__.index(NativeTask)]:  # the class and the bases it adds
            if klass is cls or "gym_id" not in klass.__dict__:  # (a task's own are its row's, bound below)
                for name in DECLARED_IN_CATALOG:
                    if name in klass.__dict__:
                        raise TypeError(
                            f"{klass.__name__}.{name}: declared in envs.catalog (the row of {cls.gym_id}), "
                            "not on the class"
                        )
        cls.max_episode_steps = entry.episode_length
        cls.options_key = entry.options_key

    def __init__(
        self, model: mujoco.MjModel, device: torch.device | str = "cpu", options: Any = None, evaluation: bool = False
    ) -> None:
        self.model = model
        self.options, self.evaluation = options, evaluation
        self.device = torch.device(device)  # the simulator's: where the task's constants live
        self.dt = float(model.opt.timestep) * self.frame_skip
        self.init_qpos = torch.tensor(model.qpos0, dtype=torch.float64, device=self.device)  # [nq]
        self.init_qvel = torch.zeros(model.nv, dtype=torch.float64, device=self.device)  # [nv]

    @classmethod
    def load_model(cls, options: Any = None) -> mujoco.MjModel:
        """The MJCF shipped in the installed gymnasium package (never a copy of ours).

        ``options`` is the task's config section, for tasks whose model depends on it (the arm's gains).
        """
        return mujoco.MjModel.from_xml_path(str(GYMNASIUM_ASSETS / cls.xml_file))

    def body_id(self, name: str) -> int:
        return int(mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, name))

    def initial_state(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Initial (qpos [n, nq], qvel [n, nv]) of n new episodes."""
        raise NotImplementedError

    # -- hooks with defaults (the Gymnasium tasks keep them) ------------------------------

    def reset_worlds(self, ids: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Start new episodes in worlds ``ids`` [k]: set the task's per-world state; initial (qpos, qvel) [k, ...]."""
        return self.initial_state(len(ids), generator)

    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low [act_dim], high [act_dim]) of the action: the actuators' control ranges."""
        ctrl_range = np.asarray(self.model.actuator_ctrlrange, dtype=np.float32)
        return ctrl_range[:, 0], ctrl_range[:, 1]

    def apply_action(self, sim: Simulator, action: Tensor) -> None:
        """Write action [N, act_dim] (float64) into the controls for the coming step."""
        sim.ctrl.copy_(action)

    def truncated(self, sim: Simulator) -> Tensor | None:
        """[N] bool: episodes the task ends without a true end (a goal reached), besides the time limit."""
        return None

    def reward_terms(self) -> dict[str, Tensor]:
        """The named terms of the last step's reward, name -> [N] (unweighted; logged as their means)."""
        return {}

    def episode_stats(self) -> dict[str, Tensor]:
        """Per-world statistics of the current episodes, name -> [N] float64 (read when episodes end)."""
        return {}

    @classmethod
    def summarize(cls, stats: dict[str, np.ndarray]) -> dict[str, float]:
        """Statistics over evaluation episodes from their :meth:`episode_stats`, name -> [E] (numpy).

        The means over the episodes (nan-skipping) by default; a task adds what it derives from them.
        """
        return episode_means(stats)

    @classmethod
    def summary_lines(cls, result: dict[str, Any]) -> list[str]:
        """The task's lines in ``make eval``'s report, from the evaluation's ``result`` (eval.json's content)."""
        return []

    def get_state(self) -> dict[str, Any]:
        """The task's per-world episode state (for an exact resume)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`."""

    def render_scene(self, sim: Simulator, index: int) -> tuple[mujoco.MjModel, mujoco.MjData]:
        """(model, data) that show world ``index`` (for rendering; data is a fresh copy)."""
        return sim.model_of(index), sim.data_of(index)

    def decorate_scene(self, scene: mujoco.MjvScene, index: int) -> None:
        """Add task visuals (sensor rays, targets) to a scene of world ``index`` after ``update_scene``."""

    def pre_step(self, sim: Simulator) -> Tensor:
        """What the reward needs from before the step, [N, k]."""
        return sim.qpos[:, :1].clone()

    def observation(self, sim: Simulator) -> Tensor:
        """obs [N, obs_dim] float64, or a dict of fields [N, ...] (float64 vectors, uint8 images)."""
        raise NotImplementedError

    def observation_spec(self, obs: Any) -> ObservationSpec:
        """The spec of a dict observation ``obs`` (a TensorDict [N]): images (uint8) are not normalized."""
        return {
            key: ObsField(
                tuple(value.shape[1:]),
                "uint8" if value.dtype == torch.uint8 else "float32",
                normalize=value.dtype != torch.uint8,
            )
            for key, value in obs.items()
        }

    def reward(self, sim: Simulator, before: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """(reward [N] float64, terminated [N] bool) after a step with action [N, act_dim]."""
        raise NotImplementedError

    def uniform_noise_state(
        self, n: int, generator: torch.Generator, scale: float, qvel_normal: bool = False
    ) -> tuple[Tensor, Tensor]:
        """init + U(-scale, scale) for qpos; for qvel the same, or scale * N(0, 1) if ``qvel_normal``."""
        nq, nv = self.model.nq, self.model.nv
        qpos = self.init_qpos + uniform(-scale, scale, (n, nq), generator)
        noise = normal(scale, (n, nv), generator) if qvel_normal else uniform(-scale, scale, (n, nv), generator)
        return qpos, self.init_qvel + noise
