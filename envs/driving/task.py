"""The driving tasks: a 1/10-scale car steering around procedurally generated tracks from its lidar.

The seed lectures' case study ("learning to steer"): the agent is a car, the
state what its lidar sees, the action the steering angle, the reward the
distance travelled without a collision. Everything per step is torch over the
batch of N cars, through the rules of ``envs.driving.rules`` and the lidar of
``envs.driving.lidar`` (written once over numpy or torch arrays, shared with the
deployment controller ``envs.driving.deploy``): the lidar is a batched 2-D ray
cast against every car's wall polylines, progress the car's projection on its
centreline, a collision any corner of the car's outline past a wall's inner face.

``policylab/Driving-v0``: steering only, the drive holds ``target_speed``.
``policylab/DrivingThrottle-v0``: steering and a speed command in [0, ``max_speed``].
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from typing import Any, ClassVar

import mujoco
import numpy as np
import torch
from torch import Tensor

from envs.driving import car, rules, summary
from envs.driving.config import DrivingConfig
from envs.driving.ray_fan import cast_ray_fan
from envs.driving.track import HELDOUT_BASE, Track, generate_track
from envs.native.simulator import Simulator
from envs.native.task import NativeTask

TRACK_CACHE = 2048  # tracks kept per task (a reset that meets a cached seed skips the generator)
CONTROLLER = "envs.driving.deploy:DrivingController"  # policy.json's deployment.controller
RAY_COLOUR = np.array([0.1, 1.0, 0.3, 0.8], dtype=np.float32)


class Driving(NativeTask):
    """Steer a car around a track at a fixed speed; reward = metres of progress along the centreline per step.

    obs = [lidar distances (R, m), forward speed (m/s), yaw rate (rad/s), steering angle (rad)]
    (+ [heading error (rad), lateral offset (m)] with ``privileged_obs``). Hitting a wall ends the
    episode with ``-collision_penalty``; it truncates after ``laps`` laps or the time limit.
    """

    gym_id = "policylab/Driving-v0"
    frame_skip = 10  # 0.005 s physics, 20 Hz control
    chase_body: ClassVar[str] = "car"  # videos follow the car from behind
    draw_rays: ClassVar[bool] = True  # videos show the lidar
    throttle: ClassVar[bool] = False
    nconmax, njmax = 16, 64

    def __init__(
        self, model: mujoco.MjModel, device: torch.device | str = "cpu", options: Any = None, evaluation: bool = False
    ) -> None:
        super().__init__(model, device, options if options is not None else DrivingConfig(), evaluation)
        cfg: DrivingConfig = self.options
        self.cfg = cfg
        dev, f64 = self.device, torch.float64

        def joint_dof(name: str) -> int:
            return int(model.jnt_dofadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)])

        def actuator(name: str) -> int:
            return int(mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, name))

        self.steer_actuators = [actuator(n) for n in car.STEER_JOINTS]
        self.drive_actuators = [actuator(n) for n in car.DRIVE_ACTUATORS]
        self.wheel_dofs = [joint_dof(n) for n in ("wheel_fl", "wheel_fr", "wheel_rl", "wheel_rr")]
        self.ride_height = float(model.body_pos[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "car")][2])
        self.lidar_xy = torch.tensor(car.lidar_offset(model)[:2], dtype=f64, device=dev)
        self.ray_angles = torch.tensor(car.ray_angles(cfg.lidar_rays, cfg.lidar_fov), dtype=f64, device=dev)
        self.outline = torch.tensor(car.OUTLINE, dtype=f64, device=dev)  # [6, 2] in the car frame
        self.tracks: OrderedDict[int, Track] = OrderedDict()
        self.centre = self.normal = self.start = self.end = torch.empty(0)
        self.arc = self.length = self.width = torch.empty(0)
        self.seed = torch.empty(0, dtype=torch.long)
        self._per_world: dict[str, Tensor] = {}
        self._scene: mujoco.MjModel | None = None
        self._scene_seed = -1

    @classmethod
    def load_model(cls, options: Any = None) -> mujoco.MjModel:
        return car.load_car_model()

    # -- tracks ---------------------------------------------------------------------------

    def track(self, seed: int) -> Track:
        """The track of ``seed`` (generated once, then cached)."""
        found = self.tracks.get(seed)
        if found is None:
            found = self.tracks[seed] = generate_track(seed, self.cfg)
            if len(self.tracks) > TRACK_CACHE:
                self.tracks.popitem(last=False)
        return found

    def _allocate(self, n: int) -> None:
        m, dev, f64 = self.cfg.track_points, self.device, torch.float64
        self.centre = torch.zeros((n, m, 2), dtype=f64, device=dev)
        self.normal = torch.zeros((n, m, 2), dtype=f64, device=dev)
        self.start = torch.zeros((n, 2 * m, 2), dtype=f64, device=dev)
        self.end = torch.zeros((n, 2 * m, 2), dtype=f64, device=dev)
        self.arc = torch.zeros((n, m), dtype=f64, device=dev)
        self.length = torch.ones(n, dtype=f64, device=dev)
        self.width = torch.ones(n, dtype=f64, device=dev)
        self.seed = torch.zeros(n, dtype=torch.long, device=dev)
        # episode state: progress position, distance along the track, first lap time, steering command
        self._per_world = {
            name: torch.zeros(n, dtype=f64, device=dev)
            for name in ("s", "travelled", "lap_time", "time", "steer", "steer_change", "collided")
        }

    def _load_tracks(self, ids: Tensor, seeds: list[int]) -> None:
        """Write the tracks of ``seeds`` into worlds ``ids`` [k]."""
        tracks = [self.track(s) for s in seeds]
        as_tensor = lambda arrays: torch.tensor(np.stack(arrays), dtype=torch.float64, device=self.device)  # noqa: E731
        walls = [t.wall_segments() for t in tracks]
        self.centre[ids] = as_tensor([t.centre for t in tracks])
        self.normal[ids] = as_tensor([t.normal for t in tracks])
        self.start[ids] = as_tensor([w[0] for w in walls])
        self.end[ids] = as_tensor([w[1] for w in walls])
        self.arc[ids] = as_tensor([t.arc for t in tracks])
        self.length[ids] = torch.tensor([t.length for t in tracks], dtype=torch.float64, device=self.device)
        self.width[ids] = torch.tensor([t.width for t in tracks], dtype=torch.float64, device=self.device)
        self.seed[ids] = torch.tensor(seeds, dtype=torch.long, device=self.device)

    # -- episodes -------------------------------------------------------------------------

    def reset_worlds(self, ids: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """A new track per world (held-out seeds when evaluating), the car on it at a random place.

        The car starts on the centreline's point i ~ U{0..M-1}, shifted sideways by up to 15% of the
        width, heading along the track +-0.1 rad, rolling at the target speed (``driving``) or at rest.
        """
        ids = ids.nonzero().squeeze(1) if ids.dtype == torch.bool else ids
        if self.centre.shape[0] == 0:  # the first reset starts every world
            self._allocate(len(ids))
        k, dev, f64 = len(ids), self.device, torch.float64
        pool = self.cfg.train_tracks if self.cfg.train_tracks and not self.evaluation else 2**30
        draws = torch.randint(0, pool, (k,), generator=generator, device=generator.device)
        seeds = [int(s) + (HELDOUT_BASE if self.evaluation else 0) for s in draws.tolist()]
        self._load_tracks(ids, seeds)
        m = self.cfg.track_points
        index = torch.randint(0, m, (k,), generator=generator, device=generator.device).to(dev)
        u = torch.rand((k, 2), generator=generator, dtype=f64, device=generator.device).to(dev)
        rows = ids.to(dev)
        position, yaw = rules.start_pose(self.centre[rows, index], self.normal[rows, index], self.width[rows], u, torch)
        qpos, qvel = self.start_state(position, yaw)
        state = self._per_world
        for name in state:
            state[name][rows] = 0.0
        state["lap_time"][rows] = math.nan
        state["s"][rows] = self._arc_position(position, rows)[0]
        return qpos, qvel

    def start_state(self, position: Tensor, yaw: Tensor) -> tuple[Tensor, Tensor]:
        """(qpos [k, nq], qvel [k, nv]) of cars at position [k, 2] heading yaw [k], at the start speed."""
        k = len(yaw)
        qpos, qvel = self.init_qpos.expand(k, -1).clone(), self.init_qvel.expand(k, -1).clone()
        speed = rules.start_speed(self.throttle, self.cfg)
        rules.write_start_state(qpos, qvel, position, yaw, self.ride_height, speed, self.wheel_dofs, torch)
        return qpos, qvel

    def _arc_position(self, xy: Tensor, rows: Tensor | slice = slice(None)) -> tuple[Tensor, Tensor, Tensor]:
        """(arc position s, lateral offset (left +), track heading), each [k], of points xy [k, 2]: rules.project."""
        s, offset, heading = rules.project(self.centre[rows], self.normal[rows], self.arc[rows], xy[:, None, :], torch)
        return s[:, 0], offset[:, 0], heading[:, 0]

    def _wall_contact(self, xy: Tensor, yaw: Tensor) -> Tensor:
        """[N] bool: the car's outline crosses a wall (:func:`rules.wall_contact`)."""
        return rules.wall_contact(self.centre, self.normal, self.arc, self.width, xy, yaw, self.outline, torch)

    # -- control --------------------------------------------------------------------------

    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        if self.throttle:
            return np.array([-car.MAX_STEER, 0.0]), np.array([car.MAX_STEER, self.cfg.max_speed])
        return np.array([-car.MAX_STEER]), np.array([car.MAX_STEER])

    def apply_action(self, sim: Simulator, action: Tensor) -> None:
        """Steering target -> rate-limited command (3.2 rad/s) -> Ackermann wheel angles; speed -> rear wheels."""
        state = self._per_world
        state["steer"], state["steer_change"] = car.steering_command(state["steer"], action[:, 0], self.dt, torch)
        left, right = car.ackermann_angles(state["steer"], torch)
        sim.ctrl[:, self.steer_actuators[0]] = left.to(sim.ctrl.dtype)
        sim.ctrl[:, self.steer_actuators[1]] = right.to(sim.ctrl.dtype)
        speed = (
            action[:, 1].clamp(0.0, self.cfg.max_speed)
            if self.throttle
            else torch.full_like(state["steer"], self.cfg.target_speed)
        )
        for a in self.drive_actuators:
            sim.ctrl[:, a] = (speed / car.WHEEL_RADIUS).to(sim.ctrl.dtype)

    # -- observation, reward --------------------------------------------------------------

    def pose(self, sim: Simulator) -> tuple[Tensor, Tensor]:
        """(xy [N, 2], yaw [N]) of every car."""
        qpos = sim.qpos.to(torch.float64)
        return qpos[:, :2], rules.yaw_of(qpos[:, 3:7], torch)

    def lidar(self, sim: Simulator, noisy: bool = True, pose: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Distances [N, R] along the rays, m (``lidar_range`` where nothing is hit or a ray drops out).

        ``pose``: the cars' (xy, yaw) when the caller has it already.
        """
        cfg = self.cfg
        xy, yaw = pose if pose is not None else self.pose(sim)
        origin = rules.car_to_world(xy, yaw, self.lidar_xy[None], torch)[:, 0]  # the rays point yaw + ray_angles
        distance = cast_ray_fan(origin, yaw, self.ray_angles, self.start, self.end, cfg.lidar_range)
        if noisy and self.generator is not None and (cfg.lidar_noise_std > 0 or cfg.lidar_dropout > 0):
            g = self.generator
            if cfg.lidar_noise_std > 0:
                noise = torch.randn(distance.shape, generator=g, dtype=distance.dtype, device=g.device)
                distance = (distance + cfg.lidar_noise_std * noise.to(distance.device)).clamp(0.0, cfg.lidar_range)
            if cfg.lidar_dropout > 0:
                drop = (
                    torch.rand(distance.shape, generator=g, dtype=distance.dtype, device=g.device) < cfg.lidar_dropout
                )
                distance = torch.where(drop.to(distance.device), torch.full_like(distance, cfg.lidar_range), distance)
        return distance

    def observation(self, sim: Simulator) -> Tensor:
        """[lidar, forward speed, yaw rate, steering] (+ [heading error, lateral offset]): :func:`rules.observation`."""
        xy, yaw = self.pose(sim)
        track_frame = self._arc_position(xy)[1:] if self.cfg.privileged_obs else None
        steer = self._per_world["steer"]
        scan = self.lidar(sim, pose=(xy, yaw))
        return rules.observation(scan, yaw, sim.qvel.to(torch.float64), steer, track_frame, torch)

    def reward(self, sim: Simulator, before: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """r = progress along the centreline (m) - steering_penalty (change of command)^2 - collision_penalty [hit]."""
        state = self._per_world
        xy, yaw = self.pose(sim)
        s, _, _ = self._arc_position(xy)
        progress = rules.progress(s, state["s"], self.length, torch)  # wraps at the start line
        state["s"] = s
        state["travelled"] += progress
        state["time"] += self.dt
        state["lap_time"] = rules.first_lap_time(
            state["travelled"], state["time"], state["lap_time"], self.length, torch
        )
        collided = self._wall_contact(xy, yaw)
        state["collided"] = rules.indicator(collided, progress, torch)
        return rules.reward(progress, state["steer_change"], collided, self.cfg, torch), collided

    def truncated(self, sim: Simulator) -> Tensor:
        """Episodes end after ``laps`` laps."""
        return rules.finished(self._per_world["travelled"], self.length, self.cfg)

    def episode_stats(self) -> dict[str, Tensor]:
        """Per car: laps, lap_completed (1 after a full lap), collision (0/1), distance (m), lap_time (s or nan)."""
        state = self._per_world
        return rules.episode_stats(state["travelled"], self.length, state["collided"], state["lap_time"], torch)

    @classmethod
    def summarize(cls, stats: dict[str, np.ndarray]) -> dict[str, float]:
        """Means of the episode statistics and collisions per km (:func:`envs.driving.summary.summarize`)."""
        return summary.summarize(stats)

    @classmethod
    def summary_lines(cls, result: dict[str, Any]) -> list[str]:
        """Laps completed, collisions per km and the first lap's time on the held-out tracks."""
        return summary.summary_lines(result)

    def deployment(self) -> dict[str, Any]:
        """What a controller needs to build the observation and apply the action (policy.json's ``driving``)."""
        cfg = self.cfg
        angles = self.ray_angles.cpu().tolist()
        return {
            "controller": CONTROLLER,
            "task": "throttle" if self.throttle else "steering",
            "options": dataclasses.asdict(cfg),
            "physics_timestep_s": float(self.model.opt.timestep),
            "frame_skip": self.frame_skip,
            "lidar": {
                "rays": cfg.lidar_rays,
                "angles_rad": angles,
                "angle_note": "ray k points angles_rad[k] counter-clockwise from the car's heading (x forward, y left)",
                "origin_m": car.lidar_offset(self.model).tolist(),
                "origin_note": "in the car frame (origin at its centre of mass); rays are horizontal",
                "range_m": cfg.lidar_range,
                "no_return": "a ray that hits nothing within range_m (or drops out) reads range_m",
                "noise_std_m": cfg.lidar_noise_std,
                "dropout": cfg.lidar_dropout,
            },
            "entries": [f"lidar[{k}]" for k in range(cfg.lidar_rays)]
            + ["forward_speed", "yaw_rate", "steering"]
            + (["heading_error", "lateral_offset"] if cfg.privileged_obs else []),
            "entries_note": "forward_speed: the CoM velocity along the car's x axis (m/s); yaw_rate: about z (rad/s); "
            "steering: the bicycle-model steering command after the rate limit (rad)",
            "steering": {
                "max_rad": car.MAX_STEER,
                "max_rate_rad_s": car.MAX_STEER_RATE,
                "ackermann": "tan(left) = L tan(d) / (L - T/2 tan(d)), tan(right) = L tan(d) / (L + T/2 tan(d))",
                "wheelbase_m": car.WHEELBASE,
                "wheel_track_m": car.WHEEL_TRACK,
            },
            "drive": {
                "wheel_radius_m": car.WHEEL_RADIUS,
                "speed": "action[1], m/s" if self.throttle else f"fixed {cfg.target_speed} m/s",
            },
        }

    def action_names(self) -> list[str]:
        """The action's entries, in order."""
        return ["steering_angle", "speed"] if self.throttle else ["steering_angle"]

    def observation_names(self) -> tuple[list[str], list[str]]:
        """(names, units) of the observation entries."""
        degrees = [math.degrees(a) for a in self.ray_angles.cpu().tolist()]
        names = [f"lidar[{k}] at {d:+.1f} deg" for k, d in enumerate(degrees)] + [
            "forward_speed",
            "yaw_rate",
            "steering",
        ]
        units = ["m"] * len(degrees) + ["m/s", "rad/s", "rad"]
        if self.cfg.privileged_obs:
            names += ["heading_error", "lateral_offset"]
            units += ["rad", "m"]
        return names, units

    def get_state(self) -> dict[str, Any]:
        return {"seed": self.seed.clone(), **{k: v.clone() for k, v in self._per_world.items()}}

    def set_state(self, state: dict[str, Any]) -> None:
        if "seed" not in state:
            return
        ids = torch.arange(len(state["seed"]), device=self.device)
        self._load_tracks(ids, [int(s) for s in state["seed"].tolist()])
        for k in self._per_world:
            self._per_world[k] = state[k].to(self.device, copy=True)

    # -- rendering ------------------------------------------------------------------------

    def render_scene(self, sim: Simulator, index: int) -> tuple[mujoco.MjModel, mujoco.MjData]:
        """The scene model with world ``index``'s walls, and its state."""
        if self._scene is None:
            self._scene = car.scene_model(self.cfg.track_points)
        seed = int(self.seed[index])
        if seed != self._scene_seed:
            car.place_walls(self._scene, self.track(seed))
            self._scene_seed = seed
        data = mujoco.MjData(self._scene)
        data.qpos[:] = sim.qpos[index].detach().cpu().numpy()
        data.qvel[:] = sim.qvel[index].detach().cpu().numpy()
        mujoco.mj_forward(self._scene, data)
        if self.draw_rays:
            xy, yaw = self.pose(sim)
            origin = rules.car_to_world(xy, yaw, self.lidar_xy[None], torch)[:, 0]
            distance = self.lidar(sim, noisy=False, pose=(xy, yaw))
            angle = yaw[:, None] + self.ray_angles
            ends = origin[:, None, :] + distance[..., None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)
            self._last_scan = (origin[index].cpu().numpy(), ends[index].cpu().numpy())
        return self._scene, data

    def decorate_scene(self, scene: mujoco.MjvScene, index: int) -> None:
        """The lidar rays of car ``index`` as green lines from the lidar to where each ray ends."""
        if self._last_scan is None or not self.draw_rays:
            return
        origin, ends = self._last_scan  # of the world render_scene showed last
        height = float(car.lidar_offset(self.model)[2]) + self.ride_height
        for k in range(ends.shape[0]):
            if scene.ngeom >= scene.maxgeom:
                break
            geom = scene.geoms[scene.ngeom]
            mujoco.mjv_initGeom(geom, mujoco.mjtGeom.mjGEOM_LINE, np.zeros(3), np.zeros(3), np.zeros(9), RAY_COLOUR)
            a = np.array([origin[0], origin[1], height])
            b = np.array([ends[k, 0], ends[k, 1], height])
            mujoco.mjv_connector(geom, mujoco.mjtGeom.mjGEOM_LINE, 2.0, a, b)
            scene.ngeom += 1

    _last_scan: tuple[np.ndarray, np.ndarray] | None = None


# The scene's colours (envs/assets/car.xml, envs/driving/car.py), RGB in [0, 1].
LEFT_WALL, RIGHT_WALL = (0.85, 0.85, 0.8), (0.95, 0.75, 0.2)
FLOOR_DARK, FLOOR_LIGHT, SKY = (0.28, 0.30, 0.32), (0.32, 0.34, 0.36), (0.0, 0.0, 0.0)
FLOOR_CELL = 1.5  # m, the floor checker's squares


class DrivingCamera(Driving):
    """Steering from pixels: obs = {camera: RGB uint8 [H, W, 3] from the car's front camera, state: [speed,
    yaw rate, steering]}.

    The image is ray cast in torch over the batch, like the lidar: the camera (``front`` in car.xml,
    0.164 m above the ground, level, 90 degrees vertical field of view) sees vertical walls on a flat
    floor, so each column is one horizontal ray: the wall it meets at horizontal distance d spans the
    rows whose height there, z_cam + y_c d / sqrt(1 + x_c^2), lies in [0, wall height]; rows below are
    floor (a checker, for motion), rows above are sky. ``tests/envs/test_driving.py`` checks the image
    against MuJoCo's own render of the scene from that camera.
    """

    gym_id = "policylab/DrivingCamera-v0"
    draw_rays: ClassVar[bool] = False

    def __init__(
        self, model: mujoco.MjModel, device: torch.device | str = "cpu", options: Any = None, evaluation: bool = False
    ) -> None:
        super().__init__(model, device, options, evaluation)
        width, height = self.cfg.camera_size
        cam = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "front")
        focal = 0.5 * height / math.tan(math.radians(float(model.cam_fovy[cam])) / 2)  # pixels
        dev, f64 = self.device, torch.float64
        self.camera_xy = torch.tensor(model.cam_pos[cam][:2], dtype=f64, device=dev)
        self.camera_z = float(model.cam_pos[cam][2]) + self.ride_height
        x_c = (torch.arange(width, dtype=f64, device=dev) + 0.5 - width / 2) / focal  # right, per column [W]
        y_c = (height / 2 - (torch.arange(height, dtype=f64, device=dev) + 0.5)) / focal  # up, per row [H]
        self.column_angle = torch.atan(-x_c)  # counter-clockwise from the heading [W]
        self.stretch = torch.sqrt(1 + x_c.square())  # ray length per unit of horizontal distance [W]
        self.row_slope = y_c  # [H]
        palette = [LEFT_WALL, RIGHT_WALL, FLOOR_DARK, FLOOR_LIGHT, SKY]
        self.palette = torch.tensor(palette, dtype=torch.float32, device=dev) * 255.0  # [5, 3]

    def camera_image(self, sim: Simulator) -> Tensor:
        """RGB images [N, H, W, 3] uint8 from every car's front camera."""
        xy, yaw = self.pose(sim)
        origin = rules.car_to_world(xy, yaw, self.camera_xy[None], torch)[:, 0]  # [N, 2]
        angle = yaw[:, None] + self.column_angle  # [N, W]
        far = 4 * self.cfg.lidar_range
        # columns run right to left in angle: cast the ascending fan, then flip back to image order
        distance, index = cast_ray_fan(origin, yaw, self.column_angle.flip(0), self.start, self.end, far, True)
        distance, index = distance.flip(1), index.flip(1)  # [N, W]
        right_wall = index >= self.cfg.track_points  # the right wall's segments follow the left's
        # height of the ray at the wall: z_cam + slope * d / stretch, per row and column [N, H, W]
        height = self.camera_z + self.row_slope[None, :, None] * (distance / self.stretch)[:, None, :]
        wall = (height >= 0) & (height <= car.WALL_HEIGHT) & (distance < far)[:, None, :]
        # the floor: rows looking down meet it at horizontal distance z_cam * stretch / (-slope)
        down = (-self.row_slope).clamp(min=1e-9)[None, :, None]
        ground = self.camera_z * self.stretch[None, None, :] / down  # [1, H, W]
        floor = (self.row_slope[None, :, None] < 0) & ~wall
        fx = origin[:, None, None, 0] + ground * torch.cos(angle)[:, None, :]
        fy = origin[:, None, None, 1] + ground * torch.sin(angle)[:, None, :]
        checker = (torch.floor(fx / FLOOR_CELL) + torch.floor(fy / FLOOR_CELL)).remainder(2).long()  # [N, H, W]
        colour = torch.full(height.shape, 4, dtype=torch.long, device=height.device)  # sky
        colour = torch.where(floor, 2 + checker, colour)
        colour = torch.where(wall, right_wall.long()[:, None, :].expand_as(colour), colour)
        return self.palette[colour].round().to(torch.uint8)

    def observation(self, sim: Simulator) -> dict[str, Tensor]:  # type: ignore[override]
        qvel = sim.qvel.to(torch.float64)
        _, yaw = self.pose(sim)
        state = torch.stack([rules.forward_speed(yaw, qvel, torch), qvel[:, 5], self._per_world["steer"]], dim=1)
        return {"camera": self.camera_image(sim), "state": state}


class DrivingThrottle(Driving):
    """Steering and a speed command: action = [steering angle (rad), speed (m/s) in [0, max_speed]]; starts at rest."""

    gym_id = "policylab/DrivingThrottle-v0"
    throttle = True


DRIVING_TASKS: tuple[type[NativeTask], ...] = (Driving, DrivingThrottle, DrivingCamera)
