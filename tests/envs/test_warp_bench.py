"""bench/gpu.py runs end to end (--smoke: Warp's CPU device, tiny sizes) with only what the GPU machine has.

That machine has no package index: besides torch, numpy, scipy, tensorboard,
onnxruntime, matplotlib, pyyaml and tqdm it gets mujoco, mujoco-warp,
warp-lang and gymnasium as wheels. The benchmark (and the training runs it
starts in other processes) must therefore never import dm_control, imageio,
onnx or pillow: a sitecustomize on PYTHONPATH makes those imports fail here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ABSENT_ON_THE_GPU_MACHINE = ("dm_control", "imageio", "imageio_ffmpeg", "onnx", "PIL", "stable_baselines3")

BLOCKER = f"""
import importlib.abc, importlib.machinery, sys

class _Absent(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    # A spec is found (probes such as torch's find_spec go on), but importing fails as if not installed.
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {ABSENT_ON_THE_GPU_MACHINE!r}:
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        raise ImportError(f"{{spec.name}} is not installed on the GPU machine")

    def exec_module(self, module):
        pass

sys.meta_path.insert(0, _Absent())
"""


def test_the_gpu_benchmark_smoke_run_writes_its_report_without_optional_packages(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "gpu.md"
    cmd = [sys.executable, "bench/gpu.py", "--smoke", "--out", str(out), "--algos", "ppo,trpo"]
    cmd += ["--learn-tasks", "humanoid", "--learn-cap", "4"]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    report = out.read_text()
    assert "Smoke run on Warp's CPU device" in report and "| mujoco-warp | 3.17.0 |" in report
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    assert any(r.startswith("| 8 |") and "failed" not in r for r in rows)  # physics at 8 worlds
    for what in ("env only", "training loop, ppo", "training loop, trpo"):
        (row,) = [r for r in rows if r.startswith(f"| {what}")]
        assert float(row.split("|")[2].replace(",", "")) > 0, row
    learning = [r for r in rows if r.startswith("| humanoid |")]
    assert len(learning) == 2 and all("not reached" in r and "(" not in r for r in learning), learning
