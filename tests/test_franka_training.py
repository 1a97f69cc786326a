"""The Franka reach task end to end: the shipped PPO config learns it, and the policy exports and deploys."""

from __future__ import annotations

import csv
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
def reach_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """configs/franka_reach.yaml as a user runs it (seed 0, all of its 1M steps: about 90 s on 2 cores)."""
    root = tmp_path_factory.mktemp("franka")
    cfg = load_config("franka_reach", [f"train.runs_dir={root}", "train.progress=none"])
    summary = Trainer(cfg, new_run_dir(cfg)).run()
    assert summary["finished"]
    return Path(summary["run_dir"])


def test_ppo_reaches_held_out_targets_within_2_cm(reach_run):
    _, result = evaluate_run(reach_run, episodes=50)
    assert result["success"] >= 0.9, result
    assert result["final_distance"] < 0.02


def test_progress_shows_each_reward_term_and_the_success_rate(reach_run):
    with (reach_run / "progress.csv").open() as f:
        rows = list(csv.DictReader(f))
    for term in ("distance", "progress", "success", "action_rate", "joint_limit"):
        assert f"reward_{term}" in rows[0]
    rates = [float(r["train_success"]) for r in rows if r["train_success"] not in ("", "nan")]
    assert rates and rates[-1] > rates[0]
    assert any(r["eval_success"] not in ("", "nan") for r in rows)


def test_the_reach_policy_exports_with_the_controllers_facts_and_deploys_without_torch(reach_run):
    exported = export_run(reach_run)
    assert all(d <= 1e-5 for diffs in exported.report.values() for d in diffs.values())
    meta = json.loads((exported.folder / "policy.json").read_text())
    franka = meta["observation"]["franka"]
    assert franka["joint_names"][0] == "robot:panda0_joint1" and len(franka["home_rad"]) == 7
    assert franka["pd"]["kp_nm_per_rad"][0] == 870.0 and franka["pd"]["torque_limit_nm"][6] == 12.0
    assert np.isclose(franka["control_period_s"], 0.02) and np.isclose(meta["control_period_s"], 0.02)
    assert meta["action"]["names"][0] == "joint1_target_delta" and meta["evaluation"]["success"] >= 0.9
    assert len(meta["observation"]["names"]) == meta["observation"]["size"]
    cmd = [sys.executable, "-m", "app", "deploy-sim", str(reach_run), "--episodes", "20"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads((exported.folder / "deploy_sim.json").read_text())
    assert result["imported_forbidden"] == [] and result["verdict"] == "agree" and result["success"] >= 0.9


def test_a_reach_video_shows_the_arm_and_its_target_from_the_front_camera(reach_run):
    import envs
    from app.checkpoint import load_run_checkpoint
    from app.evaluate import load_policy
    from app.video import render_episode

    path, ckpt, cfg, _ = load_run_checkpoint(reach_run, "latest")
    env = envs.make_single(cfg.task, evaluation=True)
    policy = load_policy(ckpt, cfg, env, path)
    episode = render_episode(policy, env, seed=3, width=160, height=120, max_steps=2, overlay=False)
    frame = episode.frames[-1].astype(int)
    green = (frame[..., 1] > frame[..., 0] + 40) & (frame[..., 1] > frame[..., 2] + 40)
    assert len(episode.frames) == 3 and green.sum() > 5  # the target marker
