"""What a native task is: an MJCF, a frame skip, an episode length and torch functions over the batch.

Every function takes the :class:`~envs.native.simulator.Simulator` of all N
simulations and works on [N, ...] float64 tensors on its device; none loops
over simulations, and random draws come from a generator on that device.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import gymnasium
import mujoco
import torch
from torch import Tensor

from envs.native.simulator import Simulator

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


class NativeTask:
    """One task over a batch of simulations. Subclasses set the class attributes and the four functions.

    ``pre_step`` is what the reward needs from before the step (a position),
    evaluated once the previous step or reset has finished.
    """

    gym_id: ClassVar[str]  # the Gymnasium v5 task this one reproduces
    xml_file: ClassVar[str]  # file name in gymnasium's MuJoCo assets
    frame_skip: ClassVar[int]
    max_episode_steps: ClassVar[int]
    fields: ClassVar[tuple[str, ...]] = ()  # derived MjData fields the task reads
    rne_post: ClassVar[bool] = False  # reads cfrc_ext after mj_rnePostConstraint
    push_dofs: ClassVar[tuple[int, ...]] = (0,)  # qvel entries a random push kicks
    # gpu backend buffers, per world: contacts (an average share of one pool) and constraint rows.
    # About twice the most seen in 8 random-action episodes of the cpu backend (Newton solver).
    nconmax: ClassVar[int] = 4
    njmax: ClassVar[int] = 8

    def __init__(self, model: mujoco.MjModel, device: torch.device | str = "cpu") -> None:
        self.model = model
        self.device = torch.device(device)  # the simulator's: where the task's constants live
        self.dt = float(model.opt.timestep) * self.frame_skip
        self.init_qpos = torch.tensor(model.qpos0, dtype=torch.float64, device=self.device)  # [nq]
        self.init_qvel = torch.zeros(model.nv, dtype=torch.float64, device=self.device)  # [nv]

    @classmethod
    def load_model(cls) -> mujoco.MjModel:
        """The MJCF shipped in the installed gymnasium package (never a copy of ours)."""
        return mujoco.MjModel.from_xml_path(str(GYMNASIUM_ASSETS / cls.xml_file))

    def body_id(self, name: str) -> int:
        return int(mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, name))

    def initial_state(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Initial (qpos [n, nq], qvel [n, nv]) of n new episodes."""
        raise NotImplementedError

    def pre_step(self, sim: Simulator) -> Tensor:
        """What the reward needs from before the step, [N, k]."""
        return sim.qpos[:, :1].clone()

    def observation(self, sim: Simulator) -> Tensor:
        """obs [N, obs_dim] float64."""
        raise NotImplementedError

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
