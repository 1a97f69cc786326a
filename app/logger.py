"""Per-iteration logging: progress.csv, TensorBoard events and a live progress display."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

# Column order of progress.csv; the TensorBoard tag of each column is group/name.
COLUMNS: dict[str, str] = {
    "iteration": "",
    "env_steps": "",
    "wall_time": "time",
    "steps_per_s": "time",
    "collect_time": "time",
    "update_time": "time",
    "episode_return": "rollout",
    "episode_length": "rollout",
    "episodes": "rollout",
    "kl": "policy",
    "surrogate_improvement": "policy",
    "line_search_accepted": "policy",
    "line_search_fraction": "policy",
    "line_search_tries": "policy",
    "entropy": "policy",
    "grad_norm": "policy",
    "value_loss": "value",
    "explained_variance": "value",
    "update_rejected": "health",
    "unstable_resets": "health",
    "eval_return": "eval",
    "eval_return_std": "eval",
    "eval_length": "eval",
}


class RunLogger:
    """Writes one row per iteration to progress.csv and TensorBoard and updates the display.

    On resume (``start_iteration`` > 0) rows beyond the checkpoint's iteration
    (written after it, before the run stopped) are dropped so the file matches
    the state the run continues from.
    """

    def __init__(self, run_dir: Path, total_steps: int, start_steps: int, start_iteration: int, progress: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = Path(run_dir) / "progress.csv"
        self._truncate(start_iteration)
        new_file = not self.path.exists()
        self.file = self.path.open("a", newline="")
        self.csv = csv.DictWriter(self.file, fieldnames=list(COLUMNS), extrasaction="ignore")
        if new_file:
            self.csv.writeheader()
        self.tb = SummaryWriter(str(run_dir), purge_step=start_iteration + 1 if start_iteration else None)
        if progress == "auto":
            progress = "bar" if sys.stderr.isatty() else "log"
        self.mode = progress
        self.bar = (
            tqdm(
                total=total_steps, initial=start_steps, unit="step", unit_scale=True, dynamic_ncols=True, smoothing=0.1
            )
            if progress == "bar"
            else None
        )

    def _truncate(self, start_iteration: int) -> None:
        if not self.path.exists():
            return
        with self.path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        keep = [r for r in rows if r.get("iteration", "").isdigit() and int(r["iteration"]) <= start_iteration]
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(COLUMNS), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(keep)

    def log(self, row: dict[str, Any]) -> None:
        self.csv.writerow({k: _fmt(row.get(k, math.nan)) for k in COLUMNS})
        self.file.flush()
        step = int(row["env_steps"])
        for key, group in COLUMNS.items():
            value = row.get(key)
            if group and isinstance(value, int | float) and math.isfinite(value):
                self.tb.add_scalar(f"{group}/{key}", value, step)
        summary = (
            f"ret {row.get('episode_return', math.nan):.1f}  kl {row.get('kl', math.nan):.4f}  "
            f"{row.get('steps_per_s', math.nan):,.0f} steps/s"
        )
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix_str(summary, refresh=True)
        elif self.mode == "log":
            extra = f"  eval {row['eval_return']:.1f}" if math.isfinite(row.get("eval_return", math.nan)) else ""
            print(f"iter {row['iteration']:>5}  steps {step:>10,}  {summary}{extra}", flush=True)

    def message(self, text: str) -> None:
        """A line of text that does not disturb the progress bar."""
        if self.mode == "none":
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.tb.close()
        self.file.close()


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
