"""envs is the bottom layer: it imports nothing of app, and importing it only registers the tasks."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import gymnasium
import pytest

import app.config
import app.errors
import envs
import envs.errors
from envs.catalog import NATIVE_TASK_IDS, NATIVE_TASK_TABLE, OWN_TASK_IDS
from envs.config import RandomizationConfig, TaskConfig
from envs.native import NATIVE_TASKS
from envs.native.task import NativeTask
from envs.registration import registered_id


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


def test_each_native_task_is_declared_once_in_the_catalog():
    """Its row gives the class its episode length (a Gymnasium original's own) and config section."""
    for task_id, entry in NATIVE_TASK_TABLE.items():
        cls = NATIVE_TASKS[task_id]
        assert (cls.max_episode_steps, cls.options_key) == (entry.episode_length, entry.options_key)
        if not entry.own:
            assert cls.max_episode_steps == gymnasium.spec(task_id).max_episode_steps
        if entry.options_key is not None:  # a section of the task config
            assert dataclasses.is_dataclass(getattr(TaskConfig(), entry.options_key)), task_id
    assert tuple(k for k in NATIVE_TASK_IDS if k.startswith("policylab/")) == OWN_TASK_IDS


def test_a_task_class_cannot_restate_its_row_nor_go_without_one():
    with pytest.raises(TypeError, match=r"Hopper2\.max_episode_steps: declared in envs.catalog"):
        type("Hopper2", (NativeTask,), {"gym_id": "Hopper-v5", "max_episode_steps": 1000})
    with pytest.raises(TypeError, match=r"Base\.options_key: declared in envs.catalog"):
        base = type("Base", (NativeTask,), {"options_key": "driving"})
        type("Reach", (base,), {"gym_id": "policylab/FrankaReach-v0"})
    with pytest.raises(TypeError, match="native task 'Nowhere-v0' has no row in envs.catalog"):
        type("Nowhere", (NativeTask,), {"gym_id": "Nowhere-v0"})
