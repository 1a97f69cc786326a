"""Sim-to-sim check: run an exported policy the way a robot controller would.

    python -I app/deploy_sim.py runs/<task>/<run>/export [--episodes 10] [--latency 0] [--obs-noise 0]

Run as a script in its own process (``make deploy-sim`` does this). It never
imports torch, ``app/`` or ``policies/``: the policy is ``policy.onnx`` under
onnxruntime, and observations are rebuilt from the simulator's state by a small
numpy builder driven only by ``policy.json`` (``envs/obs_layout.py``; ``import
envs`` imports neither torch nor ``app``). For Gymnasium tasks the task's own v5 env is the simulator; it
also gives the reward and, as a cross-check, its own observation.

The control loop: read state -> build observation (+ Gaussian noise) -> policy
-> (optionally delay the command ``latency`` control periods) -> apply for one
control period. The mean return is printed beside the checkpoint's evaluation;
without latency and noise they must agree within noise, and the rebuilt
observations must equal the simulator's, or the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import deque
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

FORBIDDEN = ("torch", "app", "policies")
OBS_TOLERANCE = 1e-6
ROOT = Path(__file__).resolve().parents[1]  # the repository: where envs/ is when it is not installed


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def policy_session(meta: dict[str, Any], folder: Path) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """(onnxruntime session of policy.onnx, action low, high, and the command held until the first one arrives)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(folder / "policy.onnx"), options, providers=["CPUExecutionProvider"])
    action = meta["action"]
    low, high, rest = (np.asarray(action[k], dtype=np.float64) for k in ("low", "high", "center"))
    return session, low, high, rest


def run_episodes(meta: dict[str, Any], folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Roll out the ONNX policy; returns per-episode returns and the observation cross-check."""
    import gymnasium as gym

    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))  # -I leaves the script's folders off the path
    from envs.obs_layout import build_observation

    layout = meta["observation"]["layout"]
    kwargs = dict(meta.get("env_kwargs") or {})
    if meta.get("max_episode_steps"):
        kwargs["max_episode_steps"] = meta["max_episode_steps"]
    env = gym.make(meta["env_id"], **kwargs)
    data = env.unwrapped.data
    session, low, high, rest = policy_session(meta, folder)
    rng = np.random.default_rng(args.seed)
    returns, lengths, obs_gap = [], [], 0.0
    for episode in range(args.episodes):
        sim_obs, _ = env.reset(seed=args.seed + episode)
        pending: deque[np.ndarray] = deque([rest] * args.latency)
        total, steps, done = 0.0, 0, False
        while not done:
            obs = build_observation(data, layout)
            obs_gap = max(obs_gap, float(np.max(np.abs(obs - sim_obs))))
            if args.obs_noise > 0:
                obs = obs + args.obs_noise * rng.standard_normal(obs.shape)
            command = session.run(["action"], {"obs": obs.astype(np.float32)[None]})[0][0].astype(np.float64)
            pending.append(np.clip(command, low, high))
            sim_obs, reward, terminated, truncated, _ = env.step(pending.popleft())
            total += float(reward)
            steps += 1
            done = bool(terminated or truncated)
        returns.append(total)
        lengths.append(steps)
    env.close()
    return {"returns": returns, "lengths": lengths, "obs_gap": obs_gap}


def run_driving_episodes(meta: dict[str, Any], folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The driving policy on held-out tracks, with MuJoCo's own ray casts as the lidar (no torch).

    The track and the scene (walls as boxes) come from ``envs.driving`` (numpy and mujoco); the
    observation is rebuilt from ``policy.json``: ``mj_ray`` from the lidar's origin along each ray
    angle, the car's forward speed and yaw rate from MjData, the steering command the controller
    keeps itself. The controller rate-limits the steering, turns it into Ackermann wheel angles and
    holds the wheel speed. Progress and wall hits follow the task's rules (centreline projection,
    the car's outline against the track's width).
    """
    import mujoco

    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    from envs.driving import car
    from envs.driving.config import DrivingConfig
    from envs.driving.track import HELDOUT_BASE, generate_track, project

    spec = meta["observation"]["driving"]
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["options"].items()}
    cfg = DrivingConfig(**fields)
    throttle = spec["task"] == "throttle"
    privileged = "heading_error" in spec["entries"]
    lidar = spec["lidar"]
    angles = np.asarray(lidar["angles_rad"], dtype=np.float64)
    origin_car = np.asarray(lidar["origin_m"], dtype=np.float64)
    dt = float(spec["physics_timestep_s"]) * int(spec["frame_skip"])
    model = car.scene_model(cfg.track_points)
    data = mujoco.MjData(model)
    body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "car")
    steer_act = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, n) for n in car.STEER_JOINTS]
    drive_act = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, n) for n in car.DRIVE_ACTUATORS]
    wheels = [
        int(model.jnt_dofadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n)])
        for n in ("wheel_fl", "wheel_fr", "wheel_rl", "wheel_rr")
    ]
    session, low, high, rest = policy_session(meta, folder)
    rng = np.random.default_rng(args.seed)
    geomid = np.zeros(1, dtype=np.int32)
    returns, lengths, laps_done, crashes, distance = [], [], [], 0, 0.0
    for episode in range(args.episodes):
        track = generate_track(HELDOUT_BASE + args.seed + episode, cfg)  # a held-out track
        car.place_walls(model, track)
        mujoco.mj_resetData(model, data)
        heading = np.arctan2(-track.normal[0, 0], track.normal[0, 1])  # the tangent is the normal turned right
        data.qpos[:2] = track.centre[0]
        data.qpos[3:7] = [np.cos(heading / 2), 0.0, 0.0, np.sin(heading / 2)]
        speed0 = 0.0 if throttle else cfg.target_speed
        data.qvel[:2] = speed0 * np.array([np.cos(heading), np.sin(heading)])
        data.qvel[wheels] = speed0 / car.WHEEL_RADIUS
        mujoco.mj_forward(model, data)
        s_prev = project(track, data.qpos[None, :2].copy())[0][0]
        steer, travelled, total, steps = 0.0, 0.0, 0.0, 0
        pending: deque[np.ndarray] = deque([rest] * args.latency)
        while steps < int(meta["max_episode_steps"] or 1000):
            rot = data.xmat[body].reshape(3, 3)
            yaw = float(np.arctan2(rot[1, 0], rot[0, 0]))
            origin = data.xpos[body] + rot @ origin_car
            scan = np.empty(len(angles))
            for k, a in enumerate(angles):  # the lidar: one MuJoCo ray cast per beam
                direction = np.array([np.cos(yaw + a), np.sin(yaw + a), 0.0])
                hit = mujoco.mj_ray(model, data, origin, direction, None, 1, body, geomid)
                scan[k] = lidar["range_m"] if hit < 0 else min(hit, lidar["range_m"])
            forward = float(np.cos(yaw) * data.qvel[0] + np.sin(yaw) * data.qvel[1])
            obs = np.concatenate([scan, [forward, data.qvel[5], steer]])
            if privileged:  # heading error and lateral offset from the track, as the task computes them
                _, offset, track_heading = project(track, data.qpos[None, :2].copy())
                error = (yaw - track_heading[0] + np.pi) % (2 * np.pi) - np.pi
                obs = np.concatenate([obs, [error, offset[0]]])
            if args.obs_noise > 0:
                obs = obs + args.obs_noise * rng.standard_normal(obs.shape)
            command = session.run(["action"], {"obs": obs.astype(np.float32)[None]})[0][0].astype(np.float64)
            pending.append(np.clip(command, low, high))
            act = pending.popleft()
            steer, change = (float(v) for v in car.steering_command(steer, act[0], dt))
            left, right = car.ackermann_angles(np.array(steer))
            data.ctrl[steer_act[0]], data.ctrl[steer_act[1]] = float(left), float(right)
            data.ctrl[drive_act] = (act[1] if throttle else cfg.target_speed) / car.WHEEL_RADIUS
            mujoco.mj_step(model, data, nstep=int(spec["frame_skip"]))
            steps += 1
            xy = data.qpos[:2].copy()
            s_now = project(track, xy[None])[0][0]
            progress = (s_now - s_prev + track.length / 2) % track.length - track.length / 2
            s_prev, travelled = s_now, travelled + progress
            yaw = float(np.arctan2(data.xmat[body][3], data.xmat[body][0]))
            rot2 = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
            _, offsets, _ = project(track, xy + car.OUTLINE @ rot2.T)
            hit_wall = bool((np.abs(offsets) > track.width / 2).any())
            total += progress - cfg.steering_penalty * change**2 - cfg.collision_penalty * hit_wall
            if hit_wall or travelled >= cfg.laps * track.length:
                crashes += int(hit_wall)
                break
        returns.append(total)
        lengths.append(steps)
        laps_done.append(travelled / track.length)
        distance += max(travelled, 0.0)
    return {
        "returns": returns,
        "lengths": lengths,
        "obs_gap": 0.0,
        "lap_completed": float(np.mean([lap >= 1 for lap in laps_done])),
        "collisions_per_km": crashes / (distance / 1000.0) if distance > 0 else float("nan"),
    }


def run_franka_episodes(meta: dict[str, Any], folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The arm's policy as its controller runs it: numpy observation and PD targets over MuJoCo (no torch).

    Episodes are drawn like the task draws them (arm pose, target or cube and goal) from ``--seed``;
    the controller keeps its joint targets and previous action itself; rewards and success follow the
    task's rules (``envs.manipulation.deploy``).
    """
    import mujoco

    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    from envs.manipulation import scene
    from envs.manipulation.deploy import ArmTask, config_from_options

    spec = meta["observation"]["franka"]
    cfg = config_from_options(spec["options"])
    model = scene.scene_model(cfg, cube=spec["task"] != "policylab/FrankaReach-v0")
    data = mujoco.MjData(model)
    arm = ArmTask(spec["task"], cfg, model, spec["reward_weights"])
    session, low, high, rest = policy_session(meta, folder)
    rng = np.random.default_rng(args.seed)
    returns, lengths, successes = [], [], []
    for _ in range(args.episodes):
        episode = arm.reset(data, rng)
        pending: deque[np.ndarray] = deque([rest] * args.latency)
        total, steps = 0.0, 0
        while steps < int(meta["max_episode_steps"]):
            obs = arm.observation(data, episode)
            if obs.shape[0] != int(meta["observation"]["size"]):
                fail(
                    f"this code builds {obs.shape[0]} observation entries for {spec['task']}, the export has "
                    f"{meta['observation']['size']}: export the run again with this version"
                )
            if args.obs_noise > 0:
                obs = obs + args.obs_noise * rng.standard_normal(obs.shape)
            command = session.run(["action"], {"obs": obs.astype(np.float32)[None]})[0][0].astype(np.float64)
            pending.append(np.clip(command, low, high))
            change = arm.apply(data, episode, pending.popleft())
            mujoco.mj_step(model, data, nstep=int(spec["frame_skip"]))
            reward, fell = arm.reward(data, episode, change)
            total += reward
            steps += 1
            if fell:
                break
        returns.append(total)
        lengths.append(steps)
        successes.append(arm.success(episode))
    return {"returns": returns, "lengths": lengths, "obs_gap": 0.0, "success": float(np.mean(successes))}


def main() -> int:
    parser = argparse.ArgumentParser(description="sim-to-sim check of an exported policy")
    parser.add_argument("export", type=Path, help="a run's export/ folder (policy.onnx + policy.json)")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--latency", type=int, default=0, help="command delay in control periods")
    parser.add_argument("--obs-noise", type=float, default=0.0, help="std of Gaussian noise added to observations")
    parser.add_argument("--seed", type=int, default=None, help="first episode's seed (default: the evaluation's)")
    args = parser.parse_args()
    if args.episodes < 1 or args.latency < 0 or args.obs_noise < 0:
        fail("--episodes must be at least 1, --latency and --obs-noise at least 0")
    folder = args.export
    for name in ("policy.json", "policy.onnx"):
        if not (folder / name).is_file():
            fail(f"{folder / name} not found; export the run first (make export run=...)")
    meta = json.loads((folder / "policy.json").read_text())
    if "inputs" in meta.get("io", {}):
        names = ", ".join(i["name"] for i in meta["io"]["inputs"])
        fail(
            f"task {meta['task']}: the policy reads several observation fields ({names}); deploy-sim runs policies "
            "over one observation vector (Gymnasium MuJoCo tasks and the lidar driving tasks)"
        )
    driving = "driving" in meta["observation"]
    franka = "franka" in meta["observation"]
    if (
        not driving
        and not franka
        and (meta["observation"].get("layout") is None or str(meta["env_id"]).startswith("dmc:"))
    ):
        fail(
            f"task {meta['task']} ({meta['env_id']}): policy.json has no observation layout; "
            "deploy-sim supports Gymnasium MuJoCo tasks"
        )
    ref = meta["evaluation"]
    if args.seed is None:
        args.seed = int(ref.get("seed", 0))

    runner = run_driving_episodes if driving else run_franka_episodes if franka else run_episodes
    result = runner(meta, folder, args)
    returns = np.asarray(result["returns"])
    mean, std = float(returns.mean()), float(returns.std())
    ref_mean, ref_std, ref_n = float(ref["mean_return"]), float(ref["std_return"]), int(ref["episodes"])
    # Agreement within noise: |difference| below 3 standard errors of the difference (+1% slack).
    noise = 3.0 * math.sqrt(std**2 / len(returns) + ref_std**2 / ref_n) + 0.01 * abs(ref_mean) + 1e-6
    clean = args.latency == 0 and args.obs_noise == 0
    obs_ok = not clean or result["obs_gap"] <= OBS_TOLERANCE
    return_ok = not clean or abs(mean - ref_mean) <= noise
    leaked = [m for m in FORBIDDEN if m in sys.modules]

    print(
        f"task {meta['task']} ({meta['env_id']}), control period {meta['control_period_s']} s, "
        f"latency {args.latency} steps, observation noise {args.obs_noise}"
    )
    print(
        f"deployed policy (onnxruntime): return {mean:.2f} ± {std:.2f} over {len(returns)} episodes "
        f"(mean length {np.mean(result['lengths']):.0f})"
    )
    print(f"checkpoint evaluation:         return {ref_mean:.2f} ± {ref_std:.2f} over {ref_n} episodes")
    if driving:
        print(
            f"held-out tracks, MuJoCo ray casts as the lidar: laps completed in {100 * result['lap_completed']:.0f}% "
            f"of episodes, {result['collisions_per_km']:.2f} collisions per km"
        )
    elif franka:
        print(
            f"PD joint targets at {meta['control_period_s']} s, numpy controller: success in "
            f"{100 * result['success']:.0f}% of episodes (checkpoint evaluation: "
            f"{100 * float(ref.get('success', float('nan'))):.0f}%)"
        )
    else:
        print(f"observation builder vs simulator: largest difference {result['obs_gap']:.3g}")
    verdict = "n/a (latency or noise on)" if not clean else ("agree" if obs_ok and return_ok else "MISMATCH")
    print(f"verdict: {verdict}")
    summary = {
        "returns": result["returns"],
        "mean_return": mean,
        "std_return": std,
        "reference": ref,
        "latency": args.latency,
        "obs_noise": args.obs_noise,
        "obs_gap": result["obs_gap"],
        "verdict": verdict,
        "success": result.get("success"),
        "imported_forbidden": leaked,
    }
    (folder / "deploy_sim.json").write_text(json.dumps(summary, indent=2) + "\n")
    if leaked:
        fail(f"the deployment process imported {', '.join(leaked)}", code=3)
    if not obs_ok:
        print(
            "the observation rebuilt from policy.json differs from the simulator's: order, layout or units are wrong",
            file=sys.stderr,
        )
    return 0 if obs_ok and return_ok else 1


if __name__ == "__main__":
    sys.exit(main())
