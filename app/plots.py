"""Learning curves from progress.csv: one run's curve, and several runs grouped over seeds."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from app.errors import PolicylabError

METRICS = {"episode_return": "training return (stochastic policy)", "eval_return": "deterministic evaluation return"}


def read_progress(run_dir: Path) -> dict[str, np.ndarray]:
    """Columns of ``run_dir/progress.csv`` as float arrays [iterations] (missing values: nan)."""
    path = run_dir / "progress.csv"
    if not path.is_file():
        raise PolicylabError(f"no progress.csv in {run_dir} (is it a run directory?)")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise PolicylabError(f"{path} has no rows yet")

    def number(text: str | None) -> float:
        try:
            return float(text) if text not in (None, "") else math.nan
        except ValueError:
            return math.nan

    return {key: np.array([number(r.get(key)) for r in rows]) for key in rows[0]}


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories (folders with progress.csv) given directly or anywhere below the given folders."""
    runs: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise PolicylabError(f"run directory not found: {path}")
        found = [path] if (path / "progress.csv").is_file() else sorted(p.parent for p in path.rglob("progress.csv"))
        if not found:
            raise PolicylabError(f"no runs (folders with progress.csv) in {path}")
        runs += [r for r in found if r not in runs]
    return runs


def run_label(run_dir: Path) -> str:
    """'<task> <algo>' from the run's config.yaml (the folder name if it has none)."""
    try:
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        return f"{cfg['task']['name']} {cfg['algo']['name']}"
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return run_dir.name


def _curve(data: dict[str, np.ndarray], x_key: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = data[x_key], data.get(metric, np.full_like(data[x_key], math.nan))
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _spread(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Curves on a common grid up to the shortest one's end: x, mean, low, high (min and max over runs)."""
    end = min(x[-1] for x, _ in curves)
    start = max(x[0] for x, _ in curves)
    grid = np.linspace(start, end, 200) if end > start else np.array([start])
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    return grid, ys.mean(axis=0), ys.min(axis=0), ys.max(axis=0)


# The two x axes of every learning-curve figure: progress.csv column, divisor, label.
X_AXES = [("env_steps", 1e6, "env steps (millions)"), ("wall_time", 60.0, "wall time (minutes)")]


def _figure() -> tuple[Any, list[tuple[Any, str, float]]]:
    """A figure with one panel per X_AXES entry: (figure, [(axes, x column, x divisor)])."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(X_AXES), figsize=(11, 4))
    for ax, (_, _, label) in zip(axes, X_AXES, strict=True):
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    return fig, [(ax, key, scale) for ax, (key, scale, _) in zip(axes, X_AXES, strict=True)]


def _save(fig: Any, title: str, out: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_runs(paths: list[str | Path], out: Path, metric: str = "episode_return") -> Path:
    """Return against env steps and against wall time, mean and min-max over the runs of each group."""
    if metric not in METRICS:
        raise PolicylabError(f"unknown metric '{metric}'; valid: {', '.join(METRICS)}")
    groups: dict[str, list[dict[str, np.ndarray]]] = defaultdict(list)
    for run in find_runs(paths):
        groups[run_label(run)].append(read_progress(run))
    fig, panels = _figure()
    for ax, x_key, scale in panels:
        for label, runs in groups.items():
            curves = [c for c in (_curve(d, x_key, metric) for d in runs) if len(c[0])]
            if not curves:
                continue
            grid, mean, low, high = _spread(curves)
            name = f"{label} ({len(curves)} run{'s' if len(curves) > 1 else ''})"
            (line,) = ax.plot(grid / scale, mean, label=name, marker="o" if len(grid) == 1 else None)
            if len(curves) > 1:
                ax.fill_between(grid / scale, low, high, color=line.get_color(), alpha=0.2)
        ax.set_ylabel(METRICS[metric])
    return _save(fig, "mean over runs, shaded: min to max", out)


def plot_run(run_dir: Path) -> Path:
    """``run_dir/plots/learning_curve.png``: training return per iteration and evaluation returns."""
    data = read_progress(run_dir)
    fig, panels = _figure()
    for ax, x_key, scale in panels:
        x, y = _curve(data, x_key, "episode_return")
        ax.plot(x / scale, y, label="training return")
        x, y = _curve(data, x_key, "eval_return")
        if len(x):
            ax.plot(x / scale, y, marker="o", label="deterministic evaluation")
        ax.set_ylabel("return")
    return _save(fig, run_label(run_dir), run_dir / "plots" / "learning_curve.png")
