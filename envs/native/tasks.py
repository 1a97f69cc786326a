"""Gymnasium's MuJoCo v5 tasks, written once over the batch (default arguments of each v5 env).

Each class states where its v5 original takes observation, reward, termination
and reset noise from; ``tests/envs/test_native_parity.py`` checks them against
Gymnasium step by step.
"""

from __future__ import annotations

from typing import Any

import mujoco
import torch
from torch import Tensor

from envs.manipulation.task import FRANKA_TASKS
from envs.native.driving import DRIVING_TASKS
from envs.native.simulator import Simulator
from envs.native.task import NativeTask, control_cost, uniform, within


class PlanarWalker(NativeTask):
    """Hopper and Walker2d: reward = forward_velocity + healthy_reward * healthy - ctrl_weight * |a|^2."""

    frame_skip = 4
    max_episode_steps = 1000
    push_dofs = (0, 1)  # rootx, rootz
    nconmax, njmax = 12, 56  # Walker2d: 6 contacts, 26 rows seen
    ctrl_weight = 1e-3
    healthy_z: tuple[float, float]
    healthy_angle: tuple[float, float]

    def initial_state(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.uniform_noise_state(n, generator, 5e-3)

    def observation(self, sim: Simulator) -> Tensor:
        # [qpos[1:], clip(qvel, -10, 10)]
        return torch.cat([sim.qpos[:, 1:], sim.qvel.clamp(-10.0, 10.0)], dim=1)

    def healthy(self, sim: Simulator) -> Tensor:
        z, angle = sim.qpos[:, 1], sim.qpos[:, 2]
        return within(z, *self.healthy_z) & within(angle, *self.healthy_angle)

    def reward(self, sim: Simulator, before: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        x_velocity = (sim.qpos[:, 0] - before[:, 0]) / self.dt  # (x_after - x_before) / dt
        healthy = self.healthy(sim)
        reward = (x_velocity + healthy.double()) - control_cost(self.ctrl_weight, action)
        return reward, ~healthy


class Hopper(PlanarWalker):
    gym_id = "Hopper-v5"
    xml_file = "hopper.xml"
    healthy_z = (0.7, float("inf"))
    healthy_angle = (-0.2, 0.2)

    def healthy(self, sim: Simulator) -> Tensor:
        # also every entry of state_vector()[2:] = [qpos, qvel][2:] inside (-100, 100)
        state = torch.cat([sim.qpos, sim.qvel], dim=1)[:, 2:]
        return super().healthy(sim) & within(state, -100.0, 100.0).all(dim=1)


class Walker2d(PlanarWalker):
    gym_id = "Walker2d-v5"
    xml_file = "walker2d_v5.xml"
    healthy_z = (0.8, 2.0)
    healthy_angle = (-1.0, 1.0)


class Runner(NativeTask):
    """HalfCheetah and Swimmer: reward = forward_velocity - ctrl_weight |a|^2; never terminates.

    obs = [qpos[qpos_skip:], qvel]; reset: qpos + U(-s, s), qvel + U(-s, s) or s N(0, 1).
    """

    max_episode_steps = 1000
    push_dofs = (0, 1)
    qpos_skip: int
    nconmax, njmax = 8, 32  # HalfCheetah: 4 contacts, 16 rows seen; Swimmer none
    ctrl_weight: float
    noise_scale = 0.1
    qvel_normal: bool

    def initial_state(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.uniform_noise_state(n, generator, self.noise_scale, qvel_normal=self.qvel_normal)

    def observation(self, sim: Simulator) -> Tensor:
        return torch.cat([sim.qpos[:, self.qpos_skip :], sim.qvel], dim=1)

    def reward(self, sim: Simulator, before: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        x_velocity = (sim.qpos[:, 0] - before[:, 0]) / self.dt
        reward = x_velocity - control_cost(self.ctrl_weight, action)
        return reward, torch.zeros_like(x_velocity, dtype=torch.bool)


class HalfCheetah(Runner):
    gym_id = "HalfCheetah-v5"
    xml_file = "half_cheetah.xml"
    frame_skip = 5
    qpos_skip = 1
    ctrl_weight = 0.1
    qvel_normal = True


class Swimmer(Runner):
    gym_id = "Swimmer-v5"
    xml_file = "swimmer.xml"
    frame_skip = 4
    qpos_skip = 2
    ctrl_weight = 1e-4
    qvel_normal = False


class Ant(NativeTask):
    """reward = v_x(torso) + healthy - 0.5 |a|^2 - 5e-4 |clip(cfrc_ext, -1, 1)|^2."""

    gym_id = "Ant-v5"
    xml_file = "ant.xml"
    frame_skip = 5
    max_episode_steps = 1000
    fields = ("xpos",)
    rne_post = True
    push_dofs = (0, 1)  # free joint vx, vy
    nconmax, njmax = 12, 48  # 5 contacts, 22 rows seen

    def initial_state(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.uniform_noise_state(n, generator, 0.1, qvel_normal=True)

    def pre_step(self, sim: Simulator) -> Tensor:
        return sim.xpos[:, 1, :2].clone()  # main body (torso) x, y: derived, as data.body(1).xpos

    def contact_forces(self, sim: Simulator) -> Tensor:
        return sim.cfrc_ext_post.clamp(-1.0, 1.0)  # [N, nbody, 6]

    def observation(self, sim: Simulator) -> Tensor:
        forces = self.contact_forces(sim)[:, 1:].flatten(1)
        return torch.cat([sim.qpos[:, 2:], sim.qvel, forces], dim=1)

    def reward(self, sim: Simulator, before: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        x_velocity = (sim.xpos[:, 1, 0] - before[:, 0]) / self.dt
        state = torch.cat([sim.qpos, sim.qvel], dim=1)
        z = sim.qpos[:, 2]
        healthy = torch.isfinite(state).all(dim=1) & (z >= 0.2) & (z <= 1.0)
        contact_cost = 5e-4 * self.contact_forces(sim).square().flatten(1).sum(dim=1)
        reward = (x_velocity + healthy.double()) - (control_cost(0.5, action) + contact_cost)
        return reward, ~healthy


class Humanoid(NativeTask):
    """reward = 1.25 v_x(CoM) + 5 healthy - 0.1 |ctrl|^2 - min(5e-7 |cfrc_ext|^2, 10)."""

    gym_id = "Humanoid-v5"
    xml_file = "humanoid.xml"
    frame_skip = 5
    max_episode_steps = 1000
    fields = ("xipos", "cinert", "cvel", "qfrc_actuator")
    rne_post = True
    push_dofs = (0, 1)
    # At most 9 contacts and 37 constraint rows per world in 30,000 physics steps of random actions, most of them
    # lying on the ground (MuJoCo's CPU Newton solver, the gpu backend's model); 3 contacts and 12 rows on average.
    # MuJoCo Warp's own humanoid benchmark uses 24 / 64. Fewer rows, less solver work per world; a world that
    # overflows is reset and counted (unstable_reset_rate in progress.csv).
    nconmax, njmax = 16, 64

    def initial_state(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.uniform_noise_state(n, generator, 1e-2)

    def __init__(self, model: mujoco.MjModel, device: torch.device | str = "cpu", **kwargs: Any) -> None:
        super().__init__(model, device, **kwargs)
        self.body_mass = torch.tensor(model.body_mass, dtype=torch.float64, device=self.device)  # [nbody]

    def pre_step(self, sim: Simulator) -> Tensor:
        return self.mass_center(sim)

    def mass_center(self, sim: Simulator) -> Tensor:
        """(sum_b m_b xipos_b / sum_b m_b)[:2]: [N, 2] (per-simulation masses under randomization)."""
        mass = sim.model_fields().get("body_mass")
        if mass is None:
            mass = self.body_mass.expand(sim.num_worlds, -1)
        return ((mass.unsqueeze(-1) * sim.xipos).sum(dim=1) / mass.sum(dim=1, keepdim=True))[:, :2]

    def observation(self, sim: Simulator) -> Tensor:
        return torch.cat(
            [
                sim.qpos[:, 2:],
                sim.qvel,
                sim.cinert[:, 1:].flatten(1),
                sim.cvel[:, 1:].flatten(1),
                sim.qfrc_actuator[:, 6:],
                sim.cfrc_ext_post[:, 1:].flatten(1),
            ],
            dim=1,
        )

    def reward(self, sim: Simulator, before: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        x_velocity = (self.mass_center(sim)[:, 0] - before[:, 0]) / self.dt
        z = sim.qpos[:, 2]
        healthy = within(z, 1.0, 2.0)
        contact_cost = (5e-7 * sim.cfrc_ext_post.square().flatten(1).sum(dim=1)).clamp(max=10.0)
        ctrl_cost = control_cost(0.1, sim.ctrl)  # v5 charges data.ctrl
        reward = (1.25 * x_velocity + 5.0 * healthy.double()) - (ctrl_cost + contact_cost)
        return reward, ~healthy


class InvertedPendulum(NativeTask):
    """reward = 1 while |pole angle| <= 0.2; terminates when it leaves that range."""

    gym_id = "InvertedPendulum-v5"
    xml_file = "inverted_pendulum.xml"
    frame_skip = 2
    max_episode_steps = 1000

    def initial_state(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.uniform_noise_state(n, generator, 0.01)

    def observation(self, sim: Simulator) -> Tensor:
        return torch.cat([sim.qpos, sim.qvel], dim=1)

    def reward(self, sim: Simulator, before: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        obs = self.observation(sim)
        terminated = ~torch.isfinite(obs).all(dim=1) | (obs[:, 1].abs() > 0.2)
        return (~terminated).double(), terminated


class InvertedDoublePendulum(NativeTask):
    """reward = 10 alive - (0.01 x^2 + (y - 2)^2) - (1e-3 w1^2 + 5e-3 w2^2) of the tip site; ends when y <= 1."""

    gym_id = "InvertedDoublePendulum-v5"
    xml_file = "inverted_double_pendulum.xml"
    frame_skip = 5
    max_episode_steps = 1000
    fields = ("site_xpos", "qfrc_constraint")

    def initial_state(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        return self.uniform_noise_state(n, generator, 0.1, qvel_normal=True)

    def observation(self, sim: Simulator) -> Tensor:
        qpos = sim.qpos
        return torch.cat(
            [
                qpos[:, :1],
                torch.sin(qpos[:, 1:]),
                torch.cos(qpos[:, 1:]),
                sim.qvel.clamp(-10.0, 10.0),
                sim.qfrc_constraint.clamp(-10.0, 10.0)[:, :1],
            ],
            dim=1,
        )

    def reward(self, sim: Simulator, before: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        x, y = sim.site_xpos[:, 0, 0], sim.site_xpos[:, 0, 2]
        terminated = y <= 1
        v1, v2 = sim.qvel[:, 1], sim.qvel[:, 2]
        dist_penalty = 0.01 * x**2 + (y - 2) ** 2
        vel_penalty = 1e-3 * v1**2 + 5e-3 * v2**2
        return (10.0 * (~terminated).double() - dist_penalty) - vel_penalty, terminated


class Reacher(NativeTask):
    """reward = -|fingertip - target| - |a|^2; the target is drawn uniformly in the disc of radius 0.2."""

    gym_id = "Reacher-v5"
    xml_file = "reacher.xml"
    frame_skip = 2
    max_episode_steps = 50
    fields = ("xpos",)
    push_dofs = (0, 1)  # the two arm joints

    def __init__(self, model: mujoco.MjModel, device: torch.device | str = "cpu", **kwargs: Any) -> None:
        super().__init__(model, device, **kwargs)
        self.fingertip, self.target = self.body_id("fingertip"), self.body_id("target")

    def initial_state(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        nq, nv = self.model.nq, self.model.nv
        qpos = uniform(-0.1, 0.1, (n, nq), generator) + self.init_qpos
        goal = uniform(-0.2, 0.2, (n, 2), generator)
        while bool((redo := goal.norm(dim=1) >= 0.2).any()):  # rejection sampling, all rows at once
            goal[redo] = uniform(-0.2, 0.2, (int(redo.sum()), 2), generator)
        qpos[:, -2:] = goal
        qvel = self.init_qvel + uniform(-0.005, 0.005, (n, nv), generator)
        qvel[:, -2:] = 0.0
        return qpos, qvel

    def observation(self, sim: Simulator) -> Tensor:
        theta = sim.qpos[:, :2]
        to_target = sim.xpos[:, self.fingertip] - sim.xpos[:, self.target]
        return torch.cat(
            [torch.cos(theta), torch.sin(theta), sim.qpos[:, 2:], sim.qvel[:, :2], to_target[:, :2]], dim=1
        )

    def reward(self, sim: Simulator, before: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        distance = (sim.xpos[:, self.fingertip] - sim.xpos[:, self.target]).norm(dim=1)
        reward = -distance + -action.square().sum(dim=1)
        return reward, torch.zeros_like(reward, dtype=torch.bool)


class Pusher(NativeTask):
    """reward = -|object - goal| - 0.1 |a|^2 - 0.5 |object - fingertip|; the object starts at least 0.17 away."""

    gym_id = "Pusher-v5"
    xml_file = "pusher_v5.xml"
    frame_skip = 5
    max_episode_steps = 100
    fields = ("xpos",)
    push_dofs = (0, 1, 2, 3, 4, 5, 6)  # the arm joints
    nconmax, njmax = 12, 24  # 6 contacts, 7 rows seen

    def __init__(self, model: mujoco.MjModel, device: torch.device | str = "cpu", **kwargs: Any) -> None:
        super().__init__(model, device, **kwargs)
        self.tips_arm, self.object, self.goal = self.body_id("tips_arm"), self.body_id("object"), self.body_id("goal")

    def initial_state(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        nv = self.model.nv

        def draw(k: int) -> Tensor:
            return torch.stack([uniform(-0.3, 0.0, (k,), generator), uniform(-0.2, 0.2, (k,), generator)], dim=1)

        cylinder = draw(n)
        while bool((redo := cylinder.norm(dim=1) <= 0.17).any()):  # |cylinder - goal(0, 0)| > 0.17
            cylinder[redo] = draw(int(redo.sum()))
        qpos = self.init_qpos.expand(n, -1).clone()
        qpos[:, -4:-2] = cylinder
        qpos[:, -2:] = 0.0
        qvel = self.init_qvel + uniform(-0.005, 0.005, (n, nv), generator)
        qvel[:, -4:] = 0.0
        return qpos, qvel

    def observation(self, sim: Simulator) -> Tensor:
        xpos = sim.xpos
        return torch.cat(
            [sim.qpos[:, :7], sim.qvel[:, :7], xpos[:, self.tips_arm], xpos[:, self.object], xpos[:, self.goal]],
            dim=1,
        )

    def reward(self, sim: Simulator, before: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        xpos = sim.xpos
        reward_near = -(xpos[:, self.object] - xpos[:, self.tips_arm]).norm(dim=1) * 0.5
        reward_dist = -(xpos[:, self.object] - xpos[:, self.goal]).norm(dim=1)
        reward_ctrl = -action.square().sum(dim=1) * 0.1
        reward = reward_dist + reward_ctrl + reward_near
        return reward, torch.zeros_like(reward, dtype=torch.bool)


NATIVE_TASKS: dict[str, type[NativeTask]] = {
    cls.gym_id: cls
    for cls in (
        Humanoid,
        Ant,
        HalfCheetah,
        Hopper,
        Walker2d,
        Swimmer,
        InvertedPendulum,
        InvertedDoublePendulum,
        Reacher,
        Pusher,
        *DRIVING_TASKS,
        *FRANKA_TASKS,
    )
}
