"""Summarize the training runs of a GPU check (bench/gpu_check.sh) into one markdown table, against the goals.

    python bench/gpu_report.py RESULTS_DIR [--out RESULTS_DIR/gpu_check.md]

RESULTS_DIR holds ``runs/<task>/<run>/`` folders as ``make train ... train.runs_dir=RESULTS_DIR/runs/<task>``
writes them. For each run: the placement line, start-up (environments and kernel compiles), run time,
env steps and rate, the final and best deterministic returns, when (run time, start-up included) the
evaluation first passed each goal, and the share of episodes that were unstable resets. Only the standard
library: the GPU machine has no package index.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
from pathlib import Path

# (threshold, minutes) goals of the GPU issue for the shipped command, start-up included, cold kernel cache.
# Returns for the Gymnasium robots; success rates or lap completion for our own tasks.
GOALS: dict[str, list[tuple[str, float, float]]] = {
    "humanoid": [("eval_return", 10000, 5), ("eval_return", 11700, 10)],
    "ant": [("eval_return", 5876, 5), ("eval_return", 7467, 15)],
    "walker2d": [("eval_return", 5488, 5), ("eval_return", 6938, 15)],
    "halfcheetah": [("eval_return", 7337, 5), ("eval_return", 15420, 15)],
    "hopper": [("eval_return", 3128, 5), ("eval_return", 4151, 15)],
    "franka_push": [("eval_success", 0.80, 10)],
    "franka_lift": [("eval_success", 0.95, 10)],
    "driving": [("eval_lap_completed", 0.95, 2)],
    "driving_throttle": [("eval_lap_completed", 0.95, 2)],
    "driving_camera": [("eval_lap_completed", 0.95, 2)],
}


def number(value: str | float | None) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def run_row(run: Path) -> dict[str, object]:
    """One run's figures from its summary.json (if it finished) and progress.csv."""
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else {}
    with (run / "progress.csv").open() as f:
        rows = list(csv.DictReader(f))
    task = run.parent.name
    evals = [r for r in rows if math.isfinite(number(r.get("eval_return")))]
    reached = []
    for key, threshold, minutes in GOALS.get(task, []):
        first = next((r for r in evals if number(r.get(key)) >= threshold), None)
        when = number(first["run_time"]) if first else math.nan
        met = math.isfinite(when) and when <= 60 * minutes
        shown = f"{threshold:g}" if key == "eval_return" else f"{100 * threshold:.0f}%"
        at = f"at {when / 60:.1f} min" if math.isfinite(when) else "not reached"
        reached.append(f"{shown} in {minutes:g} min: {'met' if met else 'not met'} ({at})")
    rates = [number(r["steps_per_s"]) for r in rows[1:] or rows] or [math.nan]
    last = evals[-1] if evals else {}
    best = max(evals, key=lambda r: number(r["eval_return"])) if evals else {}
    success = {k: last[k] for k in ("eval_success", "eval_lap_completed") if k in last}
    return {
        "task": task,
        "algo": run.name.split("-")[-2] if "-" in run.name else "?",
        "placement": summary.get("placement", "-"),
        "startup_s": number(summary.get("startup_time")),
        "run_min": number(summary.get("run_time", rows[-1].get("run_time") if rows else None)) / 60,
        "env_steps": int(number(rows[-1]["env_steps"])) if rows else 0,
        "steps_per_s": statistics.median(rates),
        "final": number(last.get("eval_return")),
        "best": number(best.get("eval_return")),
        "success": ", ".join(f"{k[5:]} {100 * number(v):.0f}%" for k, v in success.items()),
        "unstable": number(summary.get("unstable_reset_rate")),
        "goals": "; ".join(reached) or "-",
        "finished": summary.get("finished", False),
    }


def write(results: Path, out: Path) -> Path:
    runs = sorted(p.parent for p in results.glob("runs/*/*/progress.csv"))
    lines = [
        "| task | algo | start-up (s) | run (min) | env steps | env-steps/s | final | best | success | "
        "unstable resets | goals | finished |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|---|",
    ]
    placements = []
    for run in runs:
        r = run_row(run)
        placements.append(f"- {r['task']}: {r['placement']}")
        lines.append(
            f"| {r['task']} | {r['algo']} | {r['startup_s']:.0f} | {r['run_min']:.1f} | {r['env_steps']:,} | "
            f"{r['steps_per_s']:,.0f} | {r['final']:.0f} | {r['best']:.0f} | {r['success'] or '-'} | "
            f"{100 * r['unstable']:.3f}% | {r['goals']} | {r['finished']} |"
        )
    text = "\n".join(["## Training runs (the shipped command, side by side)", "", *lines, "", *placements]) + "\n"
    out.write_text(text)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="the GPU check's results folder")
    parser.add_argument("--out", default=None, help="markdown path (default RESULTS/gpu_check.md)")
    args = parser.parse_args(argv)
    results = Path(args.results)
    print(write(results, Path(args.out) if args.out else results / "gpu_check.md").read_text(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
