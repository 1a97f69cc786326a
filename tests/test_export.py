"""Export: ONNX, TorchScript and C reproduce the PyTorch policy; policy.json is complete; errors are clear."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from app.checkpoint import load_checkpoint, save_checkpoint
from app.cli import main
from app.errors import CheckpointError, PolicylabError
from app.export import ExportError, export_run, verify
from app.export.bundle import _write
from app.export.weights import control_law
from policies.gaussian import GaussianPolicy

ROOT = Path(__file__).resolve().parent.parent
FILES = {"policy.onnx", "policy.pt", "policy.json", "policy.h", "policy.c", "policy_main.c", "verification.txt"}


def random_policy(activation: str, normalize: bool = True, obs_dim: int = 6, act_dim: int = 3) -> GaussianPolicy:
    """A randomly initialized policy with a non-trivial normalizer and one unbounded action."""
    torch.manual_seed(0)
    low, high = np.array([-0.4, -2.0, -np.inf]), np.array([0.4, 1.0, np.inf])
    policy = GaussianPolicy(obs_dim, act_dim, low, high, (16, 8), activation, ortho_init=False, normalize_obs=normalize)
    policy.normalizer.update(torch.randn(500, obs_dim, dtype=torch.float64) * 5.0 + 3.0)
    with torch.no_grad():
        policy.mean_net[-1].weight.mul_(20.0)  # push some means past the [-1, 1] action clip
    return policy.eval()


@pytest.mark.parametrize(
    ("activation", "normalize"), [("tanh", True), ("relu", True), ("elu", True), ("silu", True), ("tanh", False)]
)
def test_onnx_torchscript_and_c_agree_with_pytorch(tmp_path, activation, normalize):
    policy = random_policy(activation, normalize)
    law = control_law(policy, activation)
    meta = {"task": "synthetic", "note": "test"}
    _write(tmp_path, law, policy, meta)
    exe = verify.compile_c(tmp_path, tmp_path)
    others = {
        "onnxruntime": verify.onnx_implementation(tmp_path / "policy.onnx"),
        "torchscript": verify.torchscript_implementation(tmp_path / "policy.pt"),
        "c": verify.c_implementation(exe),
    }
    obs = verify.random_observations(policy, 1000, seed=1)
    report = verify.compare(verify.torch_implementation(policy), others, {"random": obs})
    assert all(d["random"] <= verify.TOLERANCE for d in report.values()), report
    # The clip of bounded actions and the pass-through of the unbounded one are both exercised.
    actions = verify.torch_implementation(policy)(obs)
    assert np.isclose(np.abs(actions[:, 0]), 0.4).any() and (np.abs(actions[:, 2]) > 1.0).any()


def test_c_example_program_reads_stdin_and_prints_actions(tmp_path):
    policy = random_policy("tanh")
    _write(tmp_path, control_law(policy, "tanh"), policy, {"task": "synthetic"})
    exe = tmp_path / "demo"
    cmd = ["cc", "-std=c99", "-Wall", "-Werror", "-o", str(exe), "policy.c", "policy_main.c", "-lm"]
    subprocess.run(cmd, cwd=tmp_path, check=True)
    out = subprocess.run([str(exe)], input="1 2 3 4 5 6\n0 0 0 0 0 0\n", capture_output=True, text=True, check=True)
    rows = [list(map(float, line.split())) for line in out.stdout.splitlines()]
    expected = policy.act(torch.tensor([[1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0]], dtype=torch.float32)).detach().numpy()
    assert np.allclose(rows, expected, atol=1e-5)


def test_export_of_a_run_writes_verified_files_and_complete_metadata(trained_run, capsys):
    assert main(["export", str(trained_run)]) == 0
    printed = capsys.readouterr().out
    assert "onnxruntime" in printed and "FAILED" not in printed
    folder = trained_run / "export"
    assert {p.name for p in folder.iterdir()} >= FILES
    report = json.loads((folder / "verification.json").read_text())
    assert set(report["max_abs_diff"]) == {"onnxruntime", "torchscript", "c"}
    assert all(v <= 1e-5 for d in report["max_abs_diff"].values() for v in d.values())

    meta = json.loads((folder / "policy.json").read_text())
    obs_dim, act_dim = 4, 1
    assert meta["observation"]["names"] == ["slider", "hinge", "slider.vel", "hinge.vel"]
    assert meta["observation"]["units"] == ["m", "rad", "m/s", "rad/s"]
    assert sum(len(seg["index"]) for seg in meta["observation"]["layout"]) == obs_dim
    assert meta["action"]["names"] == ["slide"] and meta["action"]["low"] == [-3.0] and meta["action"]["high"] == [3.0]
    assert len(meta["normalizer"]["mean"]) == len(meta["normalizer"]["std"]) == obs_dim
    assert meta["network"]["hidden_sizes"] == [16] and len(meta["action"]["half_range"]) == act_dim
    assert meta["control_period_s"] == pytest.approx(0.04)
    assert meta["env_steps"] == 192 and meta["task"] == "inverted_pendulum"
    assert meta["training_config"]["algo"]["name"] == "trpo"
    assert meta["code_revision"] and np.isfinite(meta["evaluation"]["mean_return"])
    assert meta["deployment"]["controller"] == "envs.gym_deploy:GymController"  # deploy-sim's controller

    model = onnx.load(str(folder / "policy.onnx"))
    assert model.opset_import[0].version >= 17
    props = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert props["observation"]["names"] == meta["observation"]["names"]
    assert props["action"] == meta["action"] and props["control_period_s"] == meta["control_period_s"]
    assert [i.name for i in model.graph.input] == ["obs"] and [o.name for o in model.graph.output] == ["action"]


def test_export_keeps_every_statistic_of_the_checkpoints_evaluation(trained_run):
    # a task's own statistics (a success rate, a distance) travel to policy.json whatever their names
    assert main(["evaluate", str(trained_run), "--episodes", "2"]) == 0
    saved = json.loads((trained_run / "eval.json").read_text())
    saved["grasp_rate"] = 0.25
    (trained_run / "eval.json").write_text(json.dumps(saved))
    assert main(["export", str(trained_run)]) == 0
    evaluation = json.loads((trained_run / "export" / "policy.json").read_text())["evaluation"]
    assert evaluation["source"] == "eval.json" and evaluation["grasp_rate"] == 0.25
    assert evaluation["mean_return"] == saved["mean_return"] and evaluation["episodes"] == 2
    assert "returns" not in evaluation and "checkpoint" not in evaluation


def test_export_errors_are_clear(tmp_path, trained_run, capsys):
    assert main(["export", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("error: run directory not found")
    empty = tmp_path / "empty_run"
    (empty / "checkpoints").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="no checkpoint latest.pt"):
        export_run(empty)
    path = trained_run / "checkpoints" / "latest.pt"
    ckpt = load_checkpoint(path)
    ckpt["config"]["task"]["id"] = "RetiredRobot-v1"
    save_checkpoint({k: v for k, v in ckpt.items() if k not in ("format", "version")}, path)
    with pytest.raises(CheckpointError, match="unknown Gymnasium id 'RetiredRobot-v1'"):
        export_run(trained_run)


def test_failed_verification_keeps_the_previous_export(trained_run, monkeypatch):
    export_run(trained_run)
    folder = trained_run / "export"
    (folder / "marker").write_text("previous export")
    monkeypatch.setattr(verify, "TOLERANCE", -1.0)  # no implementation can pass now
    with pytest.raises(ExportError, match="export/ left as it was"):
        export_run(trained_run)
    assert (folder / "marker").read_text() == "previous export"
    assert not [p for p in trained_run.iterdir() if p.name.startswith(".export")]
    monkeypatch.undo()
    export_run(trained_run)  # a good export replaces the old folder as a whole
    assert not (folder / "marker").exists() and {p.name for p in folder.iterdir()} >= FILES


def test_deploy_sim_agrees_without_torch_and_catches_a_wrong_observation_order(trained_run):
    export_run(trained_run)
    folder = trained_run / "export"
    cmd = [sys.executable, "-m", "app", "deploy-sim", str(trained_run), "--episodes", "4"]
    good = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "verdict: agree" in good.stdout
    result = json.loads((folder / "deploy_sim.json").read_text())
    assert result["imported_forbidden"] == [] and result["obs_gap"] == 0.0

    meta = json.loads((folder / "policy.json").read_text())
    meta["observation"]["layout"].reverse()  # qvel before qpos: what a robot integrator might get wrong
    (folder / "policy.json").write_text(json.dumps(meta))
    bad = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and "verdict: MISMATCH" in bad.stdout

    noisy = subprocess.run([*cmd, "--latency", "2", "--obs-noise", "0.01"], cwd=ROOT, capture_output=True, text=True)
    assert noisy.returncode == 0 and "n/a (latency or noise on)" in noisy.stdout


def test_deploy_sim_without_export_is_a_clear_error(trained_run, capsys):
    shutil.rmtree(trained_run / "export", ignore_errors=True)
    assert main(["deploy-sim", str(trained_run)]) == 2
    assert "no export in" in capsys.readouterr().err


def test_export_needs_a_c_compiler(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", "no-such-cc")
    with pytest.raises(PolicylabError, match="no C compiler 'no-such-cc'"):
        verify.compile_c(tmp_path, tmp_path)
