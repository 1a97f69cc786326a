"""Domain randomization for sim-to-real: physical parameters per reset, latency, observation noise, pushes.

Everything is sampled per environment from one seeded ``torch.Generator``
(the VecEnv's), so a seed reproduces the whole sequence. Physical parameters
are written into per-world model fields of the simulator
(``Simulator.model_field``): scale x the model's own value. Every tensor lives
on the simulator's device.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from envs.config import RandomizationConfig
from envs.native.simulator import Simulator
from envs.native.task import uniform


def sample_scale(bounds: tuple[float, ...], shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """U(low, high) multipliers [shape] float64 on the generator's device (exactly 1 where low == high == 1)."""
    low, high = float(bounds[0]), float(bounds[1])
    if low == high:
        return torch.full(shape, low, dtype=torch.float64, device=generator.device)
    return uniform(low, high, shape, generator)


def set_rows(field: Tensor, ids: Tensor, values: Tensor) -> None:
    """field[ids] = values, in the field's dtype (float64 on the cpu backend, float32 on the gpu one)."""
    field[ids] = values.to(field.dtype)


class DomainRandomizer:
    """Samples and applies ``task.randomization`` to a :class:`Simulator`.

    Model fields: ``body_mass`` [N, nbody] (one multiplier per body),
    ``geom_friction`` [N, ngeom, 3], ``actuator_gainprm[..., 0]`` and the
    matching ``actuator_biasprm[..., 1:3]`` [N, nu] (so position servos keep
    their target), ``dof_damping`` [N, nv] (one multiplier per environment for
    each of friction, gain and damping). Latency k in [low, high] control steps:
    the action applied at step t is the one chosen at t - k (zeros before the
    episode's first).
    """

    def __init__(self, cfg: RandomizationConfig, sim: Simulator, act_dim: int) -> None:
        self.cfg = cfg
        self.sim = sim
        n, model, device = sim.num_worlds, sim.model, sim.device
        self.base: dict[str, Tensor] = {}
        self.physical = [
            name
            for name, bounds in (
                ("mass_scale", cfg.mass_scale),
                ("friction_scale", cfg.friction_scale),
                ("gain_scale", cfg.gain_scale),
                ("damping_scale", cfg.damping_scale),
            )
            if tuple(bounds) != (1.0, 1.0)
        ]
        fields = {
            "mass_scale": ["body_mass"],
            "friction_scale": ["geom_friction"],
            "gain_scale": ["actuator_gainprm", "actuator_biasprm"],
            "damping_scale": ["dof_damping"],
        }
        for name in self.physical:
            for field in fields[name]:
                self.base[field] = torch.tensor(getattr(model, field), dtype=torch.float64, device=device)
                sim.model_field(field)
        # the scales in force, per environment (for tests and logs)
        f64 = {"dtype": torch.float64, "device": device}
        self.scales: dict[str, Tensor] = {
            "mass_scale": torch.ones((n, model.nbody), **f64),
            "friction_scale": torch.ones(n, **f64),
            "gain_scale": torch.ones(n, **f64),
            "damping_scale": torch.ones(n, **f64),
        }
        self.max_latency = int(cfg.latency_steps[1])
        self.latency = torch.zeros(n, dtype=torch.long, device=device)
        # past actions, newest last: [N, max_latency + 1, act_dim]
        self.action_history = torch.zeros((n, self.max_latency + 1, act_dim), **f64)

    def on_reset(self, ids: Tensor, generator: torch.Generator) -> None:
        """Sample new parameters for environments ``ids`` and write them into their simulations."""
        k = len(ids)
        cfg, sim = self.cfg, self.sim
        for name in self.physical:
            bounds = getattr(cfg, name)
            shape = (k, sim.model.nbody) if name == "mass_scale" else (k,)
            self.scales[name][ids] = sample_scale(bounds, shape, generator)
        if "mass_scale" in self.physical:
            set_rows(sim.model_field("body_mass"), ids, self.base["body_mass"] * self.scales["mass_scale"][ids])
        if "friction_scale" in self.physical:
            scale = self.scales["friction_scale"][ids].view(k, 1, 1)
            set_rows(sim.model_field("geom_friction"), ids, self.base["geom_friction"] * scale)
        if "gain_scale" in self.physical:
            scale = self.scales["gain_scale"][ids].view(k, 1)
            gain = self.base["actuator_gainprm"].expand(k, -1, -1).clone()
            bias = self.base["actuator_biasprm"].expand(k, -1, -1).clone()
            gain[:, :, 0] *= scale
            bias[:, :, 1:3] *= scale.unsqueeze(-1)
            set_rows(sim.model_field("actuator_gainprm"), ids, gain)
            set_rows(sim.model_field("actuator_biasprm"), ids, bias)
        if "damping_scale" in self.physical:
            scale = self.scales["damping_scale"][ids].view(k, 1)
            set_rows(sim.model_field("dof_damping"), ids, self.base["dof_damping"] * scale)
        if "mass_scale" in self.physical:
            sim.set_const(ids)  # masses feed the constants mj_setConst derives
        low, high = int(cfg.latency_steps[0]), int(cfg.latency_steps[1])
        if high > 0:
            self.latency[ids] = torch.randint(low, high + 1, (k,), generator=generator, device=generator.device)
            self.action_history[ids] = 0.0

    def delay(self, action: Tensor) -> Tensor:
        """The actions to apply now [N, act_dim]: each environment's action from ``latency`` steps ago."""
        if self.max_latency == 0:
            return action
        self.action_history = torch.roll(self.action_history, shifts=-1, dims=1)
        self.action_history[:, -1] = action
        index = (self.max_latency - self.latency).view(-1, 1, 1).expand(-1, 1, action.shape[1])
        return self.action_history.gather(1, index).squeeze(1)

    def push(self, elapsed: Tensor, push_dofs: tuple[int, ...], generator: torch.Generator) -> Tensor:
        """Kick environments at episode steps that are multiples of ``push_every``: qvel[dofs] += U(-v, v).

        Returns pushed [N] (bool).
        """
        cfg = self.cfg
        pushed = torch.zeros_like(elapsed, dtype=torch.bool)
        if cfg.push_every <= 0 or cfg.push_velocity <= 0:
            return pushed
        pushed = (elapsed > 0) & (elapsed % cfg.push_every == 0)
        if pushed.any():
            ids = pushed.nonzero().squeeze(1)
            dofs = torch.tensor(push_dofs, device=elapsed.device)
            kick = uniform(-cfg.push_velocity, cfg.push_velocity, (len(ids), len(dofs)), generator)
            qvel = self.sim.qvel
            qvel[ids.unsqueeze(1), dofs.unsqueeze(0)] += kick
        return pushed

    def observe(self, obs: Tensor, generator: torch.Generator) -> Tensor:
        """obs + N(0, obs_noise_std^2) noise (obs itself if no noise is configured)."""
        if self.cfg.obs_noise_std <= 0:
            return obs
        noise = torch.randn(obs.shape, generator=generator, dtype=obs.dtype, device=obs.device)
        return obs + self.cfg.obs_noise_std * noise

    def get_state(self) -> dict[str, Any]:
        return {
            "scales": {k: v.clone() for k, v in self.scales.items()},
            "latency": self.latency.clone(),
            "action_history": self.action_history.clone(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        for k, v in state["scales"].items():
            self.scales[k].copy_(v)
        self.latency.copy_(state["latency"])
        self.action_history.copy_(state["action_history"])
