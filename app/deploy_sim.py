"""Sim-to-sim check: run an exported policy the way a robot controller would.

    python -I app/deploy_sim.py runs/<task>/<run>/export [--episodes 10] [--latency 0] [--obs-noise 0]

Run as a script in its own process (``make deploy-sim`` does this). It never
imports torch, ``app/`` or ``policies/``: the policy is ``policy.onnx`` under
onnxruntime, and the task is run by the controller ``policy.json`` names
(``deployment.controller``: a class under ``envs/`` following the contract of
``envs/deploy.py``, numpy over MuJoCo, built from ``policy.json`` alone; ``import
envs`` imports neither torch nor ``app``).

One control loop for every task: observation (+ Gaussian noise) -> policy ->
(optionally delay the command ``latency`` control periods) -> apply for one
control period, scored by the task's rules. Every step the controller's
observation is compared with its reference, the task's own observation of the
same state: ``obs_gap``, the largest difference, is measured. The mean return is
printed beside the checkpoint's evaluation; without latency and noise they must
agree within noise and ``obs_gap`` must be within the controller's
``obs_tolerance``, or the exit status is 1.
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


def load_controller(meta: dict[str, Any], seed: int) -> Any:
    """The controller ``policy.json`` names, built from it; a clear error where there is none."""
    from envs.deploy import controller_class

    path = (meta.get("deployment") or {}).get("controller")
    if path is None:
        fail(
            f"task {meta['task']} ({meta['env_id']}): policy.json names no deployment.controller; "
            "export the run again with this version"
        )
    try:
        return controller_class(path).from_export(meta, seed)
    except ValueError as exc:
        fail(str(exc))


def run_episodes(controller: Any, meta: dict[str, Any], folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Roll out the ONNX policy through ``controller``: per-episode returns, lengths, statistics, and obs_gap."""
    session, low, high, rest = policy_session(meta, folder)
    size = int(meta["observation"]["size"])
    rng = np.random.default_rng(args.seed)
    returns, lengths, stats, obs_gap = [], [], [], 0.0
    for episode in range(args.episodes):
        controller.reset(episode)
        pending: deque[np.ndarray] = deque([rest] * args.latency)
        total, steps, done = 0.0, 0, False
        while not done and steps < controller.max_episode_steps:
            obs = controller.observation()
            if obs.shape != (size,):
                fail(
                    f"this code builds {obs.shape[0]} observation entries for {meta['task']}, the export has "
                    f"{size}: export the run again with this version"
                )
            obs_gap = max(obs_gap, float(np.max(np.abs(obs - controller.reference_observation()))))
            if args.obs_noise > 0:
                obs = obs + args.obs_noise * rng.standard_normal(obs.shape)
            command = session.run(["action"], {"obs": obs.astype(np.float32)[None]})[0][0].astype(np.float64)
            pending.append(np.clip(command, low, high))
            reward, done = controller.step(pending.popleft())
            total += reward
            steps += 1
        returns.append(total)
        lengths.append(steps)
        stats.append(controller.episode_stats())
    return {"returns": returns, "lengths": lengths, "stats": stats, "obs_gap": obs_gap}


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
    ref = meta["evaluation"]
    if args.seed is None:
        args.seed = int(ref.get("seed", 0))
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))  # -I leaves the script's folders off the path

    controller = load_controller(meta, args.seed)
    result = run_episodes(controller, meta, folder, args)
    task_summary = controller.summarize(result["stats"])
    returns = np.asarray(result["returns"])
    mean, std = float(returns.mean()), float(returns.std())
    ref_mean, ref_std, ref_n = float(ref["mean_return"]), float(ref["std_return"]), int(ref["episodes"])
    # Agreement within noise: |difference| below 3 standard errors of the difference (+1% slack).
    noise = 3.0 * math.sqrt(std**2 / len(returns) + ref_std**2 / ref_n) + 0.01 * abs(ref_mean) + 1e-6
    clean = args.latency == 0 and args.obs_noise == 0
    tolerance = float(controller.obs_tolerance)
    obs_ok = not clean or result["obs_gap"] <= tolerance
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
    print(
        f"controller's observation vs the task's: largest difference {result['obs_gap']:.3g} "
        f"(tolerance {tolerance:.3g})"
    )
    for line in controller.summary_lines(task_summary, ref):
        print(line)
    verdict = "n/a (latency or noise on)" if not clean else ("agree" if obs_ok and return_ok else "MISMATCH")
    print(f"verdict: {verdict}")
    summary = {
        **task_summary,
        "returns": result["returns"],
        "mean_return": mean,
        "std_return": std,
        "reference": ref,
        "latency": args.latency,
        "obs_noise": args.obs_noise,
        "obs_gap": result["obs_gap"],
        "obs_tolerance": tolerance,
        "controller": f"{type(controller).__module__}:{type(controller).__name__}",
        "verdict": verdict,
        "imported_forbidden": leaked,
    }
    (folder / "deploy_sim.json").write_text(json.dumps(summary, indent=2) + "\n")
    if leaked:
        fail(f"the deployment process imported {', '.join(leaked)}", code=3)
    if not obs_ok:
        print(
            "the controller's observation differs from the task's: order, layout or units are wrong",
            file=sys.stderr,
        )
    return 0 if obs_ok and return_ok else 1


if __name__ == "__main__":
    sys.exit(main())
