"""The gpu backend (WarpSim on MuJoCo Warp), run on Warp's CPU device: the simulator seam, resets, instability.

Few worlds, one compiled model per task shared by the module; the first Warp
compile of a fresh kernel cache takes about half a minute, later ones seconds.
"""

from __future__ import annotations

import os

import mujoco
import numpy as np
import pytest
import torch

from envs.config import RandomizationConfig
from envs.native import NATIVE_TASKS, NativeVecEnv, Simulator, make_simulator
from envs.native.warp_sim import WarpSim, warp_model

HOPPER, HUMANOID = NATIVE_TASKS["Hopper-v5"], NATIVE_TASKS["Humanoid-v5"]
N = 4
# Warp's CPU device here and in CI; bench/gpu_check.sh runs these tests on the GPU with cuda:0.
DEVICE = os.environ.get("POLICYLAB_WARP_DEVICE", "cpu")


@pytest.fixture(scope="module")
def humanoid() -> WarpSim:
    return make_simulator("gpu", HUMANOID, N, device=DEVICE)


@pytest.fixture(scope="module")
def hopper() -> WarpSim:
    return make_simulator("gpu", HOPPER, N, device=DEVICE)


def scramble(sim: WarpSim, seed: int = 0) -> None:
    """Every world a different random state, derived fields computed."""
    sim.reset()
    g = torch.Generator().manual_seed(seed)
    sim.qpos += 0.1 * torch.randn(sim.qpos.shape, generator=g).to(sim.device)
    sim.qvel += torch.randn(sim.qvel.shape, generator=g).to(sim.device)
    sim.forward()


def snapshot(sim: Simulator, fields: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {f: getattr(sim, f).clone() for f in fields}


def test_the_factory_builds_a_warp_simulator_with_the_task_fields_and_buffers(humanoid):
    sim = humanoid
    assert isinstance(sim, WarpSim) and isinstance(sim, Simulator)
    assert sim.num_worlds == N and sim.device.type == DEVICE.split(":")[0]
    assert sim.qpos.shape == (N, sim.model.nq) and sim.qpos.dtype == torch.float32
    assert sim.ctrl.shape == (N, sim.model.nu) and sim.cfrc_ext_post.shape == (N, sim.model.nbody, 6)
    assert sim.cinert.shape == (N, sim.model.nbody, 10) and sim.cvel.shape == (N, sim.model.nbody, 6)
    assert (sim.nconmax, sim.njmax) == (HUMANOID.nconmax, HUMANOID.njmax)
    # Gymnasium's Humanoid asks for PGS, which Warp refuses: it runs with Newton
    assert HUMANOID.load_model().opt.solver == mujoco.mjtSolver.mjSOL_PGS
    assert sim.model.opt.solver == mujoco.mjtSolver.mjSOL_NEWTON
    with pytest.raises(AttributeError, match="field 'site_xpos' is not bound"):
        _ = sim.site_xpos
    with pytest.raises(ValueError, match="no simulator for backend 'tpu'; native backends: cpu, gpu"):
        make_simulator("tpu", HOPPER, 2)


@pytest.mark.parametrize("select", ["index", "mask"])
def test_a_subset_reset_touches_only_those_worlds(humanoid, select):
    sim = humanoid
    scramble(sim)
    fields = ("qpos", "qvel", "xipos", "cinert", "cvel")
    before = snapshot(sim, fields)
    sim.cfrc_ext_post.fill_(1.0)
    ids = torch.tensor([1, 3]) if select == "index" else torch.tensor([False, True, False, True])
    sim.reset(ids)
    sim.forward(ids)
    after = snapshot(sim, (*fields, "cfrc_ext_post"))
    scramble(sim, seed=1)
    sim.reset()  # a reset world holds the model's initial state, whatever it held before
    sim.forward()
    for f in fields:
        assert torch.equal(after[f][[0, 2]], before[f][[0, 2]]), f
        assert torch.equal(after[f][[1, 3]], getattr(sim, f)[[1, 3]]), f
    assert torch.equal(after["qpos"][1], torch.as_tensor(sim.model.qpos0, dtype=torch.float32, device=sim.device))
    assert not after["qvel"][[1, 3]].any()
    assert (after["cfrc_ext_post"][[0, 2]] == 1.0).all() and not after["cfrc_ext_post"][[1, 3]].any()


def test_forward_of_a_subset_leaves_the_other_worlds_derived_fields_alone(humanoid):
    sim = humanoid
    scramble(sim)
    xipos = sim.xipos.clone()
    sim.qpos[[0, 2], 2] += 0.5  # lift the robots of worlds 0 and 2 without recomputing
    sim.forward(torch.tensor([0]))
    assert torch.allclose(sim.xipos[0, 1:, 2], xipos[0, 1:, 2] + 0.5) and torch.equal(sim.xipos[1:], xipos[1:])


def test_state_round_trip_restores_the_worlds_exactly(humanoid):
    sim = humanoid
    scramble(sim)
    sim.ctrl.uniform_(-0.4, 0.4)
    sim.step(5)
    saved = sim.get_state()
    fields = ("qpos", "qvel", "ctrl", "xipos", "cinert", "cvel", "qfrc_actuator", "cfrc_ext_post")
    expected = []
    for _ in range(3):
        sim.step(5)
        expected.append(snapshot(sim, fields))
    scramble(sim, seed=2)
    sim.set_state(saved)
    for want in expected:
        sim.step(5)
        got = snapshot(sim, fields)
        for f in fields:
            assert torch.equal(got[f], want[f]), f


def test_the_captured_graphs_step_like_plain_launches(hopper):
    eager = WarpSim(
        HOPPER.load_model(), N, HOPPER.fields, nconmax=HOPPER.nconmax, njmax=HOPPER.njmax, graph=False, device=DEVICE
    )
    for sim in (hopper, eager):
        scramble(sim, seed=3)
        sim.ctrl.fill_(0.3)
        for _ in range(5):
            sim.step(4)
    for f in ("qpos", "qvel"):
        assert torch.allclose(getattr(hopper, f), getattr(eager, f), rtol=1e-5, atol=1e-6), f


def test_step_reports_non_finite_and_huge_states_as_unstable(hopper):
    sim = hopper
    scramble(sim)
    sim.qvel[2] = float("nan")
    sim.qvel[1, 3] = 1e12
    unstable = sim.step(4)
    assert unstable.dtype == torch.bool and unstable.tolist() == [False, True, True, False]
    sim.reset(unstable)
    sim.forward(unstable)
    assert not sim.step(4).any()


def test_a_world_that_overflows_its_constraint_rows_is_unstable():
    # Hopper standing on its foot needs more than 2 constraint rows (contacts and joint limits).
    sim = make_simulator("gpu", HOPPER, N, njmax=2, device=DEVICE)
    sim.qpos[:, 1] = -0.1  # lower every world's foot into the floor, then one world far above it
    sim.qpos[3, 1] = 5.0
    sim.forward()
    assert sim.step(1).tolist() == [True, True, True, False]


def test_the_vecenv_resets_and_counts_an_injected_non_finite_world(hopper):
    env = NativeVecEnv(HOPPER, N, simulator=hopper)
    env.reset(seed=0)
    act = torch.zeros((N, 3), device=hopper.device)
    env.step(act)
    env.sim.qpos[2, 3] = float("inf")
    obs, reward, terminated, _, info = env.step(act)
    assert env.unstable_resets == 1 and info["unstable"].tolist() == [False, False, True, False]
    assert terminated[2] and reward[2] == 0.0 and torch.isfinite(obs).all() and torch.isfinite(reward).all()
    assert env.elapsed.tolist() == [2, 2, 0, 2]  # world 2 started a new episode, the others went on
    assert torch.isfinite(info["final_obs"]).all()
    obs, reward, *_ = env.step(act)
    assert env.unstable_resets == 1 and torch.isfinite(obs).all()


def test_randomized_masses_give_each_world_its_own_derived_constants():
    cfg = RandomizationConfig(mass_scale=(0.5, 1.5), friction_scale=(0.5, 1.5), damping_scale=(0.5, 1.5))
    sim = make_simulator("gpu", HOPPER, N, device=DEVICE)
    env = NativeVecEnv(HOPPER, N, simulator=sim, randomization=cfg)
    env.reset(seed=0)
    mass = sim.model_fields()["body_mass"]
    assert mass.shape == (N, sim.model.nbody) and not torch.equal(mass[0], mass[1])
    import warp as wp

    subtree = wp.to_torch(sim.m.body_subtreemass)
    invweight = wp.to_torch(sim.m.dof_invweight0)
    for i in range(N):
        host = sim.model_of(i)  # mj_setConst in float64 on the world's own masses
        assert np.allclose(host.body_mass, mass[i].cpu().numpy())
        assert np.allclose(subtree[i].cpu().numpy(), host.body_subtreemass, rtol=1e-5)
        assert np.allclose(invweight[i].cpu().numpy(), host.dof_invweight0, rtol=1e-4)
    for _ in range(5):
        obs, reward, *_ = env.step(torch.rand((N, 3), device=sim.device) * 2 - 1)
        assert torch.isfinite(obs).all() and torch.isfinite(reward).all()


def test_render_state_of_one_world_is_a_host_mjdata(hopper):
    scramble(hopper)
    data = hopper.data_of(2)
    assert np.allclose(data.qpos, hopper.qpos[2].cpu().numpy(), atol=1e-7)
    assert data.xpos.shape == (hopper.model.nbody, 3)


def test_warp_model_replaces_pgs_and_keeps_the_rest():
    model = HUMANOID.load_model()
    running = warp_model(model)
    assert running.opt.solver == mujoco.mjtSolver.mjSOL_NEWTON and running.opt.tolerance >= 1e-6
    assert model.opt.solver == mujoco.mjtSolver.mjSOL_PGS  # the original is left alone
    assert running.opt.timestep == model.opt.timestep and running.opt.integrator == model.opt.integrator
