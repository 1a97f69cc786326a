"""Speed of the driving tasks: env-steps/s of our VecEnv beside a bare ``mujoco.batch`` loop of the same car.

In one process on one machine, single-threaded on both sides (``--threads``), in interleaved rounds
(the table shows medians):

  (a) bare ``mujoco.batch``: the car model, ``frame_skip`` mj_steps per control step, fixed controls;
  (b) ``driving`` (lidar) with ``--cars`` cars: our NativeVecEnv with random steering, everything
      included (lidar, progress, wall hits, resets on new tracks);
  (c) ``driving_camera`` with ``--camera-cars`` cars at each ``--camera-sizes`` image size.

Then where (b)'s time goes: physics, lidar ray casts, progress/collision, the rest (resets, copies).
Writes ``--out`` (markdown), quoted in the README.

    python bench/driving.py                  # -> bench/results/driving.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from machine import cpu_name  # noqa: E402
from mujoco import batch as mjbatch  # noqa: E402

from envs.driving.config import DrivingConfig  # noqa: E402
from envs.driving.task import Driving, DrivingCamera  # noqa: E402
from envs.native.vecenv import NativeVecEnv  # noqa: E402


def rate(step, batch: int, seconds: float) -> float:
    """Control steps per second x batch, stepping for about ``seconds``."""
    for _ in range(3):
        step()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    return count * batch / (time.perf_counter() - start)


def bare(cars: int, seconds: float) -> float:
    model = Driving.load_model()
    sim = mjbatch.Batch(model, cars, nthread=1)
    ctrl = sim.bind("ctrl")
    ctrl[:] = [0.1, 0.1, 40.0, 40.0]
    return rate(lambda: sim.step(nstep=Driving.frame_skip), cars, seconds)


def ours(cls: type, cars: int, seconds: float, options: DrivingConfig | None = None) -> float:
    env = NativeVecEnv(cls, cars, nthread=1, options=options)
    env.reset(seed=0)
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        env.step((torch.rand((cars, 1), generator=gen) * 2 - 1) * 0.42)

    for _ in range(200):  # warm the track cache past the first resets
        step()
    return rate(step, cars, seconds)


def breakdown(cars: int, steps: int = 200) -> dict[str, float]:
    """Seconds per control step of (b)'s parts, timed one after the other."""
    env = NativeVecEnv(Driving, cars, nthread=1)
    env.reset(seed=0)
    task, sim = env.task, env.sim
    parts = {"physics (mj_step x frame_skip)": 0.0, "lidar ray casts": 0.0, "progress and wall hits": 0.0}
    total = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        task.apply_action(sim, torch.zeros(cars, 1, dtype=torch.float64))
        sim.step(task.frame_skip)
        t1 = time.perf_counter()
        task.lidar(sim)
        t2 = time.perf_counter()
        task.reward(sim, None, torch.zeros(cars, 1))
        t3 = time.perf_counter()
        parts["physics (mj_step x frame_skip)"] += t1 - t0
        parts["lidar ray casts"] += t2 - t1
        parts["progress and wall hits"] += t3 - t2
    whole = time.perf_counter() - total
    full = NativeVecEnv(Driving, cars, nthread=1)
    full.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        full.step(torch.zeros(cars, 1))
    env_total = time.perf_counter() - start
    parts["the rest (resets on new tracks, observation assembly)"] = max(env_total - whole, 0.0)
    return {k: v / steps for k, v in parts.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cars", type=int, default=64)
    parser.add_argument("--camera-cars", type=int, default=16)
    parser.add_argument("--camera-sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "driving.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        rows.setdefault(f"(a) bare mujoco.batch, {args.cars} cars", []).append(bare(args.cars, args.seconds))
        rows.setdefault(f"(b) driving (lidar, 32 rays), {args.cars} cars", []).append(
            ours(Driving, args.cars, args.seconds)
        )
        rows.setdefault(f"(a) bare mujoco.batch, {args.camera_cars} cars", []).append(
            bare(args.camera_cars, args.seconds)
        )
        for size in args.camera_sizes:
            options = DrivingConfig(camera_size=(size, size))
            rows.setdefault(f"(c) driving_camera {size}x{size}, {args.camera_cars} cars", []).append(
                ours(DrivingCamera, args.camera_cars, args.seconds, options)
            )
    median = {k: statistics.median(v) for k, v in rows.items()}
    bare_big = median[f"(a) bare mujoco.batch, {args.cars} cars"]
    bare_small = median[f"(a) bare mujoco.batch, {args.camera_cars} cars"]
    lines = [
        f"Driving speed on {cpu_name()} ({platform.machine()}), {args.threads} thread(s), torch "
        f"{torch.__version__}, medians of {args.rounds} rounds of {args.seconds:.0f} s.",
        "",
        "| what | env-steps/s | vs bare mujoco.batch |",
        "|---|---:|---:|",
    ]
    for name, value in median.items():
        ref = bare_big if f"{args.cars} cars" in name and args.cars != args.camera_cars else bare_small
        lines.append(f"| {name} | {value:,.0f} | {value / ref:.2f}x |")
    parts = breakdown(args.cars)
    whole = sum(parts.values())
    lines += ["", f"Where a control step of (b) goes ({args.cars} cars):", "", "| part | ms per step | share |"]
    lines.append("|---|---:|---:|")
    for name, seconds in parts.items():
        lines.append(f"| {name} | {1000 * seconds:.2f} | {100 * seconds / whole:.0f}% |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
