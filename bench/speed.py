"""Speed benchmark: env-steps/s and peak memory of simulation and training, ours against the simulator and peers.

For each task, in one run on one machine, each in its own process (so peak memory is its own):

  (a) bare ``mujoco.batch`` loop with random controls (a fallen robot is reset to its initial
      pose, so the simulator sees the states an episode loop sees): the simulator's own limit;
  (b) our native VecEnv (observation, reward, termination, resets) with random actions;
  (c) our full TRPO training loop on the native backend: collection and update together;
  (d) Gymnasium's SyncVectorEnv of the v5 task with random actions;
  (e) sb3-contrib TRPO with its default settings on the Gymnasium v5 task;
  (c') = (c) with throughput settings that change learning (algo.fvp_subsample=0.2, value.epochs=5).

(a), (b), (d) and (c) use ``--envs`` environments; (e) its default single one.
(c) runs the task's shipped config with ``--envs`` environments x 256 steps and
value minibatches of batch / 16 (the shipped configs' 2048 / 128).
The machine's speed drifts, so the methods run in ``--rounds`` interleaved
rounds and the table shows each one's median.

    python bench/speed.py                       # Humanoid and Hopper -> bench/results/speed/speed.md
    python bench/speed.py --tasks hopper --seconds 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from machine import cpu_name  # noqa: E402  (bench/machine.py: this script's folder is on sys.path)

GYM_IDS = {"humanoid": "Humanoid-v5", "hopper": "Hopper-v5"}
BARE_MODELS = {"Humanoid-v5": ("humanoid.xml", 5), "Hopper-v5": ("hopper.xml", 4)}  # v5's MJCF and frame skip
LABELS = {"t": "c'"}  # (c') is (c) with the throughput settings
# Fewer Fisher samples (OpenAI Baselines' TRPO uses every fifth) and value epochs: these change
# learning, so they are not the defaults.
THROUGHPUT = ("algo.fvp_subsample=0.2", "value.epochs=5")
# (qpos index of the root height, healthy range): where v5 ends an episode because the robot fell
FALL_HEIGHT = {"Humanoid-v5": (2, (1.0, 2.0)), "Hopper-v5": (1, (0.7, float("inf")))}
METHODS = {
    "a": "bare mujoco.batch loop, random controls",
    "b": "policylab native VecEnv, random actions",
    "c": "policylab TRPO training (collect + update)",
    "t": "policylab TRPO training, throughput settings (fvp_subsample 0.2, value epochs 5)",
    "d": "Gymnasium SyncVectorEnv, random actions",
    "e": "sb3-contrib TRPO, default settings (1 env)",
}


def timed(step: Callable[[], int], seconds: float, warmup: int = 3) -> float:
    """Env-steps/s of repeated ``step()`` calls (each returns the env-steps it took) over about ``seconds``."""
    for _ in range(warmup):
        step()
    steps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        steps += step()
    return steps / elapsed


def bare_batch(task_id: str, n: int, seconds: float) -> float:
    """Only mujoco and numpy are imported here, so (a)'s peak memory is the simulator's."""
    import gymnasium
    import mujoco
    import numpy as np
    from mujoco import batch as mjbatch

    xml, frame_skip = BARE_MODELS[task_id]
    model = mujoco.MjModel.from_xml_path(str(Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets" / xml))
    sim = mjbatch.Batch(model, n, nthread=len(os.sched_getaffinity(0)))
    ctrl = sim.bind("ctrl")
    sim.reset()
    low, high = model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1]
    rng = np.random.default_rng(0)

    qpos = sim.bind("qpos")
    z_index, (z_low, z_high) = FALL_HEIGHT[task_id]

    def step() -> int:
        ctrl[:] = rng.uniform(low, high, (n, model.nu))
        sim.step(nstep=frame_skip)
        fallen = np.flatnonzero(~((qpos[:, z_index] > z_low) & (qpos[:, z_index] < z_high)))
        if len(fallen):  # back to the initial pose, so the simulator sees the states an episode loop sees
            sim.reset(fallen)
        return n

    return timed(step, seconds)


def native_vecenv(task_id: str, n: int, seconds: float) -> float:
    import torch

    from envs.native import NATIVE_TASKS, NativeVecEnv

    env = NativeVecEnv(NATIVE_TASKS[task_id], n)
    env.reset(seed=0)
    low, high = torch.as_tensor(env.action_space.low), torch.as_tensor(env.action_space.high)

    def step() -> int:
        env.step(low + (high - low) * torch.rand(n, low.shape[0]))
        return n

    return timed(step, seconds)


def trpo_training(task: str, n: int, seconds: float, extra: tuple[str, ...] = ()) -> float:
    from app.config import load_config
    from app.runner import Trainer, new_run_dir

    steps_per_env = 256
    overrides = [
        *extra,
        "task.backend=cpu",
        f"task.num_envs={n}",
        f"train.steps_per_env={steps_per_env}",
        f"value.minibatch_size={n * steps_per_env // 16}",
        "train.eval_every=0",
        "train.progress=none",
        f"train.runs_dir={tempfile.mkdtemp(prefix='policylab-speed-')}",
    ]
    cfg = load_config(task, overrides)
    trainer = Trainer(cfg, new_run_dir(cfg))

    def iteration() -> int:
        trainer.iterate()
        return n * steps_per_env

    return timed(iteration, seconds, warmup=1)


def gym_sync(task_id: str, n: int, seconds: float) -> float:
    import gymnasium as gym
    import numpy as np

    envs = gym.make_vec(task_id, num_envs=n, vectorization_mode="sync")
    envs.reset(seed=0)
    space = envs.single_action_space
    rng = np.random.default_rng(0)

    def step() -> int:
        envs.step(rng.uniform(space.low, space.high, (n, *space.shape)))
        return n

    return timed(step, seconds)


def sb3_trpo(task_id: str, seconds: float) -> float:
    import gymnasium as gym
    from sb3_contrib import TRPO

    model = TRPO("MlpPolicy", gym.make(task_id), seed=0, device="cpu")
    chunk = model.n_steps  # one rollout + update per learn() call

    def iteration() -> int:
        model.learn(chunk, reset_num_timesteps=False)
        return chunk

    return timed(iteration, seconds, warmup=1)


def measure(method: str, task: str, n: int, seconds: float) -> dict:
    task_id = GYM_IDS[task]
    if method == "a":
        rate = bare_batch(task_id, n, seconds)
    elif method == "b":
        rate = native_vecenv(task_id, n, seconds)
    elif method == "c":
        rate = trpo_training(task, n, seconds)
    elif method == "t":
        rate = trpo_training(task, n, seconds, THROUGHPUT)
    elif method == "d":
        rate = gym_sync(task_id, n, seconds)
    else:
        rate = sb3_trpo(task_id, seconds)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {"method": method, "task": task, "steps_per_s": rate, "peak_mb": peak_mb}


def run_measure(method: str, task: str, n: int, seconds: float) -> dict:
    cmd = [sys.executable, __file__, "--measure", method, "--tasks", task, "--envs", str(n), "--seconds", str(seconds)]
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"method": method, "task": task, "error": tail[0]}
    return json.loads(lines[-1])


def median_of(runs: list[dict]) -> dict:
    """One method's rounds -> its median env-steps/s, the largest peak memory and every round's rate."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[-1]
    return {
        **ok[0],
        "steps_per_s": statistics.median(r["steps_per_s"] for r in ok),
        "peak_mb": max(r["peak_mb"] for r in ok),
        "rounds": [r["steps_per_s"] for r in ok],
    }


def table(results: list[dict], tasks: list[str], n: int) -> str:
    from envs.placement import available_cores

    lines = [
        f"Machine: {cpu_name()}, {available_cores()} cores, {platform.system()}; "
        f"{n} environments for (a)-(d); median of interleaved rounds, each method in its own process.",
        "",
        "| task | method | env-steps/s | x (a) | peak memory (MB) |",
        "|---|---|---|---|---|",
    ]
    goals = []
    for task in tasks:
        rows = {r["method"]: r for r in results if r["task"] == task}
        bare = rows.get("a", {}).get("steps_per_s")
        for method, label in METHODS.items():
            r = rows.get(method)
            if r is None:
                continue
            tag = LABELS.get(method, method)
            if "error" in r:
                lines.append(f"| {task} | ({tag}) {label} | failed: {r['error']} | | |")
                continue
            ratio = f"{r['steps_per_s'] / bare:.2f}" if bare else ""
            lines.append(f"| {task} | ({tag}) {label} | {r['steps_per_s']:,.0f} | {ratio} | {r['peak_mb']:,.0f} |")
        e = rows.get("e", {}).get("steps_per_s")
        for key in ("c", "t"):
            c, tag = rows.get(key, {}).get("steps_per_s"), LABELS.get(key, key)
            if c and bare:
                goals.append(f"{task}: ({tag}) / (a) = {c / bare:.2f} (goal for (c) >= 0.7)")
            if c and e:
                goals.append(f"{task}: ({tag}) / (e) = {c / e:.1f} (goal for (c) >= 5)")
    return "\n".join([*lines, "", *(f"- {g}" for g in goals)]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["humanoid", "hopper"], choices=sorted(GYM_IDS))
    parser.add_argument("--envs", type=int, default=64, help="environments for (a)-(d)")
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time per method and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per method (median reported)")
    parser.add_argument("--methods", default="abctde", help="which of a, b, c, t (c'), d, e to run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "speed")
    parser.add_argument("--measure", choices=sorted(METHODS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.tasks[0], args.envs, args.seconds)))
        return 0
    results = []
    for task in args.tasks:
        rounds: dict[str, list[dict]] = {m: [] for m in args.methods}
        for _ in range(args.rounds):
            for method in args.methods:
                result = run_measure(method, task, args.envs, args.seconds)
                print(json.dumps(result), flush=True)
                rounds[method].append(result)
        results += [median_of(runs) for runs in rounds.values()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.json").write_text(json.dumps(results, indent=1))
    text = table(results, args.tasks, args.envs)
    (args.out / "speed.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
