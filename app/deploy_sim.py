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


def run_episodes(meta: dict[str, Any], folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Roll out the ONNX policy; returns per-episode returns and the observation cross-check."""
    import gymnasium as gym
    import onnxruntime as ort

    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))  # -I leaves the script's folders off the path
    from envs.obs_layout import build_observation

    layout = meta["observation"]["layout"]
    kwargs = dict(meta.get("env_kwargs") or {})
    if meta.get("max_episode_steps"):
        kwargs["max_episode_steps"] = meta["max_episode_steps"]
    env = gym.make(meta["env_id"], **kwargs)
    data = env.unwrapped.data
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(folder / "policy.onnx"), options, providers=["CPUExecutionProvider"])
    low = np.asarray(meta["action"]["low"], dtype=np.float64)
    high = np.asarray(meta["action"]["high"], dtype=np.float64)
    rest = np.asarray(meta["action"]["center"], dtype=np.float64)  # the command held until the first one arrives
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
    if meta["observation"].get("layout") is None or str(meta["env_id"]).startswith("dmc:"):
        fail(
            f"task {meta['task']} ({meta['env_id']}): policy.json has no observation layout; "
            "deploy-sim supports Gymnasium MuJoCo tasks"
        )
    ref = meta["evaluation"]
    if args.seed is None:
        args.seed = int(ref.get("seed", 0))

    result = run_episodes(meta, folder, args)
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
