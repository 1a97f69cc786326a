"""Training on the gpu backend (MuJoCo Warp on its CPU device here): a short run completes, checkpoints, resumes."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from app.checkpoint import load_checkpoint
from app.cli import main
from app.config import ConfigError, load_config
from app.runner import Trainer, new_run_dir
from envs import resolve_backend

SMALL = [
    "task.backend=gpu",
    "task.num_envs=4",
    "train.steps_per_env=16",
    "train.eval_episodes=1",
    "train.eval_every=2",
    "train.checkpoint_every=1",
    "train.progress=none",
    "policy.hidden_sizes=[16]",
    "value.hidden_sizes=[16]",
    "value.epochs=1",
]


def only_run(root: Path) -> Path:
    (run,) = [p for p in root.glob("*/*") if p.is_dir()]
    return run


def test_a_gpu_backend_run_trains_checkpoints_and_resumes_like_an_uninterrupted_one(tmp_path):
    whole = load_config("hopper", [*SMALL, f"train.runs_dir={tmp_path / 'a'}", "train.total_steps=256"])
    assert whole.task.backend == "gpu"
    summary = Trainer(whole, new_run_dir(whole)).run()
    assert summary["finished"] and summary["env_steps"] == 256

    half = load_config("hopper", [*SMALL, f"train.runs_dir={tmp_path / 'b'}", "train.total_steps=128"])
    Trainer(half, new_run_dir(half)).run()
    run_b = only_run(tmp_path / "b")
    assert main(["train", "--resume", str(run_b), "train.total_steps=256"]) == 0

    a = load_checkpoint(only_run(tmp_path / "a") / "checkpoints" / "latest.pt")
    b = load_checkpoint(run_b / "checkpoints" / "latest.pt")
    assert a["runner"]["env_steps"] == b["runner"]["env_steps"] == 256
    assert str(a["env"]["sim"]["qpos"].dtype).endswith("float32")  # the Warp simulator's own state was saved
    for part in ("policy", "value"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key}"


@pytest.mark.parametrize("algo", ["a2c", "vpg", "npg"])
def test_a2c_vpg_and_npg_train_on_the_gpu_backend(tmp_path, algo):
    # TRPO and PPO run on Warp above and in test_warp_parity; these three share the runner but not the update
    cfg = load_config("hopper", [*SMALL, f"train.runs_dir={tmp_path}", "train.total_steps=128", f"algo.name={algo}"])
    assert cfg.task.backend == "gpu" and cfg.algo.name == algo
    summary = Trainer(cfg, new_run_dir(cfg)).run()
    assert summary["finished"] and summary["env_steps"] == 128
    run = only_run(tmp_path)
    ckpt = load_checkpoint(run / "checkpoints" / "latest.pt")
    assert str(ckpt["env"]["sim"]["qpos"].dtype).endswith("float32")  # Warp stepped it
    rows = list(csv.DictReader((run / "progress.csv").open()))
    assert [r["update_rejected"] for r in rows] == ["0", "0"]
    for row in rows:
        assert 0.0 < float(row["kl"]) < 1.0 and math.isfinite(float(row["value_loss"])), row
    if algo == "npg":  # the full natural step every time, its KL near the quadratic model's max_kl
        assert all(float(r["line_search_fraction"]) == 1.0 for r in rows)
        assert all(float(r["kl"]) == pytest.approx(cfg.algo.max_kl, rel=0.5) for r in rows)


def test_the_gpu_backend_is_checked_at_config_load(tmp_path):
    with pytest.raises(ConfigError, match=r"task.backend: gpu runs the native tasks only .*use task.backend: gym"):
        load_config("hopper", ["task.backend=gpu", "task.id=CartPole-v1"])
    cfg = load_config("hopper", ["task.backend=auto"])
    assert resolve_backend(cfg.task) == ("gpu" if torch.cuda.is_available() else "cpu")
    assert resolve_backend(load_config("hopper", ["task.backend=auto", "task.id=CartPole-v1"]).task) == "gym"


def test_the_gpu_settings_train_on_warps_cpu_device_and_the_run_serves_a_machine_without_mujoco_warp(
    tmp_path, monkeypatch
):
    """hopper's gpu settings as shipped (PPO, KL-adaptive, 512-256-128 ELU), shrunk in size only: 8 worlds x 8
    steps with 4 minibatches a rollout (shipped: 4096 x 24, 4 minibatches), 2 iterations, on Warp's CPU device.
    The run then evaluates, renders and exports where the gpu backend cannot run: on mujoco.batch."""
    import csv

    import envs.placement
    from app.evaluate import evaluate_run
    from app.export import export_run
    from app.video import render_run

    shrink = ["task.num_envs=8", "train.steps_per_env=8", "algo.minibatch_size=16", "train.total_steps=128"]
    quiet = ["train.eval_episodes=1", "train.progress=none", f"train.runs_dir={tmp_path}"]
    cfg = load_config("hopper", ["task.backend=gpu", *shrink, *quiet])
    assert (cfg.algo.name, cfg.algo.lr_schedule, cfg.policy.hidden_sizes) == ("ppo", "kl_adaptive", (512, 256, 128))
    trainer = Trainer(cfg, new_run_dir(cfg))
    assert trainer.env.sim.device == trainer.device == torch.device("cpu")  # one device: Warp's CPU device
    assert type(trainer.env.sim).__name__ == "WarpSim"
    summary = trainer.run()
    assert summary["finished"] and summary["env_steps"] == 128 and summary["iterations"] == 2
    run = Path(summary["run_dir"])
    with (run / "progress.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["unstable_reset_rate"]) for r in rows] == [0.0, 0.0]
    assert summary["startup_time"] > 0 and "backend gpu" in summary["placement"]

    monkeypatch.setattr(envs.placement, "gpu_backend_missing", lambda: "mujoco-warp")  # a CPU-only laptop
    _, result = evaluate_run(run, episodes=2)
    assert result["episodes"] == 2 and all(length >= 1 for length in result["lengths"])
    export = export_run(run, eval_episodes=1)
    assert (export.folder / "policy.onnx").is_file()
    ((video, episode),) = render_run(run, episodes=1, width=64, height=48)
    assert video.is_file() and episode.length >= 1
