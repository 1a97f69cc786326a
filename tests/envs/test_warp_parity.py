"""The gpu backend (MuJoCo Warp, float32, Warp's CPU device) against the cpu one (mujoco.batch, float64).

Both run the model the gpu backend runs (:func:`warp_model`: Newton where the
task asks for PGS, Warp's solver tolerance floor of 1e-6). At each step the
cpu environment's whole state, rounded to float32, is copied into the gpu
environment, both take the same action, and the observations and rewards must
agree. Comparing one step at a time from the same state keeps the check about
the step, not about how fast two float precisions drift apart on a chaotic
trajectory.

Tolerances, on |gpu - cpu| / max(|cpu|, 1) per entry:

- tasks without contacts (pendulums, Reacher, Swimmer, Pusher's arm): 1e-4.
  float32 rounds each state entry by about 6e-8 relative; measured over 800
  step-rows per task the largest gap is 8e-6.
- tasks with contacts: 5e-3 on observations. Contact forces come out of the
  constraint solver, which stops at a relative tolerance of 1e-6 in float32,
  and stiff contacts amplify a 1e-7 state difference; measured over 800
  step-rows the largest gap is 1e-3 (Humanoid's contact forces), the median
  1e-5 or less. Rewards: 1e-4 everywhere (measured at most 3e-5).

A wrong index, sign, frame or unit gives gaps of order 1, three orders of
magnitude above these bounds.

Ant is compared with frictionless contacts (condim 1) on both backends: with
Ant's own frictional contacts (condim 3) and its RK4 integrator at dt 0.01,
MuJoCo Warp's step departs from MuJoCo's by up to about 0.1 in joint
velocities in about 30% of the steps with contacts (measured; Euler with
friction, and RK4 without friction, agree to 1e-6). The README says so.
"""

from __future__ import annotations

import os

import pytest
import torch

from envs.native import NATIVE_TASKS, NativeVecEnv
from envs.native.batch_sim import BatchSim
from envs.native.warp_sim import WarpSim, warp_model

N, STEPS = 4, 12
CONTACT_FREE = ("InvertedPendulum-v5", "InvertedDoublePendulum-v5", "Reacher-v5", "Swimmer-v5", "Pusher-v5")
TASKS = ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5", *CONTACT_FREE)
STATE = ("qpos", "qvel", "qacc_warmstart", "ctrl")
# Warp's CPU device here and in CI; bench/gpu_check.sh runs these tests on the GPU with cuda:0.
DEVICE = os.environ.get("POLICYLAB_WARP_DEVICE", "cpu")


def backends(task_id: str, randomization=None) -> tuple[NativeVecEnv, NativeVecEnv]:
    """(cpu env, gpu env) of ``task_id`` on the same model, both float64 observations."""
    cls = NATIVE_TASKS[task_id]
    model = warp_model(cls.load_model())
    if task_id == "Ant-v5":
        model.geom_condim[:] = 1  # see the module docstring
    cpu = BatchSim(model, N, fields=cls.fields, nthread=1, rne_post=cls.rne_post)
    gpu = WarpSim(model, N, cls.fields, rne_post=cls.rne_post, nconmax=cls.nconmax, njmax=cls.njmax, device=DEVICE)
    kwargs = {"dtype": torch.float64, "randomization": randomization}
    return NativeVecEnv(cls, N, simulator=cpu, **kwargs), NativeVecEnv(cls, N, simulator=gpu, **kwargs)


def step_both(cpu: NativeVecEnv, gpu: NativeVecEnv, action: torch.Tensor):
    """One step of both from the cpu env's state (rounded to float32): their (obs, reward, terminated) pairs."""
    for name in STATE:  # a state both precisions hold exactly
        field = cpu.sim.batch.bind(name)
        field[...] = field.astype("float32")
    gpu.set_state({**cpu.get_state(), "generator": gpu.generator.get_state()})  # the generators' devices may differ
    out = []
    for env in (cpu, gpu):
        obs, reward, terminated, _, info = env.step(action.to(env.device))
        obs = info.get("final_obs", obs)  # the step's own observation
        out.append((obs.cpu(), reward.cpu(), terminated.cpu()))
    return out


def relative_gap(got: torch.Tensor, want: torch.Tensor) -> float:
    return float(((got - want).abs() / want.abs().clamp(min=1.0)).max())


@pytest.mark.parametrize("task_id", TASKS)
def test_the_gpu_backend_steps_like_the_cpu_backend(task_id):
    cpu, gpu = backends(task_id)
    cpu.reset(seed=0)
    g = torch.Generator().manual_seed(1)
    low, high = torch.as_tensor(cpu.action_space.low), torch.as_tensor(cpu.action_space.high)
    obs_tol = 1e-4 if task_id in CONTACT_FREE else 5e-3
    contact_force = 0.0
    for step in range(STEPS):
        action = low + (high - low) * torch.rand((N, low.shape[0]), generator=g)
        (obs_c, rew_c, term_c), (obs_g, rew_g, term_g) = step_both(cpu, gpu, action)
        assert obs_g.shape == obs_c.shape and torch.isfinite(obs_g).all()
        assert relative_gap(obs_g, obs_c) <= obs_tol, (step, relative_gap(obs_g, obs_c))
        assert relative_gap(rew_g, rew_c) <= 1e-4, (step, relative_gap(rew_g, rew_c))
        assert torch.equal(term_g, term_c), step
        contact_force = max(contact_force, float(gpu.sim.cfrc_ext_post.abs().max().cpu()))
    assert gpu.unstable_resets == cpu.unstable_resets == 0
    if NATIVE_TASKS[task_id].rne_post:  # the compared steps did exercise the contact forces
        assert contact_force > 1.0


def test_randomized_physics_match_across_backends():
    # The same draws (both generators on the cpu device), written into per-world model fields; the gpu
    # backend gets the cpu one's fields with its state and runs mj_setConst on them.
    from envs.config import RandomizationConfig

    cfg = RandomizationConfig(
        mass_scale=(0.7, 1.3), friction_scale=(0.7, 1.3), gain_scale=(0.8, 1.2), damping_scale=(0.5, 1.5)
    )
    cpu, gpu = backends("Walker2d-v5", cfg)
    cpu.reset(seed=3)
    gpu.reset(seed=3)
    if gpu.device.type == "cpu":  # the same generator: the same draws
        assert torch.allclose(gpu.sim.model_fields()["body_mass"].double(), cpu.sim.model_fields()["body_mass"])
    g = torch.Generator().manual_seed(2)
    for step in range(STEPS):
        action = torch.rand((N, 6), generator=g) * 2 - 1
        (obs_c, rew_c, _), (obs_g, rew_g, _) = step_both(cpu, gpu, action)
        assert relative_gap(obs_g, obs_c) <= 5e-3, step
        assert relative_gap(rew_g, rew_c) <= 1e-4, step
