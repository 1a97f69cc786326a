"""Shared fixtures: fast training settings and a test environment that goes non-finite."""

from __future__ import annotations

import os

# OpenMP threads (torch's, MKL's) that finish their share of work sleep instead of spinning for the next. Spinning
# costs nothing on idle cores, but the suite runs on two pytest workers (make test) whose trainings each use every
# core, and the tests start training subprocesses: a spinning thread then holds a core that another thread needs.
# On 2 cores busy with other work, one learning test took 537 s spinning and 30 s with PASSIVE (the same results:
# the wait policy changes when threads sleep, not what they compute). Set before torch loads OpenMP; subprocesses
# inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


class NaNAfter(gym.Wrapper):
    """InvertedPendulum whose observations become NaN after ``after`` steps of this env."""

    def __init__(self, env: gym.Env, after: int) -> None:
        super().__init__(env)
        self.after, self.count = after, 0

    def step(self, action):
        self.count += 1
        if self.count > self.after:  # the simulator is left alone; only what the agent sees breaks
            return np.full(self.observation_space.shape, np.nan), 0.0, False, False, {}
        return self.env.step(action)


def make_nan_env(after: int = 300, **kwargs) -> gym.Env:
    return NaNAfter(gym.make("InvertedPendulum-v5", **kwargs), after)


if "PolicylabTest/NaNAfter-v0" not in gym.registry:
    gym.register("PolicylabTest/NaNAfter-v0", entry_point=make_nan_env)


def fast_overrides(root: Path) -> list[str]:
    """Overrides for a quick, quiet run whose run directories go under ``root``."""
    return [
        f"train.runs_dir={root / 'runs'}",
        "train.progress=none",
        "task.num_envs=2",
        "train.steps_per_env=32",
        "train.total_steps=192",
        "train.eval_episodes=2",
        "train.eval_every=2",
        "train.checkpoint_every=1",
        "policy.hidden_sizes=[16]",
        "value.hidden_sizes=[16]",
        "value.epochs=2",
    ]


@pytest.fixture
def fast(tmp_path) -> list[str]:
    """Overrides for a quick, quiet run under tmp_path."""
    return fast_overrides(tmp_path)


@pytest.fixture(scope="session")
def trained_run_template(tmp_path_factory) -> Path:
    """A finished short InvertedPendulum run (its normalizer has real statistics), trained once per session.

    Tests never touch it: :func:`trained_run` hands each test its own copy.
    """
    from app.config import load_config
    from app.runner import Trainer, new_run_dir

    cfg = load_config("inverted_pendulum", fast_overrides(tmp_path_factory.mktemp("trained_run")))
    return Path(Trainer(cfg, new_run_dir(cfg)).run()["run_dir"])


@pytest.fixture
def trained_run(tmp_path, trained_run_template) -> Path:
    """A private copy of the session's trained run, under this test's tmp_path (same layout: runs/<task>/<run>)."""
    relative = trained_run_template.relative_to(trained_run_template.parents[2])
    copy = tmp_path / relative
    shutil.copytree(trained_run_template, copy)
    return copy


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On make test's xdist workers: the files with whole training runs (a test marked slow) first.

    The workers take whole files in collection order (--dist loadfile --no-loadscope-reorder), so the runs of a
    minute or two start at once and the many short files even out the end. The order in each file is kept.
    """
    if "PYTEST_XDIST_WORKER" in os.environ:
        heavy = {item.path for item in items if item.get_closest_marker("slow")}
        items.sort(key=lambda item: item.path not in heavy)  # stable
