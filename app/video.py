"""Evaluation videos: render the deterministic policy to H.264 MP4 at the task's control rate.

Rendering is headless: the OpenGL backend is chosen before MuJoCo is imported
(EGL first, then OSMesa; ``MUJOCO_GL`` set by the user is tried first). A
camera that follows the robot is the default; the overlay writes the step, the
running return and the task's main signal (forward speed for locomotion,
distance to the target for manipulation) into the top-left corner.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import PolicylabError

BACKENDS = ("egl", "osmesa")
INSTALL_HINT = (
    "install EGL (Debian/Ubuntu: apt install libegl1 libgl1-mesa-dri, or a GPU driver) "
    "or OSMesa (apt install libosmesa6), or set MUJOCO_GL to a backend that works here"
)
_PROBE = (
    "import mujoco\n"
    "m = mujoco.MjModel.from_xml_string('<mujoco><worldbody><geom size=\"1\"/></worldbody></mujoco>')\n"
    "with mujoco.Renderer(m, 16, 16) as r:\n"
    "    r.render()\n"
)


class RenderError(PolicylabError):
    """No rendering backend works, or a render option is invalid."""


def _probe(backend: str) -> str | None:
    """None if ``backend`` renders in a fresh interpreter, else the reason it does not."""
    env = {**os.environ, "MUJOCO_GL": backend}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if proc.returncode == 0:
        return None
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"exit status {proc.returncode}"


def select_gl_backend(probe: Callable[[str], str | None] = _probe, mujoco_loaded: bool | None = None) -> str:
    """Set ``MUJOCO_GL`` to the first backend that renders; RenderError naming all tried otherwise.

    Must run before MuJoCo is imported: MuJoCo reads ``MUJOCO_GL`` once, at import.
    """
    requested = os.environ.get("MUJOCO_GL", "").strip().lower()
    if mujoco_loaded is None:
        mujoco_loaded = "mujoco" in sys.modules
    if mujoco_loaded:  # too late to switch: check the one in use
        candidates = [requested or "default"]
    else:
        candidates = list(dict.fromkeys([b for b in (requested, *BACKENDS) if b]))
    tried = []
    for backend in candidates:
        reason = probe(backend)
        if reason is None:
            if backend != "default":
                os.environ["MUJOCO_GL"] = backend
            return backend
        tried.append(f"{backend} ({reason})")
    raise RenderError(f"no headless rendering backend works; tried {'; '.join(tried)}. To fix: {INSTALL_HINT}")


# -- camera and overlay -----------------------------------------------------------------


def aim_chase_camera(cam: Any, data: Any, body: str) -> None:
    """A free camera behind and above ``body``, looking where it heads (azimuth = the body's yaw)."""
    import mujoco

    b = mujoco.mj_name2id(data.model, mujoco.mjtObj.mjOBJ_BODY, body)
    xmat = data.xmat[b].reshape(3, 3)
    cam.type = mujoco.mjtCamera.mjCAMERA_FREE
    cam.lookat[:] = data.xpos[b] + xmat[:, 0] * 1.0
    cam.distance, cam.elevation = 3.2, -32.0
    cam.azimuth = float(np.degrees(np.arctan2(xmat[1, 0], xmat[0, 0])))


def make_camera(model: Any, camera: str | None) -> Any:
    """A model camera by name or index, ``free`` (fixed view of the whole model) or, by default,
    ``track``: a camera that follows the robot's root body (the free view for fixed-base robots)."""
    import mujoco

    if camera not in (None, "", "track", "free"):
        index = int(camera) if str(camera).isdigit() else mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if not 0 <= index < model.ncam:
            names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) or str(i) for i in range(model.ncam)]
            valid = ", ".join(["track", "free", *names])
            raise RenderError(f"unknown camera '{camera}'; valid: {valid}")
        cam = mujoco.MjvCamera()
        cam.type, cam.fixedcamid = mujoco.mjtCamera.mjCAMERA_FIXED, index
        return cam
    cam = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, cam)
    # The root body moves if it (or its first child) hangs on the world by a joint with a
    # translational part: free joints (ant, humanoid) or slide joints (hopper's rootx).
    moving = [
        b
        for b in range(1, model.nbody)
        if model.body_parentid[b] == 0
        and any(
            int(model.jnt_type[j]) in (int(mujoco.mjtJoint.mjJNT_FREE), int(mujoco.mjtJoint.mjJNT_SLIDE))
            for j in range(model.body_jntadr[b], model.body_jntadr[b] + model.body_jntnum[b])
        )
    ]
    if camera != "free" and moving:
        # Frame the robot, not the floor: model.stat.extent counts the floor plane.
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        robot = np.ptp(data.xpos[1:], axis=0).max() + 2 * model.geom_rbound[model.geom_bodyid > 0].max()
        cam.type, cam.trackbodyid = mujoco.mjtCamera.mjCAMERA_TRACKING, moving[0]
        cam.lookat[:] = data.subtree_com[moving[0]]  # tracking keeps this offset from the body's CoM
        cam.distance = float(np.clip(2.0 * robot, 2.0, 12.0))
        cam.elevation, cam.azimuth = -20.0, 90.0
    return cam


@dataclass
class Signal:
    """The task's main signal for the overlay: a label, a value and its unit."""

    label: str
    value: float
    unit: str


def main_signal(info: dict[str, Any]) -> Signal | None:
    """Forward speed (locomotion) or distance to the target (manipulation) from a step's info."""
    if "x_velocity" in info:
        return Signal("speed", float(info["x_velocity"]), "m/s")
    if "reward_dist" in info:  # Reacher / Pusher: reward_dist = -|fingertip (object) - target|
        return Signal("distance to target", -float(info["reward_dist"]), "m")
    return None


def draw_overlay(frame: np.ndarray, lines: list[str]) -> np.ndarray:
    """Write ``lines`` on a dark box in the top-left corner of ``frame`` [H, W, 3] uint8 (a copy)."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image, "RGBA")
    size = max(10, frame.shape[0] // 30)
    try:
        font: Any = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    pad, line_height = size // 2, int(size * 1.3)
    width = max(int(draw.textlength(line, font=font)) for line in lines) if lines else 0
    draw.rectangle((0, 0, width + 2 * pad, len(lines) * line_height + 2 * pad), fill=(0, 0, 0, 150))
    for i, line in enumerate(lines):
        draw.text((pad, pad + i * line_height), line, fill=(255, 255, 255, 255), font=font)
    return np.asarray(image)


def overlay_lines(step: int, dt: float, total: float, signal: Signal | None) -> list[str]:
    lines = [f"step {step}  t {step * dt:.2f} s", f"return {total:.1f}"]
    if signal is not None:
        lines.append(f"{signal.label} {signal.value:.2f} {signal.unit}")
    return lines


# -- episodes --------------------------------------------------------------------------


@dataclass
class Episode:
    frames: list[np.ndarray]
    total_return: float
    length: int


def check_size(width: int, height: int) -> None:
    if not (16 <= width <= 4096 and 16 <= height <= 4096) or width % 2 or height % 2:
        raise RenderError(f"video size {width}x{height}: width and height must be even numbers in 16..4096")


def policy_input(obs: Any, device: Any) -> Any:
    """One Gymnasium observation (an array, or a dict of arrays) as a batch of one for the policy."""
    import torch

    if isinstance(obs, dict):
        from tensordict import TensorDict

        fields = {k: torch.as_tensor(np.asarray(v))[None] for k, v in obs.items()}
        fields = {k: v.float() if v.is_floating_point() else v for k, v in fields.items()}
        return TensorDict(fields, batch_size=[1], device=device)
    return torch.as_tensor(np.asarray(obs, dtype=np.float32), device=device)[None]


def render_episode(
    policy: Any,
    env: Any,
    seed: int,
    width: int,
    height: int,
    camera: str | None = None,
    overlay: bool = True,
    max_steps: int | None = None,
) -> Episode:
    """One deterministic episode of ``policy`` in a single Gymnasium ``env``; a frame per control step.

    frames: [length + 1] arrays [height, width, 3] uint8 (the first shows the initial state; a native
    task, which starts its next episode inside the step that ends one, has no frame of the final state).
    A native task's scene comes from the task (the driving tasks' walls and lidar rays), and a task with
    a ``chase_body`` is followed from behind by default (``camera="chase"``); a task with a
    ``default_camera`` (the Franka tasks' view of the table) is seen through it by default.
    """
    import mujoco
    import torch

    check_size(width, height)
    base = env.unwrapped
    native = getattr(base, "vec", None)  # a native task: its scene (walls, sensor rays) comes from the task
    if native is not None:
        scene: Callable[[], tuple[Any, Any]] = lambda: native.task.render_scene(native.sim, 0)  # noqa: E731
    else:
        scene = lambda: (base.model, base.data)  # noqa: E731
    dt = float(getattr(base, "dt", 0.0) or 0.0) or float(getattr(native, "dt", 0.0) or 0.0)
    device = next(policy.parameters()).device
    obs, _ = env.reset(seed=seed)
    model, _ = scene()
    model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), width)
    model.vis.global_.offheight = max(int(model.vis.global_.offheight), height)
    task = getattr(native, "task", None)
    chase = getattr(task, "chase_body", None) if camera in (None, "", "chase") else None
    if camera in (None, "") and getattr(task, "default_camera", None):
        camera = task.default_camera  # a fixed-base arm: the scene's own view of the table
    cam = make_camera(model, None if camera == "chase" else camera)
    frames, total, step, signal = [], 0.0, 0, None
    with mujoco.Renderer(model, height=height, width=width) as renderer:

        def snapshot() -> np.ndarray:
            _, data = scene()
            if chase is not None:
                aim_chase_camera(cam, data, chase)
            renderer.update_scene(data, camera=cam)
            if native is not None:
                native.task.decorate_scene(renderer.scene, 0)
            frame = renderer.render()
            return draw_overlay(frame, overlay_lines(step, dt, total, signal)) if overlay else frame.copy()

        frames.append(snapshot())
        done = False
        while not done and (max_steps is None or step < max_steps):
            with torch.no_grad():
                action = policy.act(policy_input(obs, device))[0]
            obs, reward, terminated, truncated, info = env.step(action.cpu().double().numpy())
            total += float(reward)
            step += 1
            signal = main_signal(info)
            done = bool(terminated or truncated)
            if not done or native is None:  # a native task has already begun its next episode: not that
                frames.append(snapshot())
    return Episode(frames, total, step)


def write_mp4(frames: list[np.ndarray], path: Path, fps: float) -> Path:
    """H.264 (yuv420p) MP4 through imageio-ffmpeg, at ``fps`` frames per second."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.mp4")
    with imageio.get_writer(
        tmp, fps=fps, codec="libx264", pixelformat="yuv420p", quality=8, macro_block_size=1, ffmpeg_log_level="error"
    ) as writer:
        for frame in frames:
            writer.append_data(frame)
    tmp.replace(path)
    return path


def gif_bytes(frames: list[np.ndarray], fps: float, max_frames: int = 300) -> bytes:
    """An animated GIF of at most ``max_frames`` frames (evenly subsampled), for TensorBoard."""
    from PIL import Image

    stride = max(1, int(np.ceil(len(frames) / max_frames)))
    images = [Image.fromarray(f) for f in frames[::stride]]
    buffer = io.BytesIO()
    duration = max(20, int(1000 * stride / fps))
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)
    return buffer.getvalue()


def log_video_to_tensorboard(writer: Any, tag: str, frames: list[np.ndarray], fps: float, step: int) -> None:
    """Log frames as an animated image (TensorBoard's video format) without moviepy."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    height, width = frames[0].shape[:2]
    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=gif_bytes(frames, fps))
    writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)


def render_run(
    run: str | Path,
    episodes: int = 3,
    width: int = 640,
    height: int = 480,
    camera: str | None = None,
    overlay: bool = True,
    which: str = "latest",
    seed: int | None = None,
) -> list[tuple[Path, Episode]]:
    """Render ``episodes`` deterministic episodes of a run's checkpoint to ``<run>/videos/*.mp4``."""
    import envs
    from app.checkpoint import load_run_checkpoint
    from app.evaluate import EVAL_SEED_OFFSET, load_policy

    check_size(width, height)
    path, ckpt, cfg, run_dir = load_run_checkpoint(run, which)
    env = envs.make_single(cfg.task)
    try:
        policy = load_policy(ckpt, cfg, env, path)
        dt = float(getattr(env.unwrapped, "dt", 0.0) or 0.0) or 1.0 / 30
        first_seed = cfg.train.seed + EVAL_SEED_OFFSET if seed is None else seed
        steps = int(ckpt.get("runner", {}).get("env_steps", 0))
        out = []
        for k in range(episodes):
            episode = render_episode(policy, env, first_seed + k, width, height, camera, overlay)
            name = f"{path.stem}-{steps}steps-ep{k}.mp4"
            out.append((write_mp4(episode.frames, run_dir / "videos" / name, fps=1.0 / dt), episode))
    finally:
        env.close()
    return out
