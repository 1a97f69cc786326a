"""The Gymnasium / dm_control adapter behind the VecEnv interface."""

import pytest
import torch

import envs
from app.config import load_config
from app.errors import TaskError


def test_step_returns_torch_and_separates_termination_from_truncation():
    env = envs.make(load_config("InvertedPendulum-v5", ["task.max_episode_steps=20"]).task, num_envs=3)
    obs = env.reset(seed=0)
    assert obs.dtype == torch.float32 and obs.shape == (3, 4)
    saw_truncation = saw_termination = False
    for _ in range(60):
        # push hard one way in env 0 (falls: terminated), hold still in 1 and 2 (time limit: truncated)
        action = torch.tensor([[3.0], [0.0], [0.0]])
        obs, reward, terminated, truncated, info = env.step(action)
        assert reward.shape == (3,) and terminated.dtype == torch.bool
        assert not (terminated & truncated).any()
        done = terminated | truncated
        if done.any():
            final = info["final_obs"]
            assert final.shape == (3, 4)
            # the returned obs is the new episode's first observation, near the upright start
            assert obs[done].abs().max() < 0.02
            assert not torch.equal(final[done], obs[done])
        saw_termination |= bool(terminated[0])
        saw_truncation |= bool(truncated[1])
    assert saw_termination and saw_truncation
    assert env.dt == pytest.approx(0.04) and env.max_episode_steps == 20
    env.close()


def test_state_round_trip_continues_exactly():
    env = envs.make(load_config("Ant-v5").task, num_envs=2)
    env.reset(seed=3)
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        env.step(torch.rand(2, 8, generator=g) * 2 - 1)
    state = env.get_state()
    actions = [torch.rand(2, 8, generator=g) * 2 - 1 for _ in range(40)]
    first = [env.step(a)[:2] for a in actions]
    env.set_state(state)
    second = [env.step(a)[:2] for a in actions]
    for (o1, r1), (o2, r2) in zip(first, second, strict=True):
        assert torch.equal(o1, o2) and torch.equal(r1, r2)  # bit-identical, derived fields included
    env.close()


def test_dm_control_task_is_flattened_in_spec_order():
    env = envs.make(load_config("dmc:cartpole-balance").task, num_envs=2)
    obs = env.reset(seed=0)
    assert obs.shape == (2, 5)
    assert env.observation_names == ["position[0]", "position[1]", "position[2]", "velocity[0]", "velocity[1]"]
    assert env.max_episode_steps == 1000 and env.dt == pytest.approx(0.01)
    _, reward, terminated, truncated, _ = env.step(torch.zeros(2, 1))
    assert reward.shape == (2,) and not terminated.any() and not truncated.any()
    env.close()


def test_unknown_environment_ids_are_clear_errors():
    with pytest.raises(TaskError, match="did you mean.*Hopper-v5"):
        envs.check_env_id("Hoper-v5")
    with pytest.raises(TaskError, match="unknown dm_control task 'dmc:walker-fly'; valid: .*dmc:walker-walk"):
        envs.check_env_id("dmc:walker-fly")


def test_async_vectorization_steps_exactly_like_sync():
    # the same seed and actions through subprocess workers and in-process: bit-identical observations,
    # rewards, terminations, truncations and final observations, across resets (a short time limit)
    def run(vectorization: str) -> list[tuple[torch.Tensor, ...]]:
        task = load_config("InvertedPendulum-v5", ["task.max_episode_steps=15", f"task.vectorization={vectorization}"])
        env = envs.make(task.task, num_envs=3)
        g = torch.Generator().manual_seed(0)
        out = [(env.reset(seed=7),)]
        for _ in range(40):
            # env 0 pushed hard (falls: terminated), envs 1 and 2 nudged (time limit: truncated)
            action = (torch.rand(3, 1, generator=g) - 0.5) * torch.tensor([[0.0], [0.1], [0.1]]) + torch.tensor(
                [[3.0], [0], [0]]
            )
            obs, reward, terminated, truncated, info = env.step(action)
            out.append((obs, reward, terminated, truncated, info.get("final_obs", torch.zeros(0))))
        env.close()
        return out

    sync, asynchronous = run("sync"), run("async")
    assert any(bool(step[3].any()) for step in sync[1:]) and any(bool(step[2].any()) for step in sync[1:])
    for a, b in zip(sync, asynchronous, strict=True):
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)
