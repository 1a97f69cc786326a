"""Checkpoints: atomic, safe to load, complete, and clear when something is wrong."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from app.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
from app.cli import main
from app.errors import CheckpointError
from app.evaluate import evaluate_run

ROOT = Path(__file__).resolve().parent.parent


def test_checkpoint_holds_everything_needed(trained_run):
    ckpt = load_checkpoint(trained_run / "checkpoints" / "latest.pt")
    assert {"config", "policy", "value", "algo", "runner", "env", "task", "code_revision"} <= set(ckpt)
    assert {"normalizer.mean", "normalizer.var", "normalizer.count", "log_std"} <= set(ckpt["policy"])
    assert ckpt["policy"]["normalizer.count"] > 0
    assert {"generator", "torch_rng", "tracker", "reward_scaler", "obs", "iteration", "env_steps"} <= set(
        ckpt["runner"]
    )
    assert "state" in ckpt["algo"]["value_optimizer"]
    assert ckpt["env"]["elapsed"].shape == (2,)  # the native backend: one episode counter per environment


def test_missing_run_and_checkpoint_are_clear_errors(tmp_path, trained_run, capsys):
    with pytest.raises(CheckpointError, match="run directory not found: .*nope"):
        resolve_checkpoint(tmp_path / "nope")
    with pytest.raises(CheckpointError, match=r"no checkpoint iter_000999.pt in .* \(available: best.pt, latest.pt\)"):
        resolve_checkpoint(trained_run, "iter_000999")
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("error: run directory not found")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "foreign"])
def test_corrupt_checkpoints_are_clear_errors(trained_run, damage, capsys):
    path = trained_run / "checkpoints" / "latest.pt"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(4096))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        torch.save({"state_dict": {"w": torch.zeros(3)}}, path)
    with pytest.raises(
        CheckpointError, match=r"latest.pt (is not a readable policylab checkpoint|is not a policylab checkpoint)"
    ):
        load_checkpoint(path)
    assert main(["evaluate", str(trained_run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_checkpoint_that_runs_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    torch.save({"format": "policylab-checkpoint", "version": 1, "x": Evil()}, path)
    with pytest.raises(CheckpointError, match="not a readable policylab checkpoint"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_checkpoint_whose_task_no_longer_exists(trained_run):
    path = trained_run / "checkpoints" / "latest.pt"
    ckpt = load_checkpoint(path)
    ckpt["config"]["task"]["id"] = "RetiredRobot-v1"
    save_checkpoint({k: v for k, v in ckpt.items() if k not in ("format", "version")}, path)
    with pytest.raises(CheckpointError, match=r"latest.pt: unknown Gymnasium id 'RetiredRobot-v1'"):
        evaluate_run(trained_run)


def test_resuming_with_a_checkpoint_of_another_task_is_a_clear_error(trained_run, capsys):
    config = trained_run / "config.yaml"
    config.write_text(config.read_text().replace("InvertedPendulum-v5", "Hopper-v5"))
    assert main(["train", "--resume", str(trained_run)]) == 2
    assert "is from task inverted_pendulum (InvertedPendulum-v5) but run" in capsys.readouterr().err


def test_checkpoint_of_another_shape_is_a_clear_error(trained_run):
    path = trained_run / "checkpoints" / "latest.pt"
    ckpt = load_checkpoint(path)
    ckpt["config"]["task"]["id"] = "Hopper-v5"  # the saved policy has 4 inputs, Hopper 11
    save_checkpoint({k: v for k, v in ckpt.items() if k not in ("format", "version")}, path)
    config = trained_run / "config.yaml"
    config.write_text(config.read_text().replace("InvertedPendulum-v5", "Hopper-v5"))
    with pytest.raises(CheckpointError, match="the policy does not fit task inverted_pendulum"):
        evaluate_run(trained_run)


def test_atomic_save_leaves_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "ck" / "latest.pt"
    save_checkpoint({"config": {}, "policy": {}, "value": {"a": torch.ones(2)}}, path)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_checkpoint({"config": {}, "policy": {}, "value": {"a": torch.zeros(2)}}, path)
    assert torch.equal(load_checkpoint(path)["value"]["a"], torch.ones(2))
    assert [p.name for p in path.parent.iterdir()] == ["latest.pt"]  # no temporary left behind


def _train_process(tmp_path: Path, *extra: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "app",
        "train",
        "--task",
        "inverted_pendulum",
        f"train.runs_dir={tmp_path}",
        "train.progress=log",
        "train.checkpoint_every=1",
        "train.total_steps=1e7",
        "train.steps_per_env=32",
        "train.eval_every=0",
        *extra,
    ]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_kill_9_at_any_moment_leaves_a_loadable_checkpoint_and_the_run_resumes(tmp_path):
    rng = random.Random(0)
    for attempt in range(3):
        root = tmp_path / f"k{attempt}"
        proc = _train_process(root)
        try:
            _wait_for(lambda root=root: any(root.glob("*/*/checkpoints/latest.pt")))
            time.sleep(rng.uniform(0.0, 0.5))
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
            proc.stdout.close()
        (latest,) = root.glob("*/*/checkpoints/latest.pt")
        ckpt = load_checkpoint(latest)
        assert ckpt["runner"]["iteration"] >= 1
    run_dir = latest.parent.parent
    steps = int(ckpt["runner"]["env_steps"])
    assert main(["train", "--resume", str(run_dir), f"train.total_steps={steps + 512}", "train.progress=none"]) == 0
    rows = (run_dir / "progress.csv").read_text().splitlines()[1:]
    iterations = [int(r.split(",")[0]) for r in rows]
    assert iterations == list(range(1, len(iterations) + 1))  # rows after the checkpoint were dropped, then rewritten


def test_sigterm_writes_a_checkpoint_and_exits_cleanly(tmp_path):
    proc = _train_process(tmp_path)
    try:
        _wait_for(lambda: any(tmp_path.glob("*/*/checkpoints/latest.pt")))
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "SIGTERM: finishing this iteration" in out and "resume with: make train resume=" in out
    (latest,) = tmp_path.glob("*/*/checkpoints/latest.pt")
    rows = (latest.parent.parent / "progress.csv").read_text().splitlines()
    assert load_checkpoint(latest)["runner"]["iteration"] == int(rows[-1].split(",")[0])
