"""The Makefile's argument plumbing: what `make -n <target> key=value ...` would run, parsed by the CLI's own parser.

`make -n` prints the commands without running them (the setup recipe included, which is skipped here), so
this costs a make process per case and never trains or installs anything.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from app.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make")


def app_argv(*args: str) -> list[str]:
    """The argument vector `make -n ARGS` passes to `python -m app` (exactly one such command)."""
    out = subprocess.run(["make", "-n", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout
    joined = out.replace("\\\n", " ")  # recipes continued over several lines
    commands = [shlex.split(line) for line in joined.splitlines() if " -m app " in line]
    assert len(commands) == 1, out
    (command,) = commands
    return command[command.index("app") + 1 :]


def test_make_train_passes_task_algo_and_every_other_key_as_an_override():
    argv = app_argv("train", "task=hopper", "algo=ppo", "algo.max_kl=0.02", "train.seed=3")
    assert argv[:5] == ["train", "--task", "hopper", "--algo", "ppo"]
    assert sorted(argv[5:]) == ["algo.max_kl=0.02", "train.seed=3"]
    args = build_parser().parse_args(argv)
    assert (args.command, args.task, args.algo, args.resume) == ("train", "hopper", "ppo", None)
    assert sorted(args.overrides) == ["algo.max_kl=0.02", "train.seed=3"]


def test_make_train_defaults_to_humanoid_with_its_own_algorithm():
    args = build_parser().parse_args(app_argv("train"))
    assert (args.task, args.algo, args.overrides) == ("humanoid", None, [])


def test_make_train_resume_continues_a_run_with_overrides():
    argv = app_argv("train", "resume=runs/hopper/x", "train.total_steps=2000000")
    assert argv == ["train", "--resume", "runs/hopper/x", "train.total_steps=2000000"]
    args = build_parser().parse_args(argv)
    assert (args.resume, args.task, args.overrides) == ("runs/hopper/x", None, ["train.total_steps=2000000"])


def test_make_eval_passes_episodes_and_checkpoint_with_their_defaults():
    args = build_parser().parse_args(app_argv("eval", "run=runs/a"))
    assert (args.command, args.run, args.episodes, args.checkpoint) == ("evaluate", "runs/a", 10, "latest")
    args = build_parser().parse_args(app_argv("eval", "run=runs/a", "episodes=4", "checkpoint=best"))
    assert (args.episodes, args.checkpoint) == (4, "best")


def test_make_render_passes_size_camera_and_overlay():
    args = build_parser().parse_args(app_argv("render", "run=runs/a"))
    assert (args.command, args.run, args.episodes, args.width, args.height) == ("render", "runs/a", 3, 640, 480)
    assert (args.camera, args.no_overlay, args.checkpoint) == (None, False, "latest")
    argv = app_argv("render", "run=runs/a", "episodes=2", "width=320", "height=240", "camera=track", "overlay=0")
    args = build_parser().parse_args(argv)
    assert (args.episodes, args.width, args.height, args.camera, args.no_overlay) == (2, 320, 240, "track", True)
    assert build_parser().parse_args(app_argv("render", "run=runs/a", "overlay=1")).no_overlay is False


def test_make_export_passes_the_run_and_checkpoint():
    args = build_parser().parse_args(app_argv("export", "run=runs/a", "checkpoint=best"))
    assert (args.command, args.run, args.checkpoint) == ("export", "runs/a", "best")


def test_make_deploy_sim_passes_episodes_latency_and_noise():
    args = build_parser().parse_args(app_argv("deploy-sim", "run=runs/a"))
    assert (args.command, args.run, args.episodes, args.latency, args.obs_noise) == ("deploy-sim", "runs/a", 10, 0, 0)
    args = build_parser().parse_args(app_argv("deploy-sim", "run=runs/a", "episodes=3", "latency=2", "noise=0.01"))
    assert (args.episodes, args.latency, args.obs_noise) == (3, 2, 0.01)


def test_make_test_runs_the_suite_on_two_xdist_workers_by_file_and_workers_changes_them():
    def pytest_argv(*args: str) -> list[str]:
        out = subprocess.run(["make", "-n", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout
        (command,) = [shlex.split(line) for line in out.splitlines() if " -m pytest " in line]
        return command[command.index("pytest") + 1 :]

    by_file = ["--dist", "loadfile", "--no-loadscope-reorder"]
    assert pytest_argv("test") == ["-q", "-n", "2", *by_file]
    assert pytest_argv("test-fast", "workers=0") == ["-q", "-m", "not slow", "-n", "0", *by_file]
