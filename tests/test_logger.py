"""RunLogger: progress.csv keeps every metric an algorithm returns, TensorBoard gets them, the display runs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from app.logger import COLUMNS, RunLogger


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def row(iteration: int, **extra: float) -> dict[str, float]:
    return {"iteration": iteration, "env_steps": 100 * iteration, "episode_return": 1.5 * iteration, "kl": 0.01} | extra


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_progress_bar_runs_and_writes_to_stderr(tmp_path, capsys):
    logger = RunLogger(tmp_path, total_steps=400, start_steps=0, start_iteration=0, progress="bar")
    assert logger.bar is not None
    for i in range(1, 4):
        logger.log(row(i, eval_return=7.0) if i == 2 else row(i))
    logger.message("a note beside the bar")
    logger.close()
    captured = capsys.readouterr()
    assert "300/400" in captured.err  # tqdm's counter, in env steps, on stderr
    assert "ret 4.5" in captured.err and "kl 0.0100" in captured.err and "steps/s" in captured.err
    assert "a note beside the bar" in captured.out  # written around the bar (as in log mode, to stdout)
    _, rows = read(tmp_path / "progress.csv")
    assert [r["iteration"] for r in rows] == ["1", "2", "3"]


def test_progress_bar_resumes_at_the_checkpoints_step_count(tmp_path, capsys):
    logger = RunLogger(tmp_path, total_steps=1000, start_steps=600, start_iteration=6, progress="bar")
    assert logger.bar.n == 600
    logger.log(row(7))
    logger.close()
    assert "700/1" in capsys.readouterr().err


def test_log_and_none_modes(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    logger = RunLogger(tmp_path / "a", total_steps=400, start_steps=0, start_iteration=0, progress="log")
    logger.log(row(1, eval_return=3.25))
    logger.message("hello")
    logger.close()
    out = capsys.readouterr().out
    assert "iter     1" in out and "eval 3.2" in out and "hello" in out
    logger = RunLogger(tmp_path / "b", total_steps=400, start_steps=0, start_iteration=0, progress="none")
    logger.log(row(1))
    logger.close()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_metrics_that_are_not_known_columns_widen_the_csv_and_reach_tensorboard(tmp_path):
    logger = RunLogger(tmp_path, total_steps=1000, start_steps=0, start_iteration=0, progress="none")
    logger.log(row(1, clip_fraction=0.1))
    logger.log(row(2, clip_fraction=0.2, approx_kl=0.03, reason="not a number"))  # a new metric mid-run
    logger.log(row(3, approx_kl=0.05))
    logger.close()
    header, rows = read(tmp_path / "progress.csv")
    assert header[: len(COLUMNS)] == list(COLUMNS)  # the known columns first, in order
    assert header[len(COLUMNS) :] == ["clip_fraction", "approx_kl"]  # then the others as they appeared
    assert [r["clip_fraction"] for r in rows] == ["0.1", "0.2", "nan"]
    assert [r["approx_kl"] for r in rows] == ["", "0.03", "0.05"]  # earlier rows: empty, not shifted
    assert [r["episode_return"] for r in rows] == ["1.5", "3", "4.5"]
    assert math.isnan(float(rows[0]["eval_return"]))
    tags = scalars(tmp_path)
    assert [s for s, _ in tags["algo/approx_kl"]] == [200, 300]
    assert [v for _, v in tags["algo/approx_kl"]] == pytest.approx([0.03, 0.05])
    assert [v for _, v in tags["algo/clip_fraction"]] == pytest.approx([0.1, 0.2])  # NaN is not written
    assert "rollout/episode_return" in tags and "policy/kl" in tags
    assert not any("reason" in tag for tag in tags)


def test_resume_keeps_the_extra_columns_and_drops_rows_after_the_checkpoint(tmp_path):
    logger = RunLogger(tmp_path, total_steps=1000, start_steps=0, start_iteration=0, progress="none")
    for i in range(1, 5):
        logger.log(row(i, clip_fraction=0.1 * i) if i < 3 else row(i, clip_fraction=0.1 * i, approx_kl=0.01 * i))
    logger.close()

    # the checkpoint was written at iteration 3; iteration 4 was logged after it and is logged again
    logger = RunLogger(tmp_path, total_steps=1000, start_steps=300, start_iteration=3, progress="none")
    logger.log(row(4, clip_fraction=0.9))  # approx_kl missing this time: the column stays, the cell is empty
    logger.log(row(5, clip_fraction=1.0, entropy_coef=0.5))  # and a new metric after the resume
    logger.close()
    header, rows = read(tmp_path / "progress.csv")
    assert header[len(COLUMNS) :] == ["clip_fraction", "approx_kl", "entropy_coef"]
    assert [r["iteration"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert [r["clip_fraction"] for r in rows] == ["0.1", "0.2", "0.3", "0.9", "1"]
    assert [r["approx_kl"] for r in rows] == ["", "", "0.03", "nan", "nan"]
    assert [r["entropy_coef"] for r in rows] == ["", "", "", "", "0.5"]


def test_reward_terms_and_success_rates_get_their_own_groups_and_the_success_rate_shows(tmp_path, capsys):
    logger = RunLogger(tmp_path, total_steps=1000, start_steps=0, start_iteration=0, progress="log")
    logger.log(row(1, reward_distance=-0.2, train_success=0.25))
    logger.log(row(2, reward_distance=-0.1, train_success=0.5, eval_success=0.75))
    logger.close()
    out = capsys.readouterr().out.splitlines()
    assert "success 25%" in out[0] and "success 50%  eval success 75%" in out[1]
    tags = scalars(tmp_path)
    assert [v for _, v in tags["reward/reward_distance"]] == pytest.approx([-0.2, -0.1])
    assert "rollout/train_success" in tags and "eval/eval_success" in tags
