"""The native tasks against Gymnasium v5: same initial state, same 300 random actions, same results.

Both sides run MuJoCo on identical states with identical controls, and
``mujoco.batch`` is bit-identical to ``mj_step`` on one MjData, so the
simulator states agree exactly. Observations, rewards and flags are then
computed by torch here and by numpy there; the only differences allowed are
the rounding of sums taken in another order (a few ulp), hence rtol 1e-9 and
atol 1e-6 (the issue's bound) over values up to a few hundred.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from envs.catalog import GYMNASIUM_TASK_IDS
from envs.native import NATIVE_TASKS, NativeVecEnv

N = 2  # two simulations per batch: checks rows are not mixed up
STEPS = 300
TIME_LIMIT = {"Reacher-v5": 50, "Pusher-v5": 100}  # their own limits; the others get 120 to test truncation


def close(ours: torch.Tensor | np.ndarray, theirs: np.ndarray | float, what: str) -> None:
    np.testing.assert_allclose(np.asarray(ours, dtype=np.float64), theirs, rtol=1e-9, atol=1e-6, err_msg=what)


def load_gym_state(env: NativeVecEnv, i: int, gym_env: gym.Env) -> torch.Tensor:
    base = gym_env.unwrapped
    ids = torch.tensor([i])
    qpos = torch.as_tensor(base.data.qpos).unsqueeze(0)
    qvel = torch.as_tensor(base.data.qvel).unsqueeze(0)
    return env.set_initial_state(ids, qpos, qvel)[i]


@pytest.mark.parametrize("task_id", GYMNASIUM_TASK_IDS)  # the tasks with a Gymnasium original
def test_native_task_matches_gymnasium_v5(task_id: str) -> None:
    limit = TIME_LIMIT.get(task_id, 120)
    theirs = [gym.make(task_id, max_episode_steps=limit) for _ in range(N)]
    ours = NativeVecEnv(NATIVE_TASKS[task_id], N, max_episode_steps=limit, dtype=torch.float64)
    assert ours.observation_space.shape == theirs[0].observation_space.shape
    np.testing.assert_array_equal(ours.action_space.low, theirs[0].action_space.low)
    np.testing.assert_array_equal(ours.action_space.high, theirs[0].action_space.high)
    assert ours.dt == pytest.approx(theirs[0].unwrapped.dt)
    for i, env in enumerate(theirs):
        obs, _ = env.reset(seed=100 + i)
        close(load_gym_state(ours, i, env), obs, f"{task_id} reset obs")
    rng = np.random.default_rng(0)
    space = theirs[0].action_space
    episodes_ended, largest_contact_force = 0, 0.0
    for t in range(STEPS):
        actions = rng.uniform(space.low, space.high, size=(N, *space.shape))
        obs, reward, terminated, truncated, info = ours.step(torch.from_numpy(actions))
        for i, env in enumerate(theirs):
            g_obs, g_reward, g_term, g_trunc, _ = env.step(actions[i])
            largest_contact_force = max(largest_contact_force, float(np.abs(env.unwrapped.data.cfrc_ext).max()))
            done = bool(terminated[i] or truncated[i])
            where = f"{task_id} env {i} step {t}"
            close(info["final_obs"][i] if done else obs[i], g_obs, f"{where}: observation")
            close(reward[i], g_reward, f"{where}: reward")
            assert bool(terminated[i]) == g_term, f"{where}: terminated"
            assert bool(truncated[i]) == g_trunc, f"{where}: truncated"
            if done:  # continue both from Gymnasium's next initial state
                episodes_ended += 1
                g_obs, _ = env.reset()
                close(load_gym_state(ours, i, env), g_obs, f"{where}: reset obs")
    assert not bool(info["unstable"].any()) and ours.unstable_resets == 0
    assert episodes_ended > 0  # every task ends an episode within 300 steps (termination or truncation)
    if NATIVE_TASKS[task_id].rne_post:  # the contact forces were exercised, not zero throughout
        assert largest_contact_force > 1.0
