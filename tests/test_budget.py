"""train.minutes: a wall-clock budget ends the run cleanly, start-up included."""

from __future__ import annotations

import json
import math
from pathlib import Path

from app.config import load_config
from app.runner import Trainer, new_run_dir


def test_a_spent_wall_clock_budget_ends_the_run_like_its_last_step(fast):
    # 0.001 minutes (60 ms) is less than start-up: the run gets its one iteration, then ends as a finished run
    cfg = load_config("inverted_pendulum", [*fast, "train.total_steps=1000000", "train.minutes=0.001"])
    summary = Trainer(cfg, new_run_dir(cfg)).run()
    run = Path(summary["run_dir"])
    assert summary["finished"] and summary["stopped_by"] == "minutes"
    assert summary["iterations"] == 1 and summary["env_steps"] == 64
    assert math.isfinite(summary["final_eval_return"])  # the final evaluation ran
    assert summary["run_time"] >= summary["startup_time"] > 0
    assert (run / "checkpoints" / "latest.pt").is_file() and (run / "report.md").is_file()
    assert "ended by minutes" in (run / "report.md").read_text()
    assert json.loads((run / "summary.json").read_text())["stopped_by"] == "minutes"


def test_without_a_budget_total_steps_ends_the_run(fast):
    cfg = load_config("inverted_pendulum", fast)
    summary = Trainer(cfg, new_run_dir(cfg)).run()
    assert summary["finished"] and summary["stopped_by"] == "total_steps" and summary["env_steps"] == 192
