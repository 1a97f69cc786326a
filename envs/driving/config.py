"""The ``task.driving`` section: track generator, lidar, camera, speed and reward of the driving tasks.

The car itself is fixed (:mod:`envs.driving.car` documents its numbers, taken from
F1TENTH); what a user varies per experiment lives here, checked at config load
with the offending key named.
"""

from __future__ import annotations

from dataclasses import dataclass

from envs.fields import param

CAR_WIDTH = 0.31  # m, bumper to bumper across (F1TENTH, f1tenth_gym's vehicle parameters)
CAR_LENGTH = 0.58  # m
MAX_CAMERA_SIZE = 512  # px, each side: the offscreen buffer the camera renders into


@dataclass(frozen=True)
class DrivingConfig:
    """Tracks, sensors and reward of ``policylab/Driving-v0`` and its variants."""

    control_points: int = param(8, "track: control radii of the closed loop (at least 4; more: more bends)", low=1)
    radius: tuple[float, ...] = param((3.0, 6.0), "track: range [low, high] of its mean radius, m")
    radius_jitter: float = param(
        0.2,
        "track: each control radius is mean * (1 + U(-j, j)) (more: sharper bends)",
        low=0.0,
        high=1.0,
        high_open=True,
    )
    width: tuple[float, ...] = param((1.2, 2.0), "track: range [low, high] of its width between the walls, m")
    track_points: int = param(128, "track: centreline samples (the walls have as many segments)", low=16)
    train_tracks: int = param(
        1000,
        "training draws its tracks from this many seeds (0: a new track every episode); evaluation never meets them",
        low=0,
    )
    laps: float = param(2.0, "episodes truncate after this many laps", low=0.0, low_open=True)
    target_speed: float = param(2.0, "driving: the speed the drive holds, m/s", low=0.0, low_open=True)
    max_speed: float = param(5.0, "driving_throttle: the throttle's top speed, m/s", low=0.0, low_open=True)
    lidar_rays: int = param(32, "lidar: rays, evenly spread over the field of view", low=1)
    lidar_fov: float = param(270.0, "lidar: field of view in degrees, in (0, 360]", low=0.0, high=360.0, low_open=True)
    lidar_range: float = param(
        10.0, "lidar: maximum range, m (a ray that hits nothing reads this)", low=0.0, low_open=True
    )
    lidar_noise_std: float = param(0.0, "lidar: std of Gaussian noise on each distance, m", low=0.0)
    lidar_dropout: float = param(
        0.0, "lidar: probability that a ray returns nothing (reads the maximum range)", low=0.0, high=1.0
    )
    privileged_obs: bool = param(False, "append heading error and lateral offset to the centreline (debugging)")
    collision_penalty: float = param(10.0, "reward when the car hits a wall (the episode ends)", low=0.0)
    steering_penalty: float = param(0.0, "reward -= this * (change of the steering command, rad)^2 per step", low=0.0)
    camera_size: tuple[int, ...] = param((64, 64), "driving_camera: image [width, height] in pixels")

    def problems(self) -> list[tuple[str, str]]:
        """(key, what is wrong) for tracks, sensors or cameras that cannot be made."""
        out: list[tuple[str, str]] = []
        for name in ("radius", "width"):
            value = getattr(self, name)
            if len(value) != 2 or not 0 < value[0] <= value[1]:
                out.append((name, f"must be a range [low, high] with 0 < low <= high, got {list(value)}"))
        if self.control_points < 4:
            out.append(("control_points", f"a closed track needs at least 4 control points, got {self.control_points}"))
        if len(self.width) == 2 and self.width[0] < CAR_WIDTH:
            out.append(("width", f"must be at least the car's width {CAR_WIDTH} m, got {list(self.width)}"))
        if not out:
            # the inner wall folds over itself where the centreline bends tighter than half the width
            tightest = self.radius[0] * (1 - self.radius_jitter)
            if tightest < self.width[1]:
                out.append(
                    (
                        "radius",
                        f"the smallest radius ({self.radius[0]} * (1 - radius_jitter {self.radius_jitter}) = "
                        f"{tightest:.2f} m) must be at least the largest width {self.width[1]} m",
                    )
                )
        if len(self.camera_size) != 2 or not all(8 <= s <= MAX_CAMERA_SIZE for s in self.camera_size):
            out.append(
                (
                    "camera_size",
                    f"must be [width, height], each in 8..{MAX_CAMERA_SIZE} pixels, got {list(self.camera_size)}",
                )
            )
        return out


__all__ = ["CAR_LENGTH", "CAR_WIDTH", "DrivingConfig"]
