"""The simulator seam: what a backend must do for the native tasks, checked on the cpu one (BatchSim)."""

from __future__ import annotations

import pytest
import torch

from envs.native import NATIVE_TASKS, NativeVecEnv, Simulator, make_simulator
from envs.native.batch_sim import BatchSim

HOPPER, HUMANOID = NATIVE_TASKS["Hopper-v5"], NATIVE_TASKS["Humanoid-v5"]


def scrambled(task=HOPPER, n: int = 4, seed: int = 0) -> Simulator:
    """A simulator whose worlds all hold different random states (derived fields computed)."""
    sim = make_simulator("cpu", task, n, nthread=1)
    g = torch.Generator().manual_seed(seed)
    sim.qpos += 0.1 * torch.randn(sim.qpos.shape, generator=g, dtype=torch.float64)
    sim.qvel += torch.randn(sim.qvel.shape, generator=g, dtype=torch.float64)
    sim.forward()
    return sim


def snapshot(sim: Simulator, fields: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {f: getattr(sim, f).clone() for f in fields}


def test_the_factory_builds_the_cpu_simulator_with_the_task_fields_bound():
    sim = make_simulator("cpu", HUMANOID, 3, nthread=1)
    assert isinstance(sim, BatchSim) and isinstance(sim, Simulator)
    assert sim.num_worlds == 3 and sim.device == torch.device("cpu")
    assert sim.qpos.shape == (3, sim.model.nq) and sim.qvel.shape == (3, sim.model.nv)
    assert sim.ctrl.shape == (3, sim.model.nu) and sim.cfrc_ext_post.shape == (3, sim.model.nbody, 6)
    for name in HUMANOID.fields:
        assert getattr(sim, name).shape[0] == 3
    with pytest.raises(AttributeError, match="field 'site_xpos' is not bound"):
        _ = sim.site_xpos
    with pytest.raises(ValueError, match="no simulator for backend 'tpu'; native backends: cpu, gpu"):
        make_simulator("tpu", HOPPER, 2)


def test_a_field_bound_later_is_bound_once_and_counts_as_derived():
    sim = scrambled(HOPPER)  # Hopper reads no derived field
    assert sim.derived_fields() == []  # qpos, qvel, ctrl are mj_forward's inputs
    xpos = sim.bind("xpos")
    assert sim.bind("xpos") is xpos and sim.xpos is xpos and sim.derived_fields() == ["xpos"]
    sim.forward()
    assert xpos.shape == (4, sim.model.nbody, 3) and xpos[:, 1:].abs().sum() > 0


@pytest.mark.parametrize("select", ["index", "mask"])
def test_a_subset_reset_touches_only_those_worlds(select):
    sim = scrambled(HUMANOID)
    fields = ("qpos", "qvel", "xipos", "cinert")
    before = snapshot(sim, fields)
    sim.cfrc_ext_post.fill_(1.0)
    ids = torch.tensor([1, 3]) if select == "index" else torch.tensor([False, True, False, True])
    sim.reset(ids)
    sim.forward(ids)
    fresh = scrambled(HUMANOID, seed=1)  # a reset world holds the model's initial state, whatever it held before
    fresh.reset()
    fresh.forward()
    after = snapshot(sim, fields)
    for f in fields:
        assert torch.equal(after[f][[0, 2]], before[f][[0, 2]]), f
        assert torch.equal(after[f][[1, 3]], getattr(fresh, f)[[1, 3]]), f
    assert torch.equal(sim.qpos[1], torch.as_tensor(sim.model.qpos0)) and not sim.qvel[[1, 3]].any()
    assert (sim.cfrc_ext_post[[0, 2]] == 1.0).all() and not sim.cfrc_ext_post[[1, 3]].any()


def test_forward_of_a_subset_leaves_the_other_worlds_derived_fields_alone():
    sim = scrambled(HUMANOID)
    xipos = sim.xipos.clone()
    sim.qpos[[0, 2], 2] += 0.5  # lift the robots of worlds 0 and 2 without recomputing
    sim.forward(torch.tensor([0]))
    assert torch.allclose(sim.xipos[0, 1:, 2], xipos[0, 1:, 2] + 0.5) and torch.equal(sim.xipos[1:], xipos[1:])


def test_state_round_trip_restores_the_worlds_exactly():
    sim = scrambled(HUMANOID)
    body_mass = sim.model_field("body_mass")
    body_mass[1] *= 1.5  # one world with its own masses
    sim.set_const(torch.tensor([1]))
    sim.ctrl.uniform_(-0.4, 0.4)
    sim.step(5)
    saved = sim.get_state()
    fields = ("qpos", "qvel", "ctrl", "xipos", "cinert", "cvel", "qfrc_actuator", "cfrc_ext_post")
    expected = []
    for _ in range(3):
        sim.step(5)
        expected.append(snapshot(sim, fields))
    sim.reset()  # and the per-world masses changed too
    body_mass[1] = torch.as_tensor(sim.model.body_mass)
    sim.set_state(saved)
    assert torch.equal(sim.model_fields()["body_mass"][1], torch.as_tensor(sim.model.body_mass) * 1.5)
    for want in expected:
        sim.step(5)
        got = snapshot(sim, fields)
        for f in fields:
            assert torch.equal(got[f], want[f]), f


def test_step_reports_the_unstable_worlds():
    sim = scrambled()
    sim.qvel[2] = 1e12
    unstable = sim.step(4)
    assert unstable.dtype == torch.bool and unstable.tolist() == [False, False, True, False]
    assert not sim.step(4).any()


def rollout(env: NativeVecEnv, steps: int = 30) -> list[torch.Tensor]:
    out = [env.reset(seed=0)]
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        out.append(env.step(torch.rand((env.num_envs, env.action_space.shape[0]), generator=g) * 2 - 1)[0])
    return out


def test_the_vecenv_runs_on_the_simulator_it_is_given():
    sim = make_simulator("cpu", HOPPER, 3, nthread=1)
    given = NativeVecEnv(HOPPER, 3, simulator=sim)
    assert given.sim is sim and given.device == sim.device and given.generator.device == sim.device
    built = NativeVecEnv(HOPPER, 3, nthread=1)
    assert all(torch.equal(a, b) for a, b in zip(rollout(given), rollout(built), strict=True))
    with pytest.raises(ValueError, match="the simulator has 3 worlds, not num_envs=4"):
        NativeVecEnv(HOPPER, 4, simulator=make_simulator("cpu", HOPPER, 3, nthread=1))
