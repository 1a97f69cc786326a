"""The driving task end to end: TRPO learns to lap held-out tracks, and the policy exports and deploys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.config import load_config
from app.evaluate import evaluate_run
from app.export import export_run
from app.runner import Trainer, new_run_dir

pytestmark = pytest.mark.slow  # make test-fast skips it

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def driving_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """configs/driving.yaml as a user runs it (seed 0, all of its 49 iterations, 200k steps: about 90 s on 2 cores).

    Evaluated at the end only: the periodic evaluations (eval_every: 10, 20 episodes each, about 7 s apiece)
    do not change learning; with them the run ends with bit-identical policy and value weights.
    """
    root = tmp_path_factory.mktemp("driving")
    cfg = load_config("driving", [f"train.runs_dir={root}", "train.progress=none", "train.eval_every=0"])
    assert cfg.train.total_steps == 200_000 and cfg.task.num_envs * cfg.train.steps_per_env == 4096
    summary = Trainer(cfg, new_run_dir(cfg)).run()
    assert summary["finished"] and summary["iterations"] == 49
    return Path(summary["run_dir"])


def test_trpo_laps_held_out_tracks_without_collisions(driving_run):
    _, result = evaluate_run(driving_run, episodes=20)
    assert result["episodes"] == 20
    # the README's 99% laps on held-out tracks at 200k steps: at most one of these 20 misses (seed 0 here: none)
    assert result["lap_completed"] >= 0.95, result
    # at most one of the 20 held-out episodes ends in a wall (seed 0 here: none, collisions_per_km 0.0)
    assert result["collision"] <= 0.05 and result["collisions_per_km"] <= 1.0 / (result["distance"] * 20 / 1000)
    # the drive holds target_speed: a lap of distance / laps metres takes that over 2 m/s (30.4 m in 15.0 s here)
    lap_length = result["distance"] / result["laps"]
    assert result["lap_time"] == pytest.approx(lap_length / 2.0, rel=0.1), result


def test_the_driving_policy_exports_and_drives_under_mujoco_ray_casts_without_torch(driving_run):
    exported = export_run(driving_run)
    assert all(d <= 1e-5 for diffs in exported.report.values() for d in diffs.values())
    meta = json.loads((exported.folder / "policy.json").read_text())
    lidar = meta["observation"]["driving"]["lidar"]
    assert lidar["rays"] == 32 and len(lidar["angles_rad"]) == 32
    assert np.isclose(lidar["angles_rad"][0], -np.radians(135)) and np.isclose(lidar["angles_rad"][-1], np.radians(135))
    assert meta["observation"]["names"][0].startswith("lidar[0]") and meta["action"]["names"] == ["steering_angle"]
    assert meta["deployment"]["controller"] == "envs.driving.deploy:DrivingController"
    cmd = [sys.executable, "-m", "app", "deploy-sim", str(driving_run), "--episodes", "3"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads((exported.folder / "deploy_sim.json").read_text())
    assert result["imported_forbidden"] == [] and "MuJoCo ray casts as the lidar" in out.stdout
    # the observations are measured against the task's lidar every step, and the episodes are the task's
    assert result["verdict"] == "agree" and result["obs_gap"] <= result["obs_tolerance"] == 1e-9
    assert result["lap_completed"] >= 2 / 3


def test_a_driving_video_follows_the_car_and_draws_the_lidar(driving_run):
    import envs
    from app.checkpoint import load_run_checkpoint
    from app.evaluate import load_policy
    from app.video import render_episode

    path, ckpt, cfg, _ = load_run_checkpoint(driving_run, "latest")
    env = envs.make_single(cfg.task, evaluation=True)
    policy = load_policy(ckpt, cfg, env, path)
    episode = render_episode(policy, env, seed=3, width=160, height=120, max_steps=2, overlay=False)
    frame = episode.frames[-1]
    green = (frame[..., 1] > 200) & (frame[..., 0] < 100) & (frame[..., 2] < 150)
    assert len(episode.frames) == 3 and green.sum() > 50  # the rays
