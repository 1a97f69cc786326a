"""envs is the bottom layer: it imports nothing of app, and importing it only registers the tasks."""

from __future__ import annotations

import subprocess
import sys

import gymnasium

import app.config
import app.errors
import envs
import envs.errors
from envs.config import RandomizationConfig, TaskConfig
from envs.native import NATIVE_TASKS
from envs.registration import NATIVE_TASK_IDS, registered_id


def imported_after(statement: str) -> set[str]:
    """Top-level module names in sys.modules after running ``statement`` in a fresh interpreter."""
    code = f"import sys\n{statement}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_envs_imports_neither_app_nor_torch_nor_mujoco():
    loaded = imported_after("import envs")
    assert not loaded & {"app", "policies", "torch", "mujoco"}, loaded & {"app", "policies", "torch", "mujoco"}


def test_the_deployment_controllers_import_neither_torch_nor_app():
    """deploy-sim runs them in a process that must never import torch, app or policies."""
    loaded = imported_after("import envs.deploy, envs.driving.deploy, envs.gym_deploy")
    assert not loaded & {"app", "policies", "torch"}, loaded & {"app", "policies", "torch"}


def test_import_envs_registers_the_native_tasks():
    code = "import envs, gymnasium; print(gymnasium.spec('policylab/Hopper-v0').max_episode_steps)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1000"


def test_the_config_loads_without_mujoco():
    """The rendering backend (MUJOCO_GL) is chosen after the config loads and before MuJoCo is imported."""
    assert "mujoco" not in imported_after("from app.config import load_config; load_config('hopper')")


def test_app_composes_the_config_types_and_errors_of_envs():
    assert app.config.TaskConfig is TaskConfig and app.config.RandomizationConfig is RandomizationConfig
    assert isinstance(app.config.Config().task, TaskConfig)
    assert app.errors.TaskError is envs.errors.TaskError is envs.TaskError
    assert app.errors.PolicylabError is envs.errors.PolicylabError
    assert issubclass(app.errors.TaskError, app.errors.PolicylabError)


def test_the_registration_table_names_every_native_task_with_its_episode_length():
    assert tuple(NATIVE_TASKS) == NATIVE_TASK_IDS
    for task_id, cls in NATIVE_TASKS.items():
        assert cls.gym_id == task_id
        assert gymnasium.spec(registered_id(task_id)).max_episode_steps == cls.max_episode_steps
