"""The driving controller (numpy over one MjData, envs/driving/deploy.py) against the batched torch task.

Measured on this machine (6 tracks, about 330 steps each, 32 rays): MuJoCo's ray casts (``mj_multiRay``
against the walls' boxes) and the task's lidar rule (crossing tests against the wall segments) on the
same state differ by at most 7e-14 m; over a whole episode, where the two simulations' controls differ
in the last bit (numpy's and torch's tan), observations and rewards differ by at most 8e-13. A lidar
at the chassis' lidar site instead, which tilts with the car's roll and pitch (up to 0.0044 rad on
these tracks), reads up to 5 mm differently (99th percentile 1.5 mm): the task's lidar is planar.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from envs.driving import rules
from envs.driving.config import DrivingConfig
from envs.driving.deploy import DrivingController
from envs.driving.lidar import wrap_angle
from envs.driving.task import Driving, DrivingThrottle
from envs.driving.track import HELDOUT_BASE, generate_track
from envs.native.vecenv import NativeVecEnv

TOLERANCE = 1e-9
FOLLOW_STEPS = 320  # a lap and a bit at 2 m/s on these tracks: the start line is crossed once


def controller_for(task: Driving, seed: int = 0) -> DrivingController:
    """The controller of the policy.json the task's deployment() describes."""
    meta = {"env_id": task.gym_id, "max_episode_steps": 1000, "observation": {"driving": task.deployment()}}
    return DrivingController.from_export(meta, seed)


@pytest.mark.parametrize("cls", [Driving, DrivingThrottle])
def test_the_controller_steps_like_the_batched_task_through_a_lap_wrap_and_a_wall_hit(cls):
    """Same track, start state and actions: per step, observations, rewards, ends and statistics agree to 1e-9.

    The actions follow the centreline (from the privileged observation's heading error and lateral offset)
    past the start line, then steer hard left into the wall.
    """
    cfg = dataclasses.replace(DrivingConfig(), privileged_obs=True)
    env = NativeVecEnv(cls, 1, nthread=1, dtype=torch.float64, options=cfg)
    obs = env.reset(seed=0)[0].numpy()
    controller = controller_for(env.task)
    track = env.task.track(int(env.task.seed[0]))
    controller.start(track, env.sim.qpos[0].numpy().copy(), env.sim.qvel[0].numpy().copy())
    wraps, steps = 0, 0
    for k in range(cls.max_episode_steps):
        assert np.abs(controller.reference_observation() - obs).max() <= TOLERANCE, k
        assert np.abs(controller.observation() - obs).max() <= DrivingController.obs_tolerance, k
        steer = float(np.clip(-1.5 * obs[-2] - 1.0 * obs[-1], -0.4, 0.4)) if k < FOLLOW_STEPS else 0.4
        action = np.array([steer, 2.0] if cls.throttle else [steer])
        s_before = float(controller.state["s"][0])
        reward, done = controller.step(action)
        obs_t, reward_t, terminated, truncated, info = env.step(torch.from_numpy(action)[None])
        wraps += float(controller.state["s"][0]) < s_before - track.length / 2  # crossed the start line
        steps += 1
        assert reward == pytest.approx(float(reward_t[0]), abs=TOLERANCE), k
        assert done == bool(terminated[0] | truncated[0]), k
        if done:
            break
        obs = obs_t[0].numpy()
    assert steps > FOLLOW_STEPS and wraps == 1 and bool(terminated[0])  # a lap wrap, then the wall
    ours, theirs = controller.episode_stats(), {k: float(v[0]) for k, v in info["episode_stats"].items()}
    assert ours.keys() == theirs.keys() and ours["collision"] == 1.0 and ours["lap_completed"] == 1.0
    assert all(ours[k] == pytest.approx(theirs[k], abs=TOLERANCE, nan_ok=True) for k in ours)


def test_reset_starts_on_a_held_out_track_as_the_task_places_its_cars():
    env = NativeVecEnv(Driving, 1, nthread=1)
    controller = controller_for(env.task, seed=7)
    controller.reset(2)
    track = controller.track
    assert track is not None and track.seed == HELDOUT_BASE + 9
    assert np.array_equal(track.centre, generate_track(HELDOUT_BASE + 9, controller.cfg).centre)
    xy, yaw = controller.pose()
    _, offset, heading = rules.project(*controller.centreline, xy[:, None, :])
    assert abs(offset[0, 0]) <= rules.START_OFFSET * track.width + 1e-9
    assert abs(wrap_angle(yaw - heading[:, 0])[0]) <= rules.START_HEADING + 1e-9
    assert rules.forward_speed(yaw, controller.data.qvel[None])[0] == pytest.approx(controller.cfg.target_speed)
    first = controller.data.qpos.copy()
    controller.reset(2)  # the same episode again: the same start
    assert np.array_equal(controller.data.qpos, first)


def test_the_start_rule_is_the_same_over_numpy_and_torch():
    track = generate_track(3, DrivingConfig())
    u = np.array([[0.1, 0.9], [0.7, 0.2]])
    index = [5, 77]
    args = (track.centre[index], track.normal[index], np.full(2, track.width), u)
    position, yaw = rules.start_pose(*args)
    position_t, yaw_t = rules.start_pose(*(torch.from_numpy(a) for a in args), xp=torch)
    assert np.allclose(position, position_t.numpy(), rtol=0, atol=1e-15)
    assert np.allclose(yaw, yaw_t.numpy(), rtol=0, atol=1e-15)
    quat = rules.yaw_quaternion(yaw)
    assert np.allclose(rules.yaw_of(quat), yaw, rtol=0, atol=1e-12)


def test_statistics_over_episodes_and_their_lines():
    env = NativeVecEnv(Driving, 1, nthread=1)
    controller = controller_for(env.task)
    episodes = [
        {"laps": 2.0, "lap_completed": 1.0, "collision": 0.0, "distance": 600.0, "lap_time": 14.0},
        {"laps": 0.5, "lap_completed": 0.0, "collision": 1.0, "distance": 150.0, "lap_time": math.nan},
        {"laps": 1.5, "lap_completed": 1.0, "collision": 1.0, "distance": 250.0, "lap_time": 16.0},
    ]
    summary = controller.summarize(episodes)
    assert summary["collisions_per_km"] == pytest.approx(2.0)  # 2 collisions in 1 km
    assert summary["lap_completed"] == pytest.approx(2 / 3) and summary["lap_time"] == pytest.approx(15.0)
    stacked = {k: np.array([e[k] for e in episodes]) for k in episodes[0]}
    assert Driving.summarize(stacked) == summary  # the task's evaluation: the same function
    lines = controller.summary_lines(summary, {"lap_completed": 1.0, "collisions_per_km": 0.0, "lap_time": 15.2})
    assert "MuJoCo ray casts as the lidar" in lines[0]
    assert lines[1] == (
        "held-out tracks: laps completed in 67% of episodes, 2.00 collisions per km, first lap in 15.0 s "
        "(checkpoint evaluation: 100%, 0.00 per km, 15.2 s)"
    )
