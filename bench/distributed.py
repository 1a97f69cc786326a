"""Data-parallel benchmark: env-steps/s and time to a return for 1, 2, 4 ... ranks (torchrun).

Each rank count trains the same task config from scratch in its own launch (one process for 1 rank,
``torchrun --standalone --nproc-per-node=N`` above). ``task.num_envs`` is per rank, so N ranks collect N
times the batch per iteration (weak scaling, the way multi-GPU legged-robot training scales).

    throughput    env-steps/s of the training loop: all ranks' steps / (collect + update time), from progress.csv
    time to R     wall time until the deterministic evaluation first reaches R (``--target``), and the steps then
    speedup       throughput / throughput of 1 rank

Goals where several GPUs exist (one rank per GPU): 1.8x on 2 GPUs, 3.5x on 4 in env-steps/s. Where the
ranks share CPU cores (``--ranks`` above the cores, or any count on a 2-core machine) the figures say the
runs work and agree, not how training scales: the table says so.

    python bench/distributed.py                                     # inverted_pendulum, 1 and 2 ranks
    python bench/distributed.py --task humanoid --ranks 1 2 4 --target 5000 train.total_steps=5000000
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_name  # noqa: E402


def launch(ranks: int, task: str, overrides: list[str], runs_dir: Path) -> tuple[Path, float]:
    """Train ``task`` on ``ranks`` ranks; returns the run directory and the launch's wall time (with start-up)."""
    python = Path(sys.executable)
    cmd = [str(python), "-m", "app"] if ranks == 1 else [str(python.with_name("torchrun")), "--standalone"]
    if ranks > 1:
        cmd += [f"--nproc-per-node={ranks}", "-m", "app"]
    cmd += ["train", "--task", task, f"train.runs_dir={runs_dir}", "train.progress=none", *overrides]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise SystemExit(f"{ranks} rank(s) failed (exit {done.returncode}):\n" + "\n".join(tail))
    (run,) = [p for p in (runs_dir / task).iterdir() if p.is_dir()]
    return run, wall


def measure(run: Path, target: float) -> dict[str, float]:
    """Throughput and time to ``target`` of one finished run, from its progress.csv and summary.json."""
    with (run / "progress.csv").open() as f:
        rows = list(csv.DictReader(f))
    summary = json.loads((run / "summary.json").read_text())
    busy = sum(float(r["collect_time"]) + float(r["update_time"]) for r in rows)
    reached = [r for r in rows if r["eval_return"] not in ("", "nan") and float(r["eval_return"]) >= target]
    return {
        "env_steps": float(rows[-1]["env_steps"]),
        "steps_per_s": float(rows[-1]["env_steps"]) / busy,
        "collect_s": sum(float(r["collect_time"]) for r in rows),
        "update_s": sum(float(r["update_time"]) for r in rows),
        "time_to_target": float(reached[0]["wall_time"]) if reached else math.nan,
        "steps_to_target": float(reached[0]["env_steps"]) if reached else math.nan,
        "final_eval_return": float(summary["final_eval_return"]),
    }


def speedup(rate: float, base: float) -> str:
    """rate / base as "1.80x", or "-" without a one-rank run to compare with."""
    return f"{rate / base:.2f}x" if math.isfinite(base) and base > 0 else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="inverted_pendulum", help="task config (default inverted_pendulum)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="rank counts (default 1 2)")
    parser.add_argument("--target", type=float, default=950.0, help="evaluation return to time (default 950)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "distributed")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for every run")
    args = parser.parse_args()
    if any(n < 1 for n in args.ranks):
        raise SystemExit(f"--ranks: every count must be at least 1, got {args.ranks}")
    import torch

    gpus = torch.cuda.device_count()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[int, dict[str, float]] = {}
    for n in args.ranks:
        run, wall = launch(n, args.task, args.overrides, args.out / f"ranks{n}")
        results[n] = measure(run, args.target) | {"launch_s": wall}
        print(f"{n} rank(s): {results[n]}", flush=True)
    base = results.get(1, {}).get("steps_per_s", math.nan)
    shared = gpus < max(args.ranks)  # ranks without a GPU each share the CPU cores
    lines = [
        f"# Data-parallel benchmark: {args.task}",
        "",
        f"Machine: {cpu_name()}, {cores} cores, {gpus} CUDA device(s); torch {torch.__version__}; "
        f"overrides: {' '.join(args.overrides) or 'none'}; task.num_envs per rank.",
        "",
        "| ranks | env-steps | env-steps/s | speedup | collect s | update s | time to "
        f"{args.target:g} s | steps to {args.target:g} | final eval | launch s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, r in results.items():
        lines.append(
            f"| {n} | {r['env_steps']:,.0f} | {r['steps_per_s']:,.0f} | {speedup(r['steps_per_s'], base)} | "
            f"{r['collect_s']:.1f} | {r['update_s']:.1f} | {r['time_to_target']:.1f} | {r['steps_to_target']:,.0f} | "
            f"{r['final_eval_return']:.1f} | {r['launch_s']:.0f} |"
        )
    lines.append("")
    if shared:
        lines.append(
            f"The ranks shared {cores} CPU cores (fewer GPUs than ranks): a correctness run (the runs work, "
            "learn and agree), not a scaling figure. The goals (1.8x on 2 GPUs, 3.5x on 4) need one GPU per rank."
        )
    (args.out / "distributed.md").write_text("\n".join(lines) + "\n")
    (args.out / "distributed.json").write_text(json.dumps({str(k): v for k, v in results.items()}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
