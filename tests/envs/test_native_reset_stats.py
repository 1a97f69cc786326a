"""Our native reset sampling against Gymnasium v5's own, in distribution.

The parity test copies Gymnasium's initial state into ours, so it never sees
our reset noise, Reacher's goal or Pusher's object position. Here both sides
draw N = 4000 initial states and every entry of [qpos, qvel] (plus the goal's
or object's distance from the origin) must agree in

- mean: |m_ours - m_gym| <= K sqrt(s_ours^2 / N + s_gym^2 / N), K standard
  errors of the difference of two independent sample means;
- standard deviation: |s_ours - s_gym| <= K sqrt(se_ours^2 + se_gym^2), with
  se(s) = sqrt((m4 - s^4) / (4 s^2 N)) from each sample's fourth central moment
  m4 (the delta method; sigma sqrt(0.2 / N) for a uniform, sigma / sqrt(2N) for a
  normal);
- tail: the fraction of draws beyond 2 s of the mean (0 for a uniform, 4.6% for
  a normal), within K binomial standard errors, so that a uniform and a normal
  of the same std are told apart.

K = 5: about 200 comparisons in all, each failing by chance with probability
below 1e-6 (the seeds are fixed, so the test is deterministic anyway). At
N = 4000 this still catches a noise scale 5% off, or a mean shifted by a tenth
of a standard deviation. Entries that are constant on both sides (Pusher's goal,
the zeroed velocities) must be equal.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from envs.native import NATIVE_TASKS, NativeVecEnv

N_WORLDS, ROUNDS = 1000, 4  # N = 4000 initial states on each side
K = 5.0


def extra_columns(task_id: str, qpos: np.ndarray) -> np.ndarray:
    """[N, k] derived quantities: Reacher's goal and Pusher's object distance from the origin (the goal)."""
    if task_id == "Reacher-v5":
        return np.linalg.norm(qpos[:, -2:], axis=1, keepdims=True)
    if task_id == "Pusher-v5":
        return np.linalg.norm(qpos[:, -4:-2], axis=1, keepdims=True)
    return np.zeros((len(qpos), 0))


def ours(task_id: str) -> np.ndarray:
    """[N, nq + nv + k] initial states of our native task (its reset, all worlds at once)."""
    env = NativeVecEnv(NATIVE_TASKS[task_id], N_WORLDS, nthread=1, dtype=torch.float64)
    rows = []
    for r in range(ROUNDS):
        env.reset(seed=0 if r == 0 else None)
        qpos, qvel = env.sim.qpos.numpy().copy(), env.sim.qvel.numpy().copy()
        rows.append(np.concatenate([qpos, qvel, extra_columns(task_id, qpos)], axis=1))
    return np.concatenate(rows)


def gymnasiums(task_id: str) -> np.ndarray:
    """[N, nq + nv + k] initial states of Gymnasium's v5 env, one reset at a time."""
    env = gym.make(task_id).unwrapped
    env.reset(seed=1)
    rows = []
    for _ in range(N_WORLDS * ROUNDS):
        env.reset()
        qpos = env.data.qpos.copy()[None]
        rows.append(np.concatenate([qpos, env.data.qvel.copy()[None], extra_columns(task_id, qpos)], axis=1))
    env.close()
    return np.concatenate(rows)


def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per column of x [N, d]: mean, std, standard error of the std, fraction beyond 2 std."""
    n = len(x)
    mean, std = x.mean(axis=0), x.std(axis=0)
    m4 = ((x - mean) ** 4).mean(axis=0)
    safe = np.where(std > 0, std, 1.0)
    se_std = np.sqrt(np.maximum(m4 - std**4, 0.0) / (4 * safe**2 * n))
    tail = (np.abs(x - mean) > 2 * std).mean(axis=0)
    return mean, std, se_std, tail


@pytest.mark.parametrize("task_id", ["Hopper-v5", "Humanoid-v5", "HalfCheetah-v5", "Reacher-v5", "Pusher-v5"])
def test_reset_distribution_matches_gymnasium_v5(task_id: str) -> None:
    a, b = ours(task_id), gymnasiums(task_id)
    n = len(a)
    assert a.shape == b.shape
    mean_a, std_a, se_a, tail_a = moments(a)
    mean_b, std_b, se_b, tail_b = moments(b)
    constant = (std_a == 0) & (std_b == 0)
    np.testing.assert_allclose(mean_a[constant], mean_b[constant], rtol=0, atol=1e-12, err_msg="constant entries")
    varying = ~constant
    assert (std_a[varying] > 0).all() and (std_b[varying] > 0).all(), "an entry varies on one side only"
    for i in np.flatnonzero(varying):
        where = f"{task_id} column {i}"
        mean_tol = K * np.sqrt((std_a[i] ** 2 + std_b[i] ** 2) / n)
        assert abs(mean_a[i] - mean_b[i]) <= mean_tol, f"{where}: mean {mean_a[i]:.6g} vs {mean_b[i]:.6g}"
        std_tol = K * np.hypot(se_a[i], se_b[i])
        assert abs(std_a[i] - std_b[i]) <= std_tol, f"{where}: std {std_a[i]:.6g} vs {std_b[i]:.6g}"
        p = (tail_a[i] + tail_b[i]) / 2
        tail_tol = K * np.sqrt(2 * p * (1 - p) / n) + 1e-12
        assert abs(tail_a[i] - tail_b[i]) <= tail_tol, f"{where}: tail {tail_a[i]:.4f} vs {tail_b[i]:.4f}"
