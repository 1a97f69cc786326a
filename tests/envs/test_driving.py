"""The driving tasks: tracks, lidar, progress, collisions, resets, determinism, config checks."""

from __future__ import annotations

import dataclasses
import math

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import envs
from app.config import load_config
from app.errors import ConfigError
from envs.driving import car
from envs.driving.config import CAR_WIDTH, DrivingConfig
from envs.driving.lidar import scan, wrap_angle
from envs.driving.ray_fan import cast_ray_fan
from envs.driving.rules import car_to_world, yaw_of
from envs.driving.task import Driving, DrivingThrottle
from envs.driving.track import HELDOUT_BASE, Track, generate_track, left_normals, radial_interpolation
from envs.native.vecenv import NativeVecEnv

CFG = DrivingConfig()


def driving(n: int = 4, cls: type[Driving] = Driving, **kwargs) -> NativeVecEnv:
    return NativeVecEnv(cls, n, nthread=1, **kwargs)


def circle_track(radius: float = 4.0, width: float = 1.5, points: int = 128) -> Track:
    """A counter-clockwise circular track: its arc length and normals are known exactly."""
    angle = np.arange(points) * 2 * np.pi / points
    centre = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    length = float(points * np.linalg.norm(centre[1] - centre[0]))  # the polyline's length
    return Track(-1, centre, left_normals(centre), np.arange(points) * length / points, length, width)


def put_track(env: NativeVecEnv, track: Track) -> None:
    """Give every world ``track`` (through the task's own loader)."""
    task = env.task
    task.tracks[track.seed] = track
    task._load_tracks(torch.arange(env.num_envs), [track.seed] * env.num_envs)


def place_car(env: NativeVecEnv, xy: tuple[float, float], yaw: float) -> None:
    """Put every car at (x, y) with heading ``yaw``, at rest, and re-derive the episode state."""
    qpos = env.task.init_qpos.expand(env.num_envs, -1).clone()
    qpos[:, 0], qpos[:, 1], qpos[:, 2] = xy[0], xy[1], env.task.ride_height
    qpos[:, 3], qpos[:, 6] = math.cos(yaw / 2), math.sin(yaw / 2)
    env.set_initial_state(torch.arange(env.num_envs), qpos, torch.zeros(env.num_envs, env.sim.model.nv))
    s, _, _ = env.task._arc_position(env.sim.qpos[:, :2].double())
    env.task._per_world["s"][:] = s
    env.task._per_world["travelled"][:] = 0.0


# -- tracks ---------------------------------------------------------------------------------


def test_same_seed_same_track_and_held_out_seeds_differ():
    a, b = generate_track(7, CFG), generate_track(7, CFG)
    assert np.array_equal(a.centre, b.centre) and a.width == b.width
    c = generate_track(HELDOUT_BASE + 7, CFG)
    assert not np.allclose(a.centre[:5], c.centre[:5])


def test_trigonometric_interpolation_passes_through_the_control_radii():
    radii = np.array([3.0, 4.0, 3.5, 5.0, 4.2, 3.8, 4.4])
    dense = radial_interpolation(radii, len(radii) * 10)
    assert np.allclose(dense[::10], radii)


@pytest.mark.parametrize("seed", range(20))
def test_tracks_are_closed_evenly_sampled_and_walls_stay_apart(seed):
    track = generate_track(seed, CFG)
    step = np.linalg.norm(np.diff(np.concatenate([track.centre, track.centre[:1]]), axis=0), axis=1)
    assert np.allclose(step, track.length / len(track.centre), rtol=0.02)
    assert CFG.width[0] <= track.width <= CFG.width[1]
    assert np.allclose(np.linalg.norm(track.normal, axis=1), 1.0)
    # the two walls never come closer than the track's width minus a little (curvature) anywhere
    gap = np.linalg.norm(track.left[:, None] - track.right[None], axis=2).min()
    assert gap > 0.8 * track.width


# -- lidar ----------------------------------------------------------------------------------


def test_rays_against_one_wall_at_a_known_place():
    origin = torch.zeros(1, 2, dtype=torch.float64)
    start = torch.tensor([[[2.0, -1.0]]], dtype=torch.float64)
    end = torch.tensor([[[2.0, 2.0]]], dtype=torch.float64)
    angles = torch.tensor([0.0, math.pi / 4, math.atan2(0.5, 2.0), math.pi / 2, math.pi], dtype=torch.float64)
    heading = torch.zeros(1, dtype=torch.float64)
    expected = [2.0, 2.0 * math.sqrt(2.0), math.hypot(2.0, 0.5), 10.0, 10.0]  # pi/4 grazes the end; up, back: miss
    distance = scan(origin, heading, angles, start, end, 10.0, torch)[0]
    assert distance.tolist() == pytest.approx(expected, abs=1e-12)
    # the same rule over numpy arrays (the deployment controller's)
    arrays = (a.numpy() for a in (origin, heading, angles, start, end))
    assert scan(*arrays, 10.0, np)[0].tolist() == pytest.approx(expected, abs=1e-12)
    # the fan caster takes ascending angles: 0, atan2(0.5, 2), pi/4, pi/2, pi
    ascending = angles[[0, 2, 1, 3, 4]]
    fan = cast_ray_fan(origin, heading, ascending, start, end, 10.0)[0]
    assert fan.tolist() == pytest.approx([expected[i] for i in (0, 2, 1, 3, 4)], abs=1e-12)


def test_the_fan_caster_equals_testing_every_ray_against_every_segment():
    """The task's fan (candidate pairs only) is the lidar rule of envs.driving.lidar.scan, bit for bit in torch."""
    env = driving(16)
    env.reset(seed=4)
    task = env.task
    for k in range(30):
        env.step(torch.full((16, 1), 0.3 * math.sin(k / 3)))
        xy, yaw = task.pose(env.sim)
        origin = car_to_world(xy, yaw, task.lidar_xy[None], torch)[:, 0]
        every = scan(origin, yaw, task.ray_angles, task.start, task.end, CFG.lidar_range, torch)
        assert torch.equal(task.lidar(env.sim, noisy=False), every)


def test_lidar_matches_mujoco_ray_casts_against_the_wall_boxes():
    """The torch lidar against mj_ray on the scene model, whose boxes' inner faces are the walls."""
    env = driving(3)
    env.reset(seed=3)
    for _ in range(5):
        env.step(torch.full((3, 1), 0.1))
    task = env.task
    xy, yaw = task.pose(env.sim)
    origin, angle = car_to_world(xy, yaw, task.lidar_xy[None], torch)[:, 0], yaw[:, None] + task.ray_angles
    ours = task.lidar(env.sim, noisy=False)
    height = float(car.lidar_offset(task.model)[2]) + task.ride_height
    for i in range(3):
        model, data = task.render_scene(env.sim, i)
        car_body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "car")
        geomid = np.zeros(1, dtype=np.int32)
        for k in range(angle.shape[1]):
            pnt = np.array([origin[i, 0], origin[i, 1], height], dtype=np.float64)
            vec = np.array([math.cos(angle[i, k]), math.sin(angle[i, k]), 0.0])
            hit = mujoco.mj_ray(model, data, pnt, vec, None, 1, car_body, geomid)
            reference = CFG.lidar_range if hit < 0 else min(hit, CFG.lidar_range)
            assert float(ours[i, k]) == pytest.approx(reference, abs=1e-4), (i, k)


def test_lidar_noise_and_dropout_come_from_the_config():
    cfg = dataclasses.replace(CFG, lidar_dropout=1.0)
    env = driving(2, options=cfg)
    obs = env.reset(seed=0)
    assert torch.all(obs[:, : cfg.lidar_rays] == cfg.lidar_range)
    noisy = driving(2, options=dataclasses.replace(CFG, lidar_noise_std=0.05))
    noisy.reset(seed=0)
    clean = noisy.task.lidar(noisy.sim, noisy=False)
    assert 0.01 < (noisy.task.lidar(noisy.sim) - clean).std() < 0.1


# -- progress, collisions, resets -------------------------------------------------------------


def test_progress_along_a_known_centreline():
    env = driving(1)
    env.reset(seed=0)
    track = circle_track()
    put_track(env, track)
    place_car(env, (4.0, 0.0), math.pi / 2)  # on the centreline, heading along it
    # move the car a quarter turn along the circle: progress is a quarter of the lap
    task = env.task
    env.sim.qpos[:, 0], env.sim.qpos[:, 1] = 0.0, 4.0
    reward, terminated = task.reward(env.sim, None, torch.zeros(1, 1))
    assert not terminated.any()
    assert float(reward[0]) == pytest.approx(track.length / 4, rel=1e-3)
    # and past the start line: progress wraps around instead of jumping by a lap
    env.sim.qpos[:, 0], env.sim.qpos[:, 1] = 4.0, -0.1
    env.task._per_world["s"][:] = task._arc_position(torch.tensor([[4.0, 0.1]], dtype=torch.float64))[0]
    reward, _ = task.reward(env.sim, None, torch.zeros(1, 1))
    assert float(reward[0]) == pytest.approx(-0.2, abs=1e-3)


@pytest.mark.parametrize(("offset", "hit"), [(0.0, False), (0.58, False), (0.61, True), (-0.58, False), (-0.61, True)])
def test_collision_when_the_outline_crosses_a_wall(offset, hit):
    """Track width 1.5: the car's half width is 0.155, so its side reaches a wall at offset +-0.595."""
    env = driving(1)
    env.reset(seed=0)
    put_track(env, circle_track(radius=4.0, width=1.5))
    place_car(env, (4.0 + offset, 0.0), math.pi / 2)
    _, terminated = env.task.reward(env.sim, None, torch.zeros(1, 1))
    assert bool(terminated[0]) == hit


def test_a_crash_ends_the_episode_with_the_penalty_and_statistics():
    env = driving(1)
    env.reset(seed=0)
    put_track(env, circle_track(radius=4.0, width=1.5))
    place_car(env, (4.0, 0.0), 0.0)  # heading straight at the outer wall, 0.75 m away
    for _ in range(40):
        _, reward, terminated, _, info = env.step(torch.zeros(1, 1))
        if terminated[0]:
            break
    assert terminated[0] and float(reward[0]) < -CFG.collision_penalty + 0.5
    stats = info["episode_stats"]
    assert float(stats["collision"][0]) == 1.0 and float(stats["lap_completed"][0]) == 0.0
    assert math.isnan(float(stats["lap_time"][0]))


def test_every_reset_puts_the_car_on_its_track_aligned_and_clear_of_the_walls():
    env = driving(64)
    for seed in range(3):
        env.reset(seed=seed)
        task = env.task
        xy, yaw = task.pose(env.sim)
        _, offset, heading = task._arc_position(xy)
        assert (offset.abs() <= 0.15 * task.width + 1e-9).all()
        assert wrap_angle(yaw - heading, torch).abs().max() <= 0.1 + 1e-9
        assert not task._wall_contact(xy, yaw).any()
        assert torch.allclose(env.sim.qpos[:, 2], torch.full((64,), task.ride_height, dtype=torch.float64))


def test_training_and_evaluation_tracks_are_disjoint():
    train, held_out = driving(16), driving(16, evaluation=True)
    train.reset(seed=0)
    held_out.reset(seed=0)
    assert (train.task.seed < HELDOUT_BASE).all() and (train.task.seed < CFG.train_tracks).all()
    assert (held_out.task.seed >= HELDOUT_BASE).all()


def test_same_seed_same_tracks_and_same_episode():
    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        env = driving(4)
        out = [env.reset(seed=5)]
        for k in range(30):
            out.append(env.step(torch.full((4, 1), 0.2 * math.sin(k / 5)))[0])
        return env.task.seed.clone(), out

    (seeds_a, a), (seeds_b, b) = run(), run()
    assert torch.equal(seeds_a, seeds_b)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_steering_is_rate_limited_and_ackermann():
    env = driving(1)
    env.reset(seed=0)
    env.step(torch.full((1, 1), car.MAX_STEER))
    assert float(env.task._per_world["steer"][0]) == pytest.approx(car.MAX_STEER_RATE * env.dt)
    for _ in range(5):
        env.step(torch.full((1, 1), car.MAX_STEER))
    left, right = (float(env.sim.ctrl[0, a]) for a in env.task.steer_actuators)
    assert left > car.MAX_STEER * 0.9 > right > 0  # turning left: the inner (left) wheel turns more
    # Ackermann geometry, by hand: both front wheels' axes pass through one turning centre on the rear axle's
    # line, at R = L / tan(steer) from the car's centre line; the inner wheel sits w/2 closer to it, the outer
    # w/2 farther: L / tan(left) = R - w/2 and L / tan(right) = R + w/2.
    steer = float(env.task._per_world["steer"][0])
    assert steer == pytest.approx(car.MAX_STEER)  # 0.4189 / 3.2 rad/s = 0.13 s to reach the limit; 6 steps are past it
    radius = car.WHEELBASE / math.tan(steer)
    assert car.WHEELBASE / math.tan(left) == pytest.approx(radius - car.WHEEL_TRACK / 2, rel=1e-6)
    assert car.WHEELBASE / math.tan(right) == pytest.approx(radius + car.WHEEL_TRACK / 2, rel=1e-6)
    # the same numbers written out: L = 0.3302, w = 0.265, steer 0.4189 rad -> R = 0.7416 m
    assert (left, right) == pytest.approx((0.4968, 0.3612), abs=1e-4)


def test_resume_state_restores_tracks_and_progress():
    env = driving(4)
    env.reset(seed=1)
    for _ in range(10):
        env.step(torch.full((4, 1), 0.05))
    state = env.get_state()
    expected = [env.step(torch.full((4, 1), 0.05))[1] for _ in range(10)]
    other = driving(4)
    other.reset(seed=99)
    other.set_state(state)
    got = [other.step(torch.full((4, 1), 0.05))[1] for _ in range(10)]
    assert all(torch.allclose(x, y) for x, y in zip(expected, got, strict=True))


# -- the Gymnasium side, spaces, throttle ------------------------------------------------------


@pytest.mark.parametrize("env_id", ["policylab/Driving-v0", "policylab/DrivingThrottle-v0"])
def test_gymnasium_environment_checker_passes(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.spec.max_episode_steps == 1000


def test_throttle_variant_starts_at_rest_and_drives_at_the_commanded_speed():
    env = driving(2, cls=DrivingThrottle)
    env.reset(seed=0)
    assert env.action_space.shape == (2,) and env.action_space.high[1] == CFG.max_speed
    assert torch.allclose(env.sim.qvel[:, :2], torch.zeros(2, 2, dtype=torch.float64))
    for _ in range(12):  # 0.6 s, less than it takes to reach a wall from the start
        obs, _, terminated, *_ = env.step(torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
        assert not terminated.any()
    speed = obs[:, CFG.lidar_rays]
    assert torch.allclose(speed, torch.ones(2), atol=0.1)


def test_yaw_of_quaternions():
    yaw = torch.tensor([0.3, -2.0, 3.0], dtype=torch.float64)
    quat = torch.stack([torch.cos(yaw / 2), 0 * yaw, 0 * yaw, torch.sin(yaw / 2)], dim=1)
    assert torch.allclose(yaw_of(quat, torch), yaw)


# -- config -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (f"task.driving.width=[0.2,{CAR_WIDTH}]", r"task.driving.width: must be at least the car's width"),
        ("task.driving.control_points=3", r"task.driving.control_points: a closed track needs at least 4"),
        ("task.driving.lidar_rays=0", r"task.driving.lidar_rays: must be >= 1"),
        ("task.driving.lidar_fov=0", r"task.driving.lidar_fov: must be in \(0.0, 360.0\], got 0"),
        ("task.driving.lidar_fov=400", r"task.driving.lidar_fov: must be in \(0.0, 360.0\], got 400"),
        ("task.driving.camera_size=[4,4]", r"task.driving.camera_size: must be \[width, height\]"),
        ("task.driving.radius=[1.0,1.5]", r"task.driving.radius: the smallest radius"),
        ("task.backend=gym", r"task.backend: policylab/Driving-v0 is a native task of our own"),
    ],
)
def test_impossible_driving_configs_are_refused_with_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("driving", [override])


def test_the_shipped_config_builds_its_task():
    cfg = load_config("driving")
    env = envs.make(cfg.task, num_envs=2)
    assert env.observation_space.shape == (CFG.lidar_rays + 3,)
    assert env.action_space.shape == (1,)


def test_the_gpu_backend_drives_the_same_car():
    """MuJoCo Warp (on Warp's CPU device here, CUDA on a GPU machine) against mujoco.batch, same seed."""
    import os

    from envs.native.simulator import make_simulator

    device = os.environ.get("POLICYLAB_WARP_DEVICE", "cpu")
    warp = NativeVecEnv(Driving, 4, simulator=make_simulator("gpu", Driving, 4, device=device))
    cpu = driving(4)
    a, b = warp.reset(seed=0), cpu.reset(seed=0)
    assert torch.allclose(a.cpu(), b, atol=1e-4)
    for k in range(20):
        action = torch.full((4, 1), 0.2 * math.sin(k / 4))
        (a, ra, *_), (b, rb, *_) = warp.step(action.to(warp.device)), cpu.step(action)
    # after 1 s of weaving: lidar within 10 cm (5 cm seen), speed within 2 cm/s, yaw rate within 0.1 rad/s
    # (float32 and Warp's own contact solver make the two simulations drift apart slowly)
    rays = CFG.lidar_rays
    assert torch.allclose(a.cpu()[:, :rays], b[:, :rays], atol=0.1)
    assert torch.allclose(a.cpu()[:, rays], b[:, rays], atol=2e-2)
    assert torch.allclose(a.cpu()[:, rays + 1], b[:, rays + 1], atol=0.1)
    assert torch.allclose(ra.cpu(), rb, atol=2e-3)


def test_the_shared_randomization_reaches_the_car():
    """Mass and tire friction per car, and steering latency, through task.randomization."""
    from envs.config import RandomizationConfig

    cfg = RandomizationConfig(mass_scale=(0.5, 1.5), friction_scale=(0.5, 1.0), latency_steps=(1, 1))
    env = driving(4, randomization=cfg)
    env.reset(seed=0)
    mass = env.sim.model_field("body_mass")[:, 1]  # the chassis
    assert len(set(mass.tolist())) == 4 and ((mass >= 0.5 * 3.30) & (mass <= 1.5 * 3.30)).all()
    env.step(torch.full((4, 1), car.MAX_STEER))
    assert torch.all(env.task._per_world["steer"] == 0.0)  # the command arrives one step late
    env.step(torch.full((4, 1), car.MAX_STEER))
    assert torch.allclose(
        env.task._per_world["steer"], torch.full((4,), car.MAX_STEER_RATE * env.dt, dtype=torch.float64)
    )
