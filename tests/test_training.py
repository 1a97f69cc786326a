"""End-to-end training: learning, exact resume, faults and the CLI around them."""

from __future__ import annotations

import csv
import json
import signal
from pathlib import Path

import pytest
import torch
import yaml

from app.checkpoint import load_checkpoint
from app.cli import main
from app.config import config_from_dict, load_config
from app.errors import TrainingDiverged
from app.runner import Trainer, new_run_dir

# progress.csv columns that measure time, which a resumed run cannot reproduce
TIMING = {"wall_time", "run_time", "steps_per_s", "collect_time", "update_time"}


def read_progress(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "progress.csv").open() as f:
        return list(csv.DictReader(f))


def only_run(root: Path) -> Path:
    (run,) = [p for p in root.glob("*/*") if p.is_dir()]
    return run


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["trpo", "ppo", "a2c", "vpg"])
def test_each_algorithm_learns_inverted_pendulum_with_its_shipped_config(tmp_path, algo):
    # Exactly as a user runs `make train task=inverted_pendulum algo=...` (seed 0), to the end: the
    # final policy, the one `make eval`, `make render` and `make export` use, must balance, not only the best.
    cfg = load_config("inverted_pendulum", [f"train.runs_dir={tmp_path}", "train.progress=none"], algo=algo)
    assert cfg.algo.name == algo
    summary = Trainer(cfg, new_run_dir(cfg)).run()
    assert summary["finished"] and summary["env_steps"] >= cfg.train.total_steps
    assert summary["final_eval_return"] >= 950.0, summary

    run_dir = Path(summary["run_dir"])
    rows = read_progress(run_dir)
    assert [int(r["iteration"]) for r in rows] == list(range(1, len(rows) + 1))
    for column in ("kl", "entropy", "value_loss", "explained_variance", "steps_per_s", "episode_return"):
        assert rows[-1][column] not in ("", "nan"), column
    if algo == "trpo":
        assert max(float(r["kl"]) for r in rows) <= cfg.algo.max_kl + 1e-9
        assert rows[-1]["line_search_fraction"] not in ("", "nan")
    if algo == "ppo":
        assert rows[-1]["clip_fraction"] not in ("", "nan")  # an algorithm's own metric reaches the CSV
        # the normalizer trap: every iteration's first minibatch sees ratio 1 against the recorded log-probs
        assert max(float(r["first_ratio_error"]) for r in rows) < 1e-5
    assert any(p.name.startswith("events.out.tfevents") for p in run_dir.iterdir())
    assert {"latest.pt", "best.pt"} <= {p.name for p in (run_dir / "checkpoints").iterdir()}
    # the run's config.yaml and its checkpoint hold the whole resolved configuration the run trained with
    saved = config_from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()), "config.yaml", saved=True)
    assert saved == cfg
    assert config_from_dict(load_checkpoint(run_dir / "checkpoints" / "latest.pt")["config"], "ckpt", saved=True) == cfg

    # make eval on the latest checkpoint, over more episodes and other seeds than training's evaluations
    assert main(["evaluate", str(run_dir), "--episodes", "10", "--seed", "77"]) == 0
    result = json.loads((run_dir / "eval.json").read_text())
    assert result["episodes"] == 10 and len(result["returns"]) == 10 and result["mean_return"] >= 950.0


@pytest.mark.parametrize(
    ("backend", "algo"),
    [
        ("cpu", ["algo.kl_schedule=constant"]),
        ("gym", ["algo.kl_schedule=constant"]),
        ("cpu", ["algo.name=ppo", "algo.lr_schedule=constant"]),
        # the reuse buffer of past rollouts is part of the state
        ("cpu", ["algo.name=a2c", "algo.lr_schedule=constant", "algo.reuse_rollouts=2"]),
        ("cpu", ["algo.name=vpg", "algo.baseline=optimal", "algo.reuse_rollouts=1", "algo.importance=cumulative"]),
        ("cpu", ["algo.name=npg", "algo.kl_schedule=constant"]),  # NPG through the trainer: its checkpoint, its rows
    ],
    ids=["trpo-cpu", "trpo-gym", "ppo", "a2c-reuse", "vpg-optimal-reuse", "npg"],
)
def test_resumed_run_continues_exactly_like_an_uninterrupted_one(tmp_path, fast, backend, algo):
    # Hopper terminates often with a random policy, so resets, truncation and env state all matter.
    overrides = [o for o in fast if not o.startswith("train.runs_dir")] + [
        "task.id=Hopper-v5",
        f"task.backend={backend}",
        "train.eval_every=3",
        *algo,
    ]
    assert_resume_is_exact(tmp_path, "hopper", overrides, steps=384, iterations=6)


def assert_resume_is_exact(tmp_path: Path, task: str, overrides: list[str], steps: int, iterations: int) -> None:
    """A run of ``steps`` and one stopped at half and resumed with ``make train resume=...`` end identical:
    env steps, every policy and value weight, every progress.csv row but the timings.

    (The half run is extended from steps / 2 to steps, so schedules over the run are held constant.)
    """
    whole = load_config(task, [*overrides, f"train.runs_dir={tmp_path / 'a'}", f"train.total_steps={steps}"])
    Trainer(whole, new_run_dir(whole)).run()

    half = load_config(task, [*overrides, f"train.runs_dir={tmp_path / 'b'}", f"train.total_steps={steps // 2}"])
    Trainer(half, new_run_dir(half)).run()
    run_b = only_run(tmp_path / "b")
    assert main(["train", "--resume", str(run_b), f"train.total_steps={steps}"]) == 0

    run_a = only_run(tmp_path / "a")
    a = load_checkpoint(run_a / "checkpoints" / "latest.pt")
    b = load_checkpoint(run_b / "checkpoints" / "latest.pt")
    assert a["runner"]["env_steps"] == b["runner"]["env_steps"] == steps
    for part in ("policy", "value"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key}"
    timing = TIMING
    rows_a, rows_b = read_progress(run_a), read_progress(run_b)
    assert len(rows_a) == len(rows_b) == iterations
    for ra, rb in zip(rows_a, rows_b, strict=True):
        assert {k: v for k, v in ra.items() if k not in timing} == {k: v for k, v in rb.items() if k not in timing}


@pytest.mark.parametrize("algo", ["ppo", "a2c", "trpo"])
def test_a_run_stopped_by_ctrl_c_resumes_exactly_with_the_default_linear_learning_rate(tmp_path, fast, algo):
    # The other resume tests extend a finished half run, which needs a schedule that ignores the run's length;
    # here the run is stopped as a user stops it (SIGINT after iteration 3 of 6: finish the iteration,
    # checkpoint, return) and resumed with `make train resume=...`, so the linear decay over the whole run holds
    # (TRPO's: the trust region's, algo.kl_schedule=linear).
    overrides = [o for o in fast if not o.startswith("train.runs_dir")] + [
        "task.id=Hopper-v5",
        "train.eval_every=3",
        f"algo.name={algo}",
        "train.total_steps=384",
        *(["algo.kl_schedule=linear"] if algo == "trpo" else []),  # TRPO's is constant by default
    ]
    whole = load_config("hopper", [*overrides, f"train.runs_dir={tmp_path / 'a'}"])
    schedule, column = ("kl_schedule", "max_kl") if algo == "trpo" else ("lr_schedule", "lr")
    assert getattr(whole.algo, schedule) == "linear"
    Trainer(whole, new_run_dir(whole)).run()

    stopped = load_config("hopper", [*overrides, f"train.runs_dir={tmp_path / 'b'}"])
    trainer = Trainer(stopped, new_run_dir(stopped))
    iterate = trainer.iterate

    def iterate_then_interrupt():
        row = iterate()
        if trainer.iteration == 3:
            signal.raise_signal(signal.SIGINT)  # the GracefulStop handler: stop after this iteration
        return row

    trainer.iterate = iterate_then_interrupt
    assert trainer.run()["finished"] is False
    run_b = only_run(tmp_path / "b")
    assert load_checkpoint(run_b / "checkpoints" / "latest.pt")["runner"]["iteration"] == 3
    assert main(["train", "--resume", str(run_b)]) == 0

    run_a = only_run(tmp_path / "a")
    a = load_checkpoint(run_a / "checkpoints" / "latest.pt")
    b = load_checkpoint(run_b / "checkpoints" / "latest.pt")
    assert a["runner"]["env_steps"] == b["runner"]["env_steps"] == 384
    for part in ("policy", "value"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key}"
    timing = TIMING
    rows_a, rows_b = read_progress(run_a), read_progress(run_b)
    assert len(rows_a) == len(rows_b) == 6
    for ra, rb in zip(rows_a, rows_b, strict=True):
        assert {k: v for k, v in ra.items() if k not in timing} == {k: v for k, v in rb.items() if k not in timing}
    start = getattr(whole.algo, column)
    assert [float(r[column]) for r in rows_b] == pytest.approx(
        [start * (1 - k / 6) for k in range(6)], rel=1e-5
    )  # csv: 6 digits


def test_non_finite_updates_are_rejected_then_the_run_stops_keeping_the_last_good_checkpoint(tmp_path, fast):
    # Every environment's observations turn NaN after 100 of its steps (iteration 4 of 32 steps).
    cfg = load_config(
        "PolicylabTest/NaNAfter-v0",
        [
            *fast,
            "task.env_kwargs={after: 100}",
            "train.total_steps=100000",
            "train.max_bad_updates=3",
            "train.eval_every=0",
        ],
    )
    trainer = Trainer(cfg, new_run_dir(cfg))
    with pytest.raises(
        TrainingDiverged,
        match=r"3 consecutive updates rejected \(non-finite observations.*last good checkpoint: .*latest.pt",
    ):
        trainer.run()
    run_dir = trainer.run_dir
    ckpt = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    assert ckpt["runner"]["iteration"] == 3
    assert all(torch.isfinite(t).all() for t in ckpt["policy"].values())
    rows = read_progress(run_dir)
    assert [r["update_rejected"] for r in rows] == ["0", "0", "0", "1", "1", "1"]
    assert all(torch.isfinite(p).all() for p in trainer.policy.parameters())


def test_tasks_command_lists_sizes(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    humanoid = next(row for row in out.splitlines() if row.startswith("humanoid "))
    assert humanoid.split()[1:4] == ["Humanoid-v5", "348", "17"]
    line = next(row for row in out.splitlines() if row.startswith("hopper"))
    assert line.split()[1:4] == ["Hopper-v5", "11", "3"]
    pendulum = next(row for row in out.splitlines() if row.startswith("inverted_pendulum "))
    assert pendulum.split()[-4:] == ["trpo,", "ppo,", "a2c,", "vpg"]  # the tuned pairs
