"""Learning benchmark: the policy-gradient family on MuJoCo v5 tasks, 1M steps, several seeds.

Runs every (algorithm, task, seed) as its own training process (``--workers`` at a time) with the
shipped settings (``configs/<task>.yaml``, ``configs/<algo>/<task>.yaml`` for the other algorithms),
then writes ``docs/benchmarks.md`` (final and best deterministic return over seeds beside the
published figures of ../shared/ANCHORS.md), one learning-curve PNG per task in ``docs/benchmarks/``,
and keeps the runs under ``bench/results/learning/``.

    python bench/learning.py                                   # the full benchmark (hours on 2 cores)
    python bench/learning.py --algos ppo --tasks hopper --seeds 0     # a part of it
    python bench/learning.py --report-only                     # tabulate what has finished
    python bench/learning.py --humanoid --seeds 0              # the shipped humanoid config, to its end
    python bench/learning.py --out /tmp/sweep --doc /tmp/sweep/b.md algo.max_kl=0.02   # with overrides
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
# Which algorithms run on which tasks by default (the minimum: a2c and vpg on two tasks).
DEFAULT_PAIRS = {
    "trpo": TASKS,
    "ppo": TASKS,
    "a2c": ["hopper", "halfcheetah"],
    "vpg": ["hopper", "halfcheetah"],
}
# Published returns after 1M steps (../shared/ANCHORS.md). Tianshou's are the best point of the
# seed-averaged test curve (compare with our best evaluation); the RL Zoo's and sb3-contrib's are final.
ANCHORS: dict[str, dict[str, dict[str, float]]] = {
    "trpo": {
        "Tianshou (best)": {"hopper": 2046, "walker2d": 3827, "halfcheetah": 4471, "ant": 2867, "swimmer": 41},
        "RL Zoo": {"hopper": 3618, "walker2d": 4933, "halfcheetah": 1786, "ant": 4982, "swimmer": 366},
        "sb3-contrib": {"hopper": 3372, "walker2d": 4502, "halfcheetah": 1803, "ant": 3554, "swimmer": 359},
    },
    "ppo": {
        "Tianshou (best)": {"hopper": 2609, "walker2d": 3589, "halfcheetah": 5784, "ant": 3258, "swimmer": 67},
        "RL Zoo": {"hopper": 2410, "walker2d": 3479, "halfcheetah": 5819, "ant": 1327, "swimmer": 282},
        "CleanRL": {"hopper": 2383, "walker2d": 2288, "halfcheetah": 1443},
    },
    "a2c": {
        "Tianshou (best)": {"hopper": 1253, "walker2d": 1092, "halfcheetah": 1830, "ant": 3485, "swimmer": 37},
        "RL Zoo": {"hopper": 734, "walker2d": 582, "halfcheetah": 3041, "ant": -44, "swimmer": 201},
    },
    "vpg": {
        "Tianshou REINFORCE 3M (best)": {"hopper": 396, "walker2d": 412, "halfcheetah": 884, "ant": 475},
    },
    "npg": {
        "Tianshou (best)": {"hopper": 1915, "walker2d": 2503, "halfcheetah": 3485, "ant": 2358, "swimmer": 32},
    },
}


def run_folder(out: Path, algo: str, task: str, seed: int) -> Path:
    return out / "runs" / f"{algo}-{task}-s{seed}"


def finished_run(out: Path, algo: str, task: str, seed: int) -> dict | None:
    """The summary of a finished (algo, task, seed) run in ``out``, or None."""
    folder = run_folder(out, algo, task, seed)
    summary_path = next(folder.glob("*/*/summary.json"), None) if folder.exists() else None
    if summary_path is not None and json.loads(summary_path.read_text()).get("finished"):
        summary = json.loads(summary_path.read_text())
        summary["run_dir"] = str(summary_path.parent)  # where the run is now (runs may be moved into --out)
        return summary
    return None


def run_one(
    algo: str, task: str, seed: int, steps: int | None, out: Path, overrides: list[str], threads: int = 1
) -> dict:
    done = finished_run(out, algo, task, seed)
    if done is not None:
        return done  # already done: reuse (delete the folder to rerun)
    folder = run_folder(out, algo, task, seed)
    cmd = [sys.executable, "-m", "app", "train", "--task", task, "--algo", algo, f"train.seed={seed}"]
    if steps is not None:
        cmd.append(f"train.total_steps={steps}")
    cmd += [
        f"train.runs_dir={folder}",
        "train.progress=none",
        "train.eval_episodes=10",
        "train.keep_every=0",
        # the runs share the cores: simulation and update threads split them
        f"task.num_threads={threads}",
        f"train.update_threads={threads}",
        *overrides,
    ]
    log = out / "logs" / f"{algo}-{task}-s{seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with log.open("w") as f:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=env, check=False)
    summary_path = next(folder.glob("*/*/summary.json"), None)
    if proc.returncode != 0 or summary_path is None:
        return {"algo": algo, "task": task, "seed": seed, "failed": True, "log": str(log)}
    return json.loads(summary_path.read_text())


def eval_curve(out: Path, algo: str, task: str, seed: int) -> tuple[list[float], list[float]] | None:
    path = next(run_folder(out, algo, task, seed).glob("*/*/progress.csv"), None)
    if path is None:
        return None
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if r["eval_return"] not in ("", "nan")]
    return [float(r["env_steps"]) for r in rows], [float(r["eval_return"]) for r in rows]


def plot_task(out: Path, task: str, algos: list[str], seeds: list[int], folder: Path) -> Path | None:
    """docs/benchmarks/<task>.png: deterministic evaluation return vs env steps, median and range per algorithm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5, 3.4))
    drawn = False
    for algo in algos:
        runs = [c for c in (eval_curve(out, algo, task, s) for s in seeds) if c is not None and c[0]]
        if not runs:
            continue
        n = min(len(x) for x, _ in runs)
        x = np.array(runs[0][0][:n]) / 1e6
        y = np.array([ys[:n] for _, ys in runs])
        (line,) = ax.plot(x, np.median(y, axis=0), label=f"{algo} (median of {len(runs)})")
        ax.fill_between(x, y.min(axis=0), y.max(axis=0), alpha=0.2, color=line.get_color())
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_title(task)
    ax.set_xlabel("env steps (M)")
    ax.set_ylabel("deterministic return")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{task}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def backend_of(runs: list[dict]) -> str:
    """The simulation backend the runs used (task.backend in their config.yaml)."""
    backends = set()
    for r in runs:
        config = Path(r.get("run_dir", "")) / "config.yaml"
        if config.is_file():
            backends.add(yaml.safe_load(config.read_text()).get("task", {}).get("backend", "gym"))
    return ", ".join(sorted(backends)) or "-"


def median_cell(values: list[float]) -> str:
    return f"{statistics.median(values):.0f}" if values else "-"


def table(results: list[dict], pairs: list[tuple[str, str]], seeds: list[int], steps: str) -> str:
    """One row per (algorithm, task): our final and best returns (median over seeds, per seed) and the anchors."""
    lines = [
        "| algorithm | task | backend | final (median) | final per seed | best eval (median) | published "
        "| env-steps/s | wall time / run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for algo, task in pairs:
        runs = [r for r in results if r.get("algo") == algo and r.get("task") == task and not r.get("failed")]
        failed = [r for r in results if r.get("algo") == algo and r.get("task") == task and r.get("failed")]
        if not runs and not failed:
            continue
        final = [r["final_eval_return"] for r in runs]
        best = [r["best_eval_return"] for r in runs if r.get("best_eval_return") is not None]
        per_seed = ", ".join(f"{v:.0f}" for v in final) + (f" ({len(failed)} failed)" if failed else "")
        published = "; ".join(
            f"{source} {numbers[task]:g}" for source, numbers in ANCHORS.get(algo, {}).items() if task in numbers
        )
        sps = statistics.median(r["steps_per_s"] for r in runs) if runs else float("nan")
        wall = statistics.median(r["wall_time"] for r in runs) / 60 if runs else float("nan")
        lines.append(
            f"| {algo} | {task} | {backend_of(runs)} | **{median_cell(final)}** | {per_seed} | {median_cell(best)} "
            f"| {published or '-'} | {sps:,.0f} | {wall:.1f} min |"
        )
    header = [
        f"{steps} env steps per run, seeds {', '.join(map(str, seeds))} (per cell: the runs that finished). "
        "Final: the last policy, deterministic, 10 episodes. Best eval: the best of the periodic deterministic "
        "evaluations (10 episodes each), to compare with tables that report the best point of the curve "
        "(Tianshou). Published figures: ../shared/ANCHORS.md (gym v3 tasks; ours are v5).",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, {platform.system()}; runs two at a time "
        "(each on about one core).",
        "",
    ]
    return "\n".join(header + lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algos", nargs="+", default=list(DEFAULT_PAIRS))
    parser.add_argument("--tasks", nargs="+", default=None, help="default: each algorithm's tasks (DEFAULT_PAIRS)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=float, default=1e6)
    parser.add_argument("--humanoid", action="store_true", help="run the shipped humanoid config to its own end")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "learning")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--report-only", action="store_true", help="tabulate the finished runs; train nothing")
    parser.add_argument("--note", default="", help="a paragraph put above the table (how the runs were made)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    if args.humanoid:
        pairs = [(algo, "humanoid") for algo in args.algos]
        steps: int | None = None  # the config's own total_steps
    else:
        pairs = [(a, t) for a in args.algos for t in (args.tasks or DEFAULT_PAIRS.get(a, TASKS))]
        steps = int(args.steps)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(algo, task, seed) for seed in args.seeds for algo, task in pairs]
    start = time.time()
    results = []
    if args.report_only:
        results = [r for r in (finished_run(args.out, *job) for job in jobs) if r is not None]
    else:
        with ThreadPoolExecutor(args.workers) as pool:
            threads = max(1, (os.cpu_count() or 1) // args.workers)
            futures = [pool.submit(run_one, *job, steps, args.out, args.overrides, threads) for job in jobs]
            for job, fut in zip(jobs, futures, strict=True):
                res = fut.result()
                results.append(res)
                status = "FAILED" if res.get("failed") else f"{res['final_eval_return']:.0f}"
                print(f"[{time.time() - start:6.0f} s] {' '.join(map(str, job))}: {status}", flush=True)
    # The document covers every finished run in --out (earlier invocations too, e.g. --humanoid), so it
    # accumulates; this invocation's failures are listed beside them.
    found = sorted({tuple(p.name.rsplit("-s", 1)[0].split("-", 1)) for p in (args.out / "runs").glob("*-*-s*")})
    all_seeds = sorted({int(p.name.rsplit("-s", 1)[1]) for p in (args.out / "runs").glob("*-*-s*")})
    every = [(a, t) for a, t in found if (a, t) in set(pairs)] + [(a, t) for a, t in found if (a, t) not in set(pairs)]
    finished = [r for r in (finished_run(args.out, a, t, s) for a, t in every for s in all_seeds) if r is not None]
    results = finished + [r for r in results if r.get("failed")]
    humanoid = any(t == "humanoid" for _, t in every)
    label = f"{int(args.steps):,}" + (" (humanoid: its config's own total)" if humanoid else "")
    md = table(results, every, all_seeds, label)
    if args.note:
        md = f"{args.note}\n\n" + md
    if args.overrides:
        md = f"Overrides: `{' '.join(args.overrides)}`\n\n" + md
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    tasks = list(dict.fromkeys(t for _, t in every))
    pngs = [
        plot_task(args.out, t, [a for a, tt in every if tt == t], all_seeds, args.doc.parent / "benchmarks")
        for t in tasks
    ]
    images = "\n".join(f"![{p.stem}](benchmarks/{p.name})" for p in pngs if p is not None)
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    intro = "# Learning benchmark\n\nWritten by `make bench-learn` (bench/learning.py).\n\n"
    args.doc.write_text(intro + md + ("\n" + images + "\n" if images else ""))
    print(md)
    print(f"wrote {args.doc} ({len([p for p in pngs if p])} curve PNGs) and {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
