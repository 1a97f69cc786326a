"""The native backend beyond parity: randomization, unstable simulations, config checks, registration."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import envs
from app.config import RandomizationConfig, load_config
from app.errors import ConfigError, TaskError
from envs.native import NATIVE_TASKS, NativeVecEnv
from envs.native.gym_env import registered_id

PHYSICAL = RandomizationConfig(
    mass_scale=(0.5, 1.5), friction_scale=(0.8, 1.2), gain_scale=(0.9, 1.1), damping_scale=(0.5, 2.0)
)


def hopper(n: int = 4, **kwargs) -> NativeVecEnv:
    return NativeVecEnv(NATIVE_TASKS["Hopper-v5"], n, nthread=1, **kwargs)


def rollout(env: NativeVecEnv, steps: int, seed: int = 0) -> list[torch.Tensor]:
    """Observations of ``steps`` steps with fixed random actions (the action stream does not depend on env)."""
    out = [env.reset(seed=seed)]
    actions = torch.Generator().manual_seed(1)
    for _ in range(steps):
        a = torch.rand((env.num_envs, env.action_space.shape[0]), generator=actions) * 2 - 1
        out.append(env.step(a)[0])
    return out


def test_sampled_physics_stays_in_range_and_is_written_into_each_simulation():
    env = hopper(randomization=PHYSICAL)
    env.reset(seed=0)
    scales, model = env.randomizer.scales, env.sim.model
    assert ((scales["mass_scale"] >= 0.5) & (scales["mass_scale"] <= 1.5)).all()
    assert ((scales["friction_scale"] >= 0.8) & (scales["friction_scale"] <= 1.2)).all()
    assert ((scales["gain_scale"] >= 0.9) & (scales["gain_scale"] <= 1.1)).all()
    assert ((scales["damping_scale"] >= 0.5) & (scales["damping_scale"] <= 2.0)).all()
    assert len(set(scales["friction_scale"].tolist())) == env.num_envs  # each environment its own
    for i in range(env.num_envs):
        m = env.sim.batch.get_model(i)  # what simulation i actually runs
        np.testing.assert_allclose(m.body_mass, model.body_mass * scales["mass_scale"][i].numpy())
        np.testing.assert_allclose(m.geom_friction, model.geom_friction * float(scales["friction_scale"][i]))
        gain = model.actuator_gainprm[:, 0] * float(scales["gain_scale"][i])
        np.testing.assert_allclose(m.actuator_gainprm[:, 0], gain)
        np.testing.assert_allclose(m.dof_damping, model.dof_damping * float(scales["damping_scale"][i]))
        # mj_setConst ran with the new masses: the subtree mass of the root is the new total
        np.testing.assert_allclose(m.body_subtreemass[0], m.body_mass.sum())


def test_physics_changes_at_each_reset_and_only_for_the_environments_that_reset():
    env = hopper(randomization=PHYSICAL)
    env.reset(seed=0)
    first = env.randomizer.scales["friction_scale"].clone()
    env.reset()
    assert (env.randomizer.scales["friction_scale"] != first).all()
    before = env.randomizer.scales["friction_scale"].clone()
    for _ in range(200):  # random actions: Hopper falls within a few dozen steps
        _, _, terminated, truncated, _ = env.step(torch.zeros(env.num_envs, 3).uniform_(-1, 1))
        done = terminated | truncated
        if done.any() and not done.all():
            break
    now = env.randomizer.scales["friction_scale"]
    assert (now[done] != before[done]).all() and (now[~done] == before[~done]).all()


def test_randomization_is_reproducible_from_the_seed():
    cfg = dataclasses.replace(PHYSICAL, latency_steps=(0, 2), obs_noise_std=0.01, push_every=7, push_velocity=0.5)
    a, b = rollout(hopper(randomization=cfg), 40, seed=3), rollout(hopper(randomization=cfg), 40, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    c = rollout(hopper(randomization=cfg), 40, seed=4)
    assert not torch.equal(a[-1], c[-1])


@pytest.mark.parametrize("cfg", [RandomizationConfig(), RandomizationConfig(mass_scale=(1.0, 1.0), push_every=5)])
def test_randomization_off_is_bit_identical_to_the_plain_task(cfg):
    plain, off = rollout(hopper(), 60), rollout(hopper(randomization=cfg), 60)
    assert not cfg.enabled
    assert all(torch.equal(x, y) for x, y in zip(plain, off, strict=True))


def test_latency_applies_the_action_from_k_steps_ago():
    env = hopper(2, randomization=RandomizationConfig(latency_steps=(2, 2)))
    env.reset(seed=0)
    actions = [torch.full((2, 3), 0.1 * (t + 1)) for t in range(5)]
    applied = []
    for a in actions:
        env.step(a)
        applied.append(env.sim.ctrl.clone())
    assert torch.equal(applied[0], torch.zeros(2, 3)) and torch.equal(applied[1], torch.zeros(2, 3))
    for t in range(2, 5):
        assert torch.equal(applied[t], actions[t - 2].double())


def test_observation_noise_has_the_configured_std():
    task = NATIVE_TASKS["Humanoid-v5"]
    clean = NativeVecEnv(task, 8, nthread=1).reset(seed=0)
    noisy = NativeVecEnv(task, 8, nthread=1, randomization=RandomizationConfig(obs_noise_std=0.1)).reset(seed=0)
    noise = (noisy - clean).double()
    assert noise.std().item() == pytest.approx(0.1, rel=0.05) and abs(noise.mean().item()) < 0.01


def test_pushes_kick_the_root_at_the_configured_interval():
    cfg = RandomizationConfig(push_every=5, push_velocity=1.0)
    plain, pushed = rollout(hopper(), 7), rollout(hopper(randomization=cfg), 7)
    for t in range(6):  # steps 1..5 run before the first push (applied at the start of step 6)
        assert torch.equal(plain[t], pushed[t])
    assert not torch.equal(plain[6], pushed[6])


def test_an_unstable_simulation_is_reset_and_counted_without_touching_the_others():
    env, twin = hopper(3), hopper(3)
    env.reset(seed=0), twin.reset(seed=0)
    env.sim.qvel[1] = 1e12  # MuJoCo flags the state as bad and the batch reports it
    action = torch.zeros(3, 3)
    obs, reward, terminated, _, info = env.step(action)
    twin_obs, twin_reward, *_ = twin.step(action)
    assert info["unstable"].tolist() == [False, True, False] and env.unstable_resets == 1
    assert bool(terminated[1]) and reward[1] == 0.0 and torch.isfinite(obs).all()
    assert torch.isfinite(info["final_obs"][1]).all()
    for i in (0, 2):
        assert torch.equal(obs[i], twin_obs[i]) and reward[i] == twin_reward[i]
    obs, *_ = env.step(action)
    assert torch.isfinite(obs).all() and env.unstable_resets == 1
    for count in (2, 3):  # the same simulation again, right after its reset: counted each time
        env.sim.qvel[1] = 1e12
        _, _, terminated, _, info = env.step(action)
        assert info["unstable"].tolist() == [False, True, False] and env.unstable_resets == count


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("task.randomization.mass_scal=[0.9,1.1]", r"unknown key 'task.randomization.mass_scal' \(did you mean"),
        ("task.randomization.friction_scale=[1.2,0.8]", r"task.randomization.friction_scale: low must not be above"),
        ("task.randomization.gain_scale=[-0.5,1.0]", r"task.randomization.gain_scale: must not be negative"),
        ("task.randomization.latency_steps=[0,1,2]", r"task.randomization.latency_steps: must be a range"),
        ("task.randomization.obs_noise_std=-1", r"task.randomization.obs_noise_std: must be >= 0.0"),
    ],
)
def test_bad_randomization_fails_at_config_load_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("hopper", [override])


def test_randomization_needs_the_native_backend_and_the_backend_needs_a_native_task():
    cfg = load_config("hopper", ["task.backend=gym", "task.randomization.obs_noise_std=0.1"])
    with pytest.raises(TaskError, match="task.randomization needs task.backend: cpu"):
        envs.make(cfg.task)
    with pytest.raises(TaskError, match="no native version of 'HumanoidStandup-v5'.*native tasks: Humanoid-v5"):
        envs.make(load_config("HumanoidStandup-v5", ["task.backend=cpu"]).task)


def test_configs_of_the_native_tasks_use_the_cpu_backend():
    for name in ("humanoid", "ant", "halfcheetah", "hopper", "walker2d", "swimmer", "inverted_pendulum",
                 "inverted_double_pendulum", "reacher", "pusher"):  # fmt: skip
        cfg = load_config(name)
        assert cfg.task.backend == "cpu" and cfg.task.id in NATIVE_TASKS, name


@pytest.mark.parametrize("task_id", ["Hopper-v5", "Humanoid-v5", "Reacher-v5"])
def test_registered_environments_pass_gymnasiums_checker(task_id):
    env_id = registered_id(task_id)
    env = gym.make(env_id, render_mode="rgb_array")
    assert env.spec.max_episode_steps == NATIVE_TASKS[task_id].max_episode_steps
    with pytest.warns(UserWarning, match="infinity"):  # unbounded observations, like Gymnasium's own MuJoCo envs
        check_env(env.unwrapped, skip_render_check=task_id != "Hopper-v5")
    vec = gym.make_vec(env_id, num_envs=3)
    assert vec.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (3, *gym.make(task_id).observation_space.shape) and obs.dtype == np.float64
    ended = False
    for _ in range(60):
        obs, reward, terminated, truncated, info = vec.step(vec.action_space.sample())
        assert vec.observation_space.contains(obs) and reward.shape == (3,)
        if (terminated | truncated).any():
            ended = True
            i = int(np.flatnonzero(terminated | truncated)[0])
            assert info["_final_obs"][i] and info["final_obs"][i].shape == obs.shape[1:]
    assert ended or task_id == "Humanoid-v5"


def test_the_cpu_backend_steps_with_torch_on_one_thread_and_restores_the_callers_count(monkeypatch):
    # torch's worker threads busy-wait after parallel work and take cores from mujoco.batch's pool
    env = NativeVecEnv(NATIVE_TASKS["Hopper-v5"], 2, nthread=1)
    seen: list[int] = []
    reward = env.task.reward

    def counting(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return reward(*args, **kwargs)

    monkeypatch.setattr(env.task, "reward", counting)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        env.reset(seed=0)
        env.step(torch.zeros(2, 3))
        assert seen == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
