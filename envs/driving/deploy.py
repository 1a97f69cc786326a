"""The driving tasks as a car's controller runs them: numpy over one MuJoCo ``MjData``, no torch.

deploy-sim (``app/deploy_sim.py``) drives an exported driving policy with :class:`DrivingController`
(the contract of ``envs/deploy.py``), built from ``policy.json``'s ``observation.driving`` section
alone. The simulator is the car in the scene model, whose walls are boxes with their inner faces on
the track's wall segments (``envs.driving.car.scene_model``). The controller

- reads the lidar as the simulator senses it: MuJoCo's ray casts (``mj_multiRay``) from the lidar
  site, horizontal, at each ray's angle from the car's heading, against the walls' boxes
  (:meth:`DrivingController.observation`); the task's own lidar is the analytic one of
  ``envs.driving.lidar`` on the same state (:meth:`DrivingController.reference_observation`);
- keeps the steering command itself, rate-limits it and turns it into Ackermann wheel angles, and
  holds the drive's wheel speed (``envs.driving.car``);
- scores every step with the task's rules (``envs.driving.rules``): progress along the centreline
  with the wrap at the start line, the car's outline against the track's width, the reward.

Episodes run on held-out tracks (the ones evaluation draws from); the car starts as the task's reset
places it, from this controller's own random draws. ``tests/envs/test_driving_deploy.py`` checks it
step by step against the batched task.
"""

from __future__ import annotations

from typing import Any, ClassVar

import mujoco
import numpy as np

from envs.catalog import NATIVE_TASK_TABLE
from envs.driving import car, lidar, rules, summary
from envs.driving.config import DrivingConfig
from envs.driving.track import HELDOUT_BASE, Track, generate_track
from envs.episode_stats import stack_episodes

WHEEL_JOINTS = ("wheel_fl", "wheel_fr", "wheel_rl", "wheel_rr")


def config_from_options(options: dict[str, Any]) -> DrivingConfig:
    """policy.json's ``options`` back into the config (lists to tuples)."""
    return DrivingConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})


class DrivingController:
    """One car on one held-out track at a time; the arrays of :mod:`envs.driving.rules` with N = 1."""

    # max |observation - reference_observation|: MuJoCo's ray casts against the boxes and the task's
    # crossing tests against the segments agree to rounding (7e-14 m measured over 2,000 steps and
    # 32 rays, tests/envs/test_driving_deploy.py); the rest of the observation is the same rule
    obs_tolerance: ClassVar[float] = 1e-9

    def __init__(
        self,
        cfg: DrivingConfig,
        throttle: bool,
        privileged: bool,
        spec: dict[str, Any],
        max_episode_steps: int,
        seed: int,
    ) -> None:
        self.cfg, self.throttle, self.privileged, self.seed = cfg, throttle, privileged, seed
        self.max_episode_steps = max_episode_steps
        model = self.model = car.scene_model(cfg.track_points)
        model.opt.timestep = float(spec["physics_timestep_s"])
        self.data = mujoco.MjData(model)
        self.frame_skip = int(spec["frame_skip"])
        self.dt = model.opt.timestep * self.frame_skip
        ray = spec["lidar"]
        self.angles = np.asarray(ray["angles_rad"], dtype=np.float64)  # [R] from the heading
        self.lidar_xy = np.asarray(ray["origin_m"], dtype=np.float64)[None, :2]  # [1, 2] car frame
        self.lidar_z = float(ray["origin_m"][2])  # m above the car's origin
        self.range = float(ray["range_m"])

        def named(kind: mujoco.mjtObj, name: str) -> int:
            return int(mujoco.mj_name2id(model, kind, name))

        self.body = named(mujoco.mjtObj.mjOBJ_BODY, "car")
        self.steer_actuators = [named(mujoco.mjtObj.mjOBJ_ACTUATOR, n) for n in car.STEER_JOINTS]
        self.drive_actuators = [named(mujoco.mjtObj.mjOBJ_ACTUATOR, n) for n in car.DRIVE_ACTUATORS]
        self.wheel_dofs = [int(model.jnt_dofadr[named(mujoco.mjtObj.mjOBJ_JOINT, n)]) for n in WHEEL_JOINTS]
        self.ride_height = float(model.body_pos[self.body][2])
        # the episode's track as the rules take it (N = 1), and its state; set by start()
        self.track: Track | None = None
        self.walls: tuple[np.ndarray, np.ndarray] = (np.zeros((1, 0, 2)), np.zeros((1, 0, 2)))  # [1, 2M, 2]
        self.centreline: tuple[np.ndarray, ...] = ()  # centre, normal [1, M, 2], arc [1, M]
        self.length, self.width = np.ones(1), np.ones(1)
        self.state: dict[str, np.ndarray] = {}

    @classmethod
    def from_export(cls, meta: dict[str, Any], seed: int) -> DrivingController:
        """The controller of policy.json's content ``meta`` (its ``observation.driving`` section)."""
        spec = meta["observation"]["driving"]
        steps = int(meta.get("max_episode_steps") or NATIVE_TASK_TABLE[meta["env_id"]].episode_length)
        privileged = "heading_error" in spec["entries"]
        return cls(config_from_options(spec["options"]), spec["task"] == "throttle", privileged, spec, steps, seed)

    # -- episodes ---------------------------------------------------------------------------

    def reset(self, episode: int) -> None:
        """Episode ``episode`` on held-out track ``HELDOUT_BASE + seed + episode``, the car placed by the task's rule.

        The draws: centreline point i ~ U{0..M-1}, u ~ U(0, 1)^2 (numpy, seeded by ``seed + episode``).
        """
        seed = self.seed + episode
        track = generate_track(HELDOUT_BASE + seed, self.cfg)
        rng = np.random.default_rng(seed)
        i = [int(rng.integers(len(track.centre)))]
        u = rng.random((1, 2))
        position, yaw = rules.start_pose(track.centre[i], track.normal[i], np.array([track.width]), u)
        qpos, qvel = self.model.qpos0[None].copy(), np.zeros((1, self.model.nv))
        speed = rules.start_speed(self.throttle, self.cfg)
        rules.write_start_state(qpos, qvel, position, yaw, self.ride_height, speed, self.wheel_dofs)
        self.start(track, qpos[0], qvel[0])

    def start(self, track: Track, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Begin an episode on ``track`` from the state (qpos [nq], qvel [nv]): walls placed, episode state cleared."""
        self.track = track
        car.place_walls(self.model, track)
        start, end = track.wall_segments()
        self.walls = (start[None], end[None])  # [1, 2M, 2] each
        self.centreline = (track.centre[None], track.normal[None], track.arc[None])  # [1, M, ...]
        self.length, self.width = np.array([track.length]), np.array([track.width])
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:], self.data.qvel[:] = qpos, qvel
        mujoco.mj_forward(self.model, self.data)
        xy, _ = self.pose()
        s, _, _ = rules.project(*self.centreline, xy[:, None, :])
        zero = np.zeros(1)
        self.state = {
            "s": s[:, 0],
            "travelled": zero.copy(),
            "time": zero.copy(),
            "lap_time": np.full(1, np.nan),
            "steer": zero.copy(),
            "steer_change": zero.copy(),
            "collided": zero.copy(),
        }

    # -- observation ------------------------------------------------------------------------

    def pose(self) -> tuple[np.ndarray, np.ndarray]:
        """(xy [1, 2], yaw [1]) of the car from its free joint, as the task reads them."""
        qpos = self.data.qpos[None]
        return qpos[:, :2].copy(), rules.yaw_of(qpos[:, 3:7])

    def mujoco_scan(self) -> np.ndarray:
        """Lidar distances [1, R] from MuJoCo's ray casts (``mj_multiRay``) against the scene's walls.

        The lidar as ``policy.json`` describes it: at ``origin_m`` in the car's frame turned by the
        car's heading (its x, y and yaw from the free joint; its height above the car's origin),
        rays horizontal at each angle from the heading; a ray that meets nothing within range reads
        ``range``. The walls are MuJoCo boxes, not the task's segments: this checks them and the
        exported description against the task's lidar.
        """
        mujoco.mj_kinematics(self.model, self.data)  # the geoms where the state is (mj_step leaves them behind)
        xy, yaw = self.pose()
        origin = np.append(rules.car_to_world(xy, yaw, self.lidar_xy)[0, 0], self.data.qpos[2] + self.lidar_z)
        angle = yaw[0] + self.angles
        vec = np.stack([np.cos(angle), np.sin(angle), np.zeros_like(angle)], axis=1).ravel()
        count = len(self.angles)
        geomid, distance = np.zeros(count, dtype=np.int32), np.zeros(count)
        mujoco.mj_multiRay(
            self.model, self.data, origin, vec, None, 1, self.body, geomid, distance, None, count, self.range
        )
        return np.where(distance < 0, self.range, np.minimum(distance, self.range))[None]

    def task_scan(self) -> np.ndarray:
        """Lidar distances [1, R] by the task's rule (:func:`envs.driving.lidar.scan`) on the car's pose."""
        xy, yaw = self.pose()
        origin = rules.car_to_world(xy, yaw, self.lidar_xy)[:, 0]
        return lidar.scan(origin, yaw, self.angles, *self.walls, self.range)

    def _observation(self, scan: np.ndarray) -> np.ndarray:
        xy, yaw = self.pose()
        track_frame = rules.project(*self.centreline, xy[:, None, :])[1:] if self.privileged else None
        track_frame = None if track_frame is None else (track_frame[0][:, 0], track_frame[1][:, 0])
        return rules.observation(scan, yaw, self.data.qvel[None], self.state["steer"], track_frame)[0]

    def observation(self) -> np.ndarray:
        """[obs_dim]: the lidar from MuJoCo's ray casts, the rest as the task builds it."""
        return self._observation(self.mujoco_scan())

    def reference_observation(self) -> np.ndarray:
        """[obs_dim]: the task's observation of the same state (its analytic lidar)."""
        return self._observation(self.task_scan())

    # -- control ----------------------------------------------------------------------------

    def step(self, action: np.ndarray) -> tuple[float, bool]:
        """Apply ``action`` ([steering target (rad)] (+ [speed (m/s)])) for one control period; (reward, done).

        done: the car hit a wall (terminated) or drove ``laps`` laps (truncated).
        """
        state, cfg, data = self.state, self.cfg, self.data
        action = np.asarray(action, dtype=np.float64)[None]  # [1, act_dim]
        state["steer"], state["steer_change"] = car.steering_command(state["steer"], action[:, 0], self.dt)
        left, right = car.ackermann_angles(state["steer"])
        data.ctrl[self.steer_actuators[0]], data.ctrl[self.steer_actuators[1]] = left[0], right[0]
        speed = np.clip(action[0, 1], 0.0, cfg.max_speed) if self.throttle else cfg.target_speed
        data.ctrl[self.drive_actuators] = speed / car.WHEEL_RADIUS
        mujoco.mj_step(self.model, data, nstep=self.frame_skip)
        xy, yaw = self.pose()
        s, _, _ = rules.project(*self.centreline, xy[:, None, :])
        progress = rules.progress(s[:, 0], state["s"], self.length)  # wraps at the start line
        state["s"] = s[:, 0]
        state["travelled"] = state["travelled"] + progress
        state["time"] = state["time"] + self.dt
        state["lap_time"] = rules.first_lap_time(state["travelled"], state["time"], state["lap_time"], self.length)
        centre, normal, arc = self.centreline
        collided = rules.wall_contact(centre, normal, arc, self.width, xy, yaw, car.OUTLINE)
        state["collided"] = rules.indicator(collided, progress)
        reward = rules.reward(progress, state["steer_change"], collided, cfg)
        done = collided | rules.finished(state["travelled"], self.length, cfg)
        return float(reward[0]), bool(done[0])

    # -- statistics -------------------------------------------------------------------------

    def episode_stats(self) -> dict[str, float]:
        """laps, lap_completed, collision, distance (m), lap_time (s or nan) of the episode so far."""
        state = self.state
        stats = rules.episode_stats(state["travelled"], self.length, state["collided"], state["lap_time"])
        return {name: float(value[0]) for name, value in stats.items()}

    def summarize(self, episodes: list[dict[str, float]]) -> dict[str, float]:
        """Lap completion rate, collisions per km, mean first-lap time ... (:func:`envs.driving.summary.summarize`)."""
        return summary.summarize(stack_episodes(episodes))

    def summary_lines(self, summary_: dict[str, float], reference: dict[str, Any]) -> list[str]:
        """The held-out tracks' line beside the checkpoint evaluation's, and what the lidar was."""
        rays = len(self.angles)
        sensor = f"MuJoCo ray casts as the lidar: {rays} horizontal mj_multiRay beams against the walls' boxes"
        return [sensor, *summary.summary_lines(summary_, reference)]


__all__ = ["DrivingController", "config_from_options"]
