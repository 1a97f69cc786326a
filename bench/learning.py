"""Learning benchmark: TRPO on MuJoCo v5 tasks, 1M steps, several seeds.

Runs every (task, seed) as its own training process (``--workers`` at a time),
then writes ``learning.md`` (median final deterministic return over seeds beside
the RL Baselines3 Zoo and sb3-contrib TRPO numbers from ANCHORS.md) and
``learning.png`` (learning curves: median and range over seeds).

    python bench/learning.py                              # the full benchmark
    python bench/learning.py --tasks hopper --seeds 0     # a part of it
    python bench/learning.py --out /tmp/sweep algo.max_kl=0.02   # with config overrides
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from machine import cpu_name  # bench/machine.py (this script's folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
TASKS = ["hopper", "walker2d", "halfcheetah", "ant", "swimmer"]
# Published returns after 1M steps (../shared/ANCHORS.md): RL Zoo benchmark.md (v3, one run,
# deterministic evaluation) and the sb3-contrib TRPO docs (v3, 3 seeds).
ZOO_TRPO = {"hopper": 3618, "walker2d": 4933, "halfcheetah": 1786, "ant": 4982, "swimmer": 366}
SB3_CONTRIB_TRPO = {"hopper": 3372, "walker2d": 4502, "halfcheetah": 1803, "ant": 3554, "swimmer": 359}


def finished_run(out: Path, task: str, seed: int) -> dict | None:
    """The summary of a finished (task, seed) run in ``out``, or None."""
    runs_dir = out / "runs" / f"{task}-s{seed}"
    summary_path = next(runs_dir.glob("*/*/summary.json"), None) if runs_dir.exists() else None
    if summary_path is not None and json.loads(summary_path.read_text()).get("finished"):
        return json.loads(summary_path.read_text())
    return None


def run_one(task: str, seed: int, steps: int, out: Path, overrides: list[str], threads: int = 1) -> dict:
    runs_dir = out / "runs" / f"{task}-s{seed}"
    done = finished_run(out, task, seed)
    if done is not None:
        return done  # already done: reuse (delete the folder to rerun)
    cmd = [
        sys.executable,
        "-m",
        "app",
        "train",
        "--task",
        task,
        f"train.seed={seed}",
        f"train.total_steps={steps}",
        f"train.runs_dir={runs_dir}",
        "train.progress=none",
        "train.eval_episodes=10",
        "train.keep_every=0",
        # the runs share the cores: simulation and update threads split them
        f"task.num_threads={threads}",
        f"train.update_threads={threads}",
        *overrides,
    ]
    log = out / "logs" / f"{task}-s{seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with log.open("w") as f:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=env, check=False)
    summary_path = next(runs_dir.glob("*/*/summary.json"), None)
    if proc.returncode != 0 or summary_path is None:
        return {"task": task, "seed": seed, "failed": True, "log": str(log)}
    return json.loads(summary_path.read_text())


def curves(out: Path, task: str, seeds: list[int]) -> list[tuple[list[float], list[float]]]:
    result = []
    for seed in seeds:
        path = next((out / "runs" / f"{task}-s{seed}").glob("*/*/progress.csv"), None)
        if path is None:
            continue
        with path.open() as f:
            rows = [r for r in csv.DictReader(f) if r["eval_return"] not in ("", "nan")]
        result.append(([float(r["env_steps"]) for r in rows], [float(r["eval_return"]) for r in rows]))
    return result


def plot(out: Path, tasks: list[str], seeds: list[int]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.2), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        runs = curves(out, task, seeds)
        if runs:
            n = min(len(x) for x, _ in runs)
            x = np.array(runs[0][0][:n]) / 1e6
            y = np.array([ys[:n] for _, ys in runs])
            ax.plot(x, np.median(y, axis=0), label="policylab TRPO (median)")
            ax.fill_between(x, y.min(axis=0), y.max(axis=0), alpha=0.25, label=f"range over {len(runs)} seeds")
        if task in ZOO_TRPO:
            ax.axhline(ZOO_TRPO[task], color="gray", linestyle="--", label="RL Zoo TRPO @1M")
        ax.set_title(task)
        ax.set_xlabel("env steps (M)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("deterministic return")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path = out / "learning.png"
    fig.savefig(path, dpi=110)
    return path


def backend_of(runs: list[dict]) -> str:
    """The simulation backend the runs used (task.backend in their config.yaml)."""
    backends = set()
    for r in runs:
        config = Path(r.get("run_dir", "")) / "config.yaml"
        if config.is_file():
            backends.add(yaml.safe_load(config.read_text()).get("task", {}).get("backend", "gym"))
    return ", ".join(sorted(backends)) or "-"


def table(results: list[dict], tasks: list[str], seeds: list[int], steps: int, overrides: list[str]) -> str:
    lines = [
        f"TRPO, {steps:,} env steps, seeds {', '.join(map(str, seeds))} (per seed: the runs that finished); "
        "final policy, deterministic, 10 episodes.",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, {platform.system()}; runs two at a time "
        "(each on about one core).",
    ]
    if overrides:
        lines.append(f"Overrides: `{' '.join(overrides)}`")
    lines += [
        "",
        "| task | backend | policylab median | per seed | RL Zoo TRPO | sb3-contrib TRPO | env-steps/s "
        "| wall time / run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task in tasks:
        runs = [r for r in results if r.get("task") == task and not r.get("failed")]
        failed = [r for r in results if r.get("task") == task and r.get("failed")]
        returns = [r["final_eval_return"] for r in runs]
        median = f"**{statistics.median(returns):.0f}**" if returns else "-"
        per_seed = ", ".join(f"{v:.0f}" for v in returns) + (f" ({len(failed)} failed)" if failed else "")
        sps = statistics.median(r["steps_per_s"] for r in runs) if runs else float("nan")
        wall = statistics.median(r["wall_time"] for r in runs) / 60 if runs else float("nan")
        lines.append(
            f"| {task} | {backend_of(runs)} | {median} | {per_seed} | {ZOO_TRPO.get(task, '-')} "
            f"| {SB3_CONTRIB_TRPO.get(task, '-')} "
            f"| {sps:,.0f} | {wall:.1f} min |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=float, default=1e6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "learning")
    parser.add_argument("--report-only", action="store_true", help="tabulate the finished runs; train nothing")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    steps = int(args.steps)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(task, seed) for seed in args.seeds for task in args.tasks]
    start = time.time()
    results = []
    if args.report_only:
        results = [r for r in (finished_run(args.out, t, s) for t, s in jobs) if r is not None]
    else:
        with ThreadPoolExecutor(args.workers) as pool:
            threads = max(1, (os.cpu_count() or 1) // args.workers)
            futures = [pool.submit(run_one, t, s, steps, args.out, args.overrides, threads) for t, s in jobs]
            for (task, seed), fut in zip(jobs, futures, strict=True):
                res = fut.result()
                results.append(res)
                status = "FAILED" if res.get("failed") else f"{res['final_eval_return']:.0f}"
                print(f"[{time.time() - start:6.0f} s] {task} seed {seed}: {status}", flush=True)
    md = table(results, args.tasks, args.seeds, steps, args.overrides)
    (args.out / "learning.md").write_text(md)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    png = plot(args.out, args.tasks, args.seeds)
    print(md)
    print(f"wrote {args.out / 'learning.md'} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
