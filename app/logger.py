"""Per-iteration logging: progress.csv, TensorBoard events and a live progress display."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

# The known columns of progress.csv, first and in this order; the TensorBoard tag of each is group/name.
# Any other number in a row (whatever an algorithm's update returns) follows them as its own column,
# tagged algo/name, so no metric is dropped.
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


EXTRA_GROUP = "algo"
# Columns named by a prefix: the environment's reward terms, training episodes' and evaluation's statistics.
PREFIX_GROUPS = {"reward_": "reward", "train_": "rollout", "eval_": "eval"}


def column_group(key: str) -> str:
    """The TensorBoard group of a progress.csv column ('' for the step counters)."""
    if key in COLUMNS:
        return COLUMNS[key]
    return next((group for prefix, group in PREFIX_GROUPS.items() if key.startswith(prefix)), EXTRA_GROUP)


class RunLogger:
    """Writes one row per iteration to progress.csv and TensorBoard and updates the display.

    progress.csv has the known :data:`COLUMNS` first, then every other numeric metric in the
    order it first appeared; a metric that appears later (after the header was written)
    rewrites the file once with the wider header, earlier rows empty in the new column.
    On resume (``start_iteration`` > 0) rows beyond the checkpoint's iteration
    (written after it, before the run stopped) are dropped so the file matches
    the state the run continues from.
    """

    def __init__(self, run_dir: Path, total_steps: int, start_steps: int, start_iteration: int, progress: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = Path(run_dir) / "progress.csv"
        self.columns = list(COLUMNS)
        self._truncate(start_iteration)
        new_file = not self.path.exists()
        self.file = self.path.open("a", newline="")
        self.csv = csv.DictWriter(self.file, fieldnames=self.columns, extrasaction="ignore")
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
        """Keep the rows up to ``start_iteration`` and the columns the file already had."""
        if not self.path.exists():
            return
        with self.path.open(newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            self.columns += [c for c in reader.fieldnames or [] if c not in self.columns]
        keep = [r for r in rows if r.get("iteration", "").isdigit() and int(r["iteration"]) <= start_iteration]
        self._rewrite(keep)

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def _add_columns(self, names: list[str]) -> None:
        """Widen progress.csv by ``names`` (earlier rows get empty cells)."""
        self.file.close()
        with self.path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        self.columns += names
        self._rewrite(rows)
        self.file = self.path.open("a", newline="")
        self.csv = csv.DictWriter(self.file, fieldnames=self.columns, extrasaction="ignore")

    def log(self, row: dict[str, Any]) -> None:
        new = [k for k, v in row.items() if k not in self.columns and _is_number(v)]
        if new:
            self._add_columns(new)
        self.csv.writerow({k: _fmt(row.get(k, math.nan)) for k in self.columns})
        self.file.flush()
        step = int(row["env_steps"])
        for key in self.columns:
            group = column_group(key)
            value = row.get(key)
            if group and _is_number(value) and math.isfinite(value):
                self.tb.add_scalar(f"{group}/{key}", value, step)
        summary = (
            f"ret {row.get('episode_return', math.nan):.1f}  kl {row.get('kl', math.nan):.4f}  "
            f"{row.get('steps_per_s', math.nan):,.0f} steps/s"
        )
        # tasks with a success condition (the Franka tasks): training episodes' and the evaluation's rate
        for key, label in (("train_success", "success"), ("eval_success", "eval success")):
            if _is_number(row.get(key)) and math.isfinite(row[key]):
                summary += f"  {label} {100 * row[key]:.0f}%"
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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
