"""The gpu backend on one GPU (``make bench-gpu``): physics, env and training-loop rates, time to a return.

Writes a markdown report (``--out``, default ``bench/gpu_results.md``):

1. the machine: GPU name, driver, torch / CUDA / mujoco / mujoco-warp / warp versions;
2. physics only: MuJoCo Warp steps/s of Gymnasium's humanoid (Newton, RK4,
   dt 0.003; random constant controls, so the robots fall and lie on the floor
   in contact) at 1k, 4k, 8k and 16k worlds, one CUDA graph of ``--graph-steps``
   mj_steps replayed;
3. at the best world count: env-only env-steps/s (NativeVecEnv, random actions
   drawn on the GPU, frame skip 5, observations, rewards, resets) and the full
   training loop (collection, advantages, update, logging) per algorithm, with
   the peak torch memory and the device memory in use;
4. the kernel compile: building the humanoid simulator with an empty Warp
   kernel cache and with a warm one (each in a fresh process);
5. learning: wall time, start-up included (warm kernel cache), until the
   deterministic return of the humanoid passes 5000 and 6000 and of the ant
   passes 5000 and 6000, per algorithm, each run capped at ``--learn-cap`` seconds.

Only torch, numpy, pyyaml and what the project imports are needed besides
mujoco, mujoco-warp, warp-lang and gymnasium: the GPU machine has no package
index. ``--smoke`` runs every part with tiny sizes on Warp's CPU device (the
test suite does), reporting figures that say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from envs.native import NATIVE_TASKS, NativeVecEnv, make_simulator  # noqa: E402
from envs.native.warp_sim import import_warp  # noqa: E402

HUMANOID = NATIVE_TASKS["Humanoid-v5"]
THRESHOLDS = (5000.0, 6000.0)

# The loop and learning runs use the shipped gpu settings (configs/humanoid.yaml's gpu:, configs/<algo>/
# humanoid.yaml's) and change only what a measurement needs: no progress bar, no periodic checkpoints.
LOOP_SETTINGS = ["train.progress=none", "train.checkpoint_every=1000", "train.keep_every=0", "train.minutes=null"]


def machine(device: str) -> list[tuple[str, str]]:
    """(item, value) rows: GPU, driver, versions."""
    import mujoco
    import mujoco_warp

    wp = import_warp()
    rows = [("device", device)]
    if device.startswith("cuda"):
        rows.append(("GPU", torch.cuda.get_device_name(0)))
        try:
            query = ["nvidia-smi", "--query-gpu=driver_version,memory.total", "--format=csv,noheader"]
            rows.append(("driver, memory", subprocess.run(query, capture_output=True, text=True).stdout.strip()))
        except OSError:
            rows.append(("driver", f"CUDA driver API {wp.get_cuda_driver_version()}"))
    else:
        rows.append(("CPU", platform.processor() or platform.machine()))
    rows += [
        ("python", platform.python_version()),
        ("torch", f"{torch.__version__} (CUDA {torch.version.cuda})"),
        ("mujoco", mujoco.__version__),
        ("mujoco-warp", mujoco_warp.__version__),
        ("warp-lang", wp.config.version),
    ]
    return rows


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    import_warp().synchronize()


def physics_rate(worlds: int, device: str, graph_steps: int, launches: int) -> float:
    """Humanoid mj_steps per second over all worlds: one graph of ``graph_steps`` steps, ``launches`` replays."""
    import mujoco_warp as mjw

    wp = import_warp()
    sim = make_simulator("gpu", HUMANOID, worlds, device=device)
    g = torch.Generator(device=sim.device).manual_seed(0)
    low, high = (torch.as_tensor(sim.model.actuator_ctrlrange[:, i], device=sim.device) for i in (0, 1))
    sim.qpos += 0.01 * (2 * torch.rand(sim.qpos.shape, generator=g, device=sim.device) - 1)
    sim.ctrl.copy_(low + (high - low) * torch.rand(sim.ctrl.shape, generator=g, device=sim.device))
    sim.forward()

    def body() -> None:
        for _ in range(graph_steps):
            mjw.step(sim.m, sim.d)

    sim._run(("physics", graph_steps), body)  # capture, and one replay to warm up
    sync(sim.device)
    start = time.perf_counter()
    with wp.ScopedDevice(sim.wp_device):
        for _ in range(launches):
            wp.capture_launch(sim._graphs[("physics", graph_steps)])
    sync(sim.device)
    return worlds * graph_steps * launches / (time.perf_counter() - start)


def env_rate(worlds: int, device: str, steps: int) -> float:
    """NativeVecEnv env-steps/s of the humanoid with random actions drawn on the device."""
    env = NativeVecEnv(HUMANOID, worlds, simulator=make_simulator("gpu", HUMANOID, worlds, device=device))
    env.reset(seed=0)
    act_dim = env.action_space.shape[0]
    g = torch.Generator(device=env.device).manual_seed(0)
    for _ in range(3):  # capture and warm up
        env.step(torch.rand((worlds, act_dim), generator=g, device=env.device) * 0.8 - 0.4)
    sync(env.device)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(torch.rand((worlds, act_dim), generator=g, device=env.device) * 0.8 - 0.4)
    sync(env.device)
    return worlds * steps / (time.perf_counter() - start)


def loop_rate(algo: str, worlds: int, iterations: int, smoke: bool) -> tuple[float, float, float]:
    """(env-steps/s of the training loop, peak torch MiB, device MiB in use) for ``algo`` on the humanoid.

    The median of the per-iteration rates after the first (which captures the graphs).
    """
    from app.config import load_config
    from app.runner import Trainer, new_run_dir

    shipped = load_config("humanoid", ["task.backend=gpu"], algo=algo).train.steps_per_env
    steps_per_env = 8 if smoke else shipped
    with tempfile.TemporaryDirectory() as runs:
        overrides = [
            *loop_overrides(algo, smoke),
            "task.backend=gpu",
            f"task.num_envs={worlds}",
            f"train.steps_per_env={steps_per_env}",
            f"train.total_steps={worlds * steps_per_env * iterations}",
            "train.eval_every=0",
            "train.eval_episodes=1",
            f"train.runs_dir={runs}",
        ]
        cfg = load_config("humanoid", overrides, algo=algo)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        trainer = Trainer(cfg, new_run_dir(cfg))
        trainer.run()
        with (trainer.run_dir / "progress.csv").open() as f:
            rates = sorted(float(r["steps_per_s"]) for r in list(csv.DictReader(f))[1:])
    peak = used = float("nan")
    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated() / 2**20
        free, total = torch.cuda.mem_get_info()
        used = (total - free) / 2**20
    return (rates[len(rates) // 2] if rates else float("nan")), peak, used


def loop_overrides(algo: str, smoke: bool) -> list[str]:
    """The shipped gpu settings of ``algo`` on the humanoid, but for LOOP_SETTINGS (and tiny sizes on a CPU)."""
    settings = list(LOOP_SETTINGS)
    if smoke:  # tiny networks and minibatches on the CPU
        settings += ["policy.hidden_sizes=[16]", "value.hidden_sizes=[16]", "value.epochs=1"]
        settings += ["algo.minibatch_size=32"] if algo in ("ppo",) else ["value.minibatch_size=32"]
    return settings


def compile_times(device: str, worlds: int) -> tuple[float, float]:
    """Seconds to build the humanoid simulator (kernels compiled or loaded) with a cold, then a warm cache."""
    code = (
        "import time, sys; t = time.perf_counter(); sys.path.insert(0, sys.argv[1]); "
        "from envs.native import NATIVE_TASKS, make_simulator; "
        "sim = make_simulator('gpu', NATIVE_TASKS['Humanoid-v5'], int(sys.argv[2]), device=sys.argv[3]); "
        "sim.step(5); print(time.perf_counter() - t)"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "WARP_CACHE_PATH": cache}
        out = []
        for _ in range(2):
            run = subprocess.run(
                [sys.executable, "-c", code, str(ROOT), str(worlds), device], env=env, capture_output=True, text=True
            )
            out.append(float(run.stdout.strip().splitlines()[-1]) if run.returncode == 0 else float("nan"))
    return out[0], out[1]


def time_to_return(task: str, algo: str, worlds: int, cap: float, smoke: bool) -> dict[str, float | str]:
    """Train ``task`` with ``algo`` in a fresh process for at most ``cap`` seconds; wall time to each threshold.

    The time is taken when progress.csv first shows a deterministic evaluation
    at or above the threshold (polled every second), from the process start.
    """
    with tempfile.TemporaryDirectory() as runs:
        overrides = [
            *loop_overrides(algo, smoke),
            "task.backend=gpu",
            f"task.num_envs={worlds}",
            "train.total_steps=1000000000",
            f"train.eval_every={1 if smoke else 5}",
            f"train.eval_episodes={1 if smoke else 8}",
            f"train.runs_dir={runs}",
        ]
        if smoke:
            overrides.append("train.steps_per_env=8")
        cmd = [sys.executable, "-m", "app", "train", "--task", task, "--algo", algo, *overrides]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        reached: dict[str, float | str] = {}
        best, steps = float("-inf"), 0
        while True:
            done = proc.poll() is not None
            elapsed = time.perf_counter() - start
            for row in read_rows(Path(runs)):
                value = row.get("eval_return", "")
                if value not in ("", "nan"):
                    best = max(best, float(value))
                    for threshold in THRESHOLDS:
                        reached.setdefault(f"{threshold:.0f}", elapsed) if float(value) >= threshold else None
                steps = max(steps, int(float(row.get("env_steps", 0) or 0)))
            if done or elapsed > cap or len(reached) == len(THRESHOLDS):
                break
            time.sleep(1.0)
        stopped = proc.poll() is None  # still running at the cap: stopped by us, whatever its exit code
        if stopped:
            # In the training loop: finish the iteration, checkpoint, stop; before it (start-up, kernel compiles):
            # the end at once. SIGTERM, not SIGINT: a job started in the background (`make bench-gpu &`, a CI
            # runner) passes SIGINT ignored on to its children, so the run would go on until the kill below.
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # only a run that ended by itself with an error reports it (its last line of stderr)
        failed = not stopped and proc.returncode not in (0, -2, 130)
        error = proc.stderr.read().strip().splitlines()[-1:] if failed else []
        return {**reached, "best": best, "env_steps": steps, "seconds": time.perf_counter() - start, "error": error}


def read_rows(runs: Path) -> list[dict[str, str]]:
    rows = []
    for path in runs.glob("*/*/progress.csv"):
        try:
            with path.open() as f:
                rows += list(csv.DictReader(f))
        except OSError:
            pass
    return rows


def rates_section(args, device, worlds, algos, missing, graph_steps, launches, lines, emit) -> int:
    """Physics, env-only and loop rates (and the compile timing) into ``lines``; returns the best world count."""
    lines += ["## Physics only: humanoid mj_steps/s", "", "| worlds | steps/s |", "|---:|---:|"]
    rates = {}
    for n in worlds:
        try:
            rates[n] = physics_rate(n, device, graph_steps, launches)
            lines.append(f"| {n} | {rates[n]:,.0f} |")
        except Exception as exc:  # e.g. out of memory at 16k worlds: say so and go on
            lines.append(f"| {n} | failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]} |")
        emit()
    best = max(rates, key=rates.get) if rates else worlds[0]
    at = args.loop_worlds or best

    lines += ["", f"## At {at} worlds: env-only and training loop (humanoid, shipped gpu settings)", ""]
    lines += ["| what | env-steps/s | peak torch MiB | device MiB in use |", "|---|---:|---:|---:|"]
    lines.append(
        f"| env only (NativeVecEnv, random actions) | {env_rate(at, device, 5 if args.smoke else 50):,.0f} | | |"
    )
    emit()
    for algo in algos:
        rate, peak, used = loop_rate(algo, at, 3 if args.smoke else 6, args.smoke)
        lines.append(f"| training loop, {algo} | {rate:,.0f} | {peak:,.0f} | {used:,.0f} |")
        emit()
    for algo in missing:
        lines.append(f"| training loop, {algo} | not in this checkout's algorithm registry | | |")

    if not args.no_compile and not args.smoke:
        cold, warm = compile_times(device, best)
        lines += ["", "## Kernel compile", "", "| humanoid simulator built and stepped | seconds |", "|---|---:|"]
        lines += [f"| empty Warp kernel cache | {cold:.1f} |", f"| warm kernel cache | {warm:.1f} |"]
        emit()

    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes on Warp's CPU device (a test, not a benchmark)"
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "gpu_results.md"), help="markdown report path")
    parser.add_argument("--worlds", default="1024,4096,8192,16384", help="world counts of the physics rates")
    parser.add_argument("--algos", default="ppo,trpo", help="algorithms of the loop rates and learning runs")
    parser.add_argument("--learn-tasks", default="humanoid,ant", help="tasks of the learning runs ('' for none)")
    parser.add_argument("--learn-cap", type=float, default=300.0, help="seconds per learning run at most")
    parser.add_argument("--learn-worlds", type=int, default=0, help="worlds of the learning runs (0: the best count)")
    parser.add_argument(
        "--loop-worlds", type=int, default=0, help="worlds of the env-only and loop rates (0: the fastest physics)"
    )
    parser.add_argument("--graph-steps", type=int, default=50, help="mj_steps per captured physics graph")
    parser.add_argument("--no-compile", action="store_true", help="skip the cold/warm kernel compile timing")
    parser.add_argument("--learn-only", action="store_true", help="only the learning runs (at the first --worlds)")
    args = parser.parse_args(argv)

    from app.algorithms import ALGORITHMS

    device = "cpu" if args.smoke else "cuda:0"
    if not args.smoke and not torch.cuda.is_available():
        print("bench/gpu.py: torch sees no CUDA device; run with --smoke for the CPU check", file=sys.stderr)
        return 2
    worlds = [4, 8] if args.smoke else [int(w) for w in args.worlds.split(",") if w]
    algos = [a for a in args.algos.split(",") if a]
    missing = [a for a in algos if a not in ALGORITHMS]
    algos = [a for a in algos if a in ALGORITHMS]
    launches = 2 if args.smoke else 10
    graph_steps = 2 if args.smoke else args.graph_steps

    lines = ["# policylab gpu backend benchmark", ""]
    if args.smoke:
        lines += ["**Smoke run on Warp's CPU device with tiny sizes: these figures say nothing about a GPU.**", ""]
    lines += ["| item | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in machine(device)], ""]

    def emit() -> None:
        Path(args.out).write_text("\n".join(lines) + "\n")
        print("\n".join(lines[-1:]), flush=True)

    best = worlds[0]
    if not args.learn_only:
        best = rates_section(args, device, worlds, algos, missing, graph_steps, launches, lines, emit)

    tasks = [t for t in args.learn_tasks.split(",") if t]
    if tasks:
        learn_worlds = 4 if args.smoke else (args.learn_worlds or best)
        lines += [
            "",
            f"## Learning: wall time to a deterministic return ({learn_worlds} worlds, warm kernel cache, "
            f"start-up included, cap {args.learn_cap:.0f} s)",
            "",
            "| task | algo | to 5000 (s) | to 6000 (s) | best return | env steps | run (s) |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for task in tasks:
            for algo in algos:
                r = time_to_return(task, algo, learn_worlds, args.learn_cap, args.smoke)
                to = [f"{r[k]:.0f}" if k in r else "not reached" for k in ("5000", "6000")]
                note = f" ({r['error'][0][:80]})" if r["error"] else ""
                lines.append(
                    f"| {task} | {algo} | {to[0]} | {to[1]} | {r['best']:.0f}{note} | {r['env_steps']:,} "
                    f"| {r['seconds']:.0f} |"
                )
                emit()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
