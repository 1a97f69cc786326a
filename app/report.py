"""report.md: a run at a glance, with links to its curve and videos."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml


def _number(value: Any, fmt: str = ".1f") -> str:
    return format(value, fmt) if isinstance(value, int | float) and math.isfinite(value) else "-"


def _minutes(seconds: Any) -> float | None:
    return seconds / 60 if isinstance(seconds, int | float) else None


def write_report(run_dir: Path) -> Path:
    """Write ``run_dir/report.md`` from summary.json, eval.json, config.yaml, plots/ and videos/."""
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    evaluation = json.loads((run_dir / "eval.json").read_text()) if (run_dir / "eval.json").is_file() else {}
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) if (run_dir / "config.yaml").is_file() else {}
    task = cfg.get("task", {}) if isinstance(cfg, dict) else {}
    algo = cfg.get("algo", {}) if isinstance(cfg, dict) else {}
    wall = summary.get("wall_time")
    lines = [
        f"# {task.get('name', run_dir.name)}: {algo.get('name', '?')}",
        "",
        "| | |",
        "|---|---|",
        f"| task | {task.get('name', '-')} (`{task.get('id', '-')}`) |",
        f"| algorithm | {algo.get('name', '-')} |",
        f"| env steps | {summary.get('env_steps', '-'):,} |" if summary else "| env steps | - |",
        f"| final return (deterministic) | {_number(summary.get('final_eval_return'))} "
        f"± {_number(summary.get('final_eval_return_std'))} |",
        f"| best return (deterministic) | {_number(summary.get('best_eval_return'))} |",
        f"| env-steps/s | {_number(summary.get('steps_per_s'), ',.0f')} |",
        f"| wall time | {_number(wall / 60 if isinstance(wall, int | float) else None)} min |",
        f"| start-up (environments, kernel compiles) | {_number(summary.get('startup_time'))} s |",
        f"| run time, start-ups included | {_number(_minutes(summary.get('run_time')))} min "
        f"(ended by {summary.get('stopped_by', '-')}) |",
        f"| placement | {summary.get('placement', '-')} |",
        f"| unstable resets | {summary.get('unstable_resets', '-')} of {summary.get('episodes', '-')} episodes "
        f"({_number(100 * summary['unstable_reset_rate'] if 'unstable_reset_rate' in summary else None, '.2f')}%) |",
        f"| finished | {summary.get('finished', '-')} |",
    ]
    if evaluation:
        lines.append(
            f"| `make eval` ({evaluation.get('episodes')} episodes) | {_number(evaluation.get('mean_return'))} "
            f"± {_number(evaluation.get('std_return'))} |"
        )
    curve = run_dir / "plots" / "learning_curve.png"
    if curve.is_file():
        lines += ["", "## Learning curve", "", "![learning curve](plots/learning_curve.png)"]
    videos = sorted((run_dir / "videos").glob("*.mp4")) if (run_dir / "videos").is_dir() else []
    if videos:
        lines += ["", "## Videos", ""] + [f"- [{v.name}](videos/{v.name})" for v in videos]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
