"""One decision of where a run lives (envs/placement.py), and the settings each backend picks from a task file.

CUDA and mujoco-warp are monkeypatched in and out: the rules are checked on this CPU-only machine for
machines with a GPU, without one, and without mujoco-warp.
"""

from __future__ import annotations

import pytest
import torch

import envs.placement as placement
from app.cli import main
from app.config import ALGORITHMS, ConfigError, available_tasks, load_config
from envs.placement import DeviceError, Placement, resolve_placement


@pytest.fixture
def machine(monkeypatch):
    """Set what this machine has: ``machine(cuda=2, warp=True)`` (CUDA devices, mujoco-warp installed)."""

    def have(cuda: int = 0, warp: bool = True) -> None:
        monkeypatch.setattr(placement, "cuda_available", lambda: cuda > 0)
        monkeypatch.setattr(placement, "gpu_backend_missing", lambda: "" if warp else "mujoco-warp")
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")

    return have


@pytest.mark.parametrize(
    ("cuda", "warp", "backend", "device", "expected"),
    [
        # backend auto: gpu only with CUDA, mujoco-warp and a device that is not the CPU
        (1, True, "auto", "auto", ("gpu", "cuda:0")),
        (0, True, "auto", "auto", ("cpu", "cpu")),
        (1, False, "auto", "auto", ("cpu", "cpu")),
        (1, True, "auto", "cpu", ("cpu", "cpu")),
        (2, True, "auto", "cuda:1", ("gpu", "cuda:1")),
        # device auto follows the backend: no silent networks-on-CUDA beside a CPU simulator
        (1, True, "cpu", "auto", ("cpu", "cpu")),
        (1, True, "gym", "auto", ("gym", "cpu")),
        # the gpu backend lives on train.device: CUDA, or Warp's CPU device
        (1, True, "gpu", "auto", ("gpu", "cuda:0")),
        (0, True, "gpu", "auto", ("gpu", "cpu")),
        (1, True, "gpu", "cpu", ("gpu", "cpu")),
        # an explicit CUDA device for the cpu backend: the networks go there, the simulation stays on the CPU
        (1, True, "cpu", "cuda", ("cpu", "cuda:0")),
    ],
)
def test_the_placement_rules(machine, cuda, warp, backend, device, expected):
    machine(cuda=cuda, warp=warp)
    where = resolve_placement(backend, native=True, device=device)
    assert (where.backend, str(where.device)) == expected


def test_a_task_that_is_not_native_runs_on_gym_whatever_the_machine(machine):
    machine(cuda=1)
    assert resolve_placement("auto", native=False).backend == "gym"


def test_the_start_line_says_backend_device_worlds_and_why(machine):
    machine(cuda=1, warp=False)
    line = resolve_placement("auto", native=True).describe(16)
    assert line.startswith("backend cpu: 16 worlds on mujoco.batch (CPU), networks on CPU")
    assert "mujoco-warp is not installed" in line
    machine(cuda=1)
    line = resolve_placement("auto", native=True).describe(4096)
    assert "4,096 worlds on MuJoCo Warp (cuda:0 (NVIDIA H200)), networks on cuda:0 (NVIDIA H200)" in line
    assert "cross the bus" in resolve_placement("cpu", native=True, device="cuda").describe(16)
    machine(cuda=0)
    assert "Warp's CPU device" in resolve_placement("gpu", native=True).describe(4)


@pytest.mark.parametrize(
    ("cuda", "device", "message"),
    [
        (0, "cuda", r"train.device: cuda was requested but torch sees no CUDA device; valid here: auto, cpu"),
        (2, "cuda:2", r"train.device: cuda:2 does not exist; this machine has 2 CUDA device\(s\): cuda:0, cuda:1"),
        (1, "tpu", r"train.device: unknown device 'tpu'; valid: auto, cpu, cuda, cuda:N"),
    ],
)
def test_a_device_this_machine_lacks_is_one_line(machine, cuda, device, message):
    machine(cuda=cuda)
    with pytest.raises(DeviceError, match=message):
        resolve_placement("auto", native=True, device=device)


def test_the_config_says_which_device_it_cannot_have(machine):
    machine(cuda=0)
    with pytest.raises(ConfigError, match=r"^command line: train.device: cuda was requested but torch sees no CUDA"):
        load_config("hopper", ["train.device=cuda"])
    with pytest.raises(ConfigError, match=r"train.device: unknown device 'gpu0'; valid: auto, cpu, cuda, cuda:N"):
        load_config("hopper", ["train.device=gpu0"])


def test_the_device_reaches_the_simulator(monkeypatch, machine):
    """make() builds the gpu simulator on the placement's device (a CUDA one this machine only pretends to have)."""
    import envs.native

    seen = {}

    def fake_simulator(backend, task_cls, num_worlds, **kwargs):
        seen.update(backend=backend, device=kwargs["device"])
        raise RuntimeError("built")

    monkeypatch.setattr(envs.native, "make_simulator", fake_simulator)
    task = load_config("hopper", ["task.backend=gpu"]).task
    with pytest.raises(RuntimeError, match="built"):
        envs.make(task, where=Placement("gpu", torch.device("cuda", 1), "test"))
    assert seen == {"backend": "gpu", "device": "cuda:1"}
    with pytest.raises(RuntimeError, match="built"):
        envs.make(task, where=Placement("gpu", torch.device("cpu"), "test"))
    assert seen["device"] == "cpu"


# ---------------------------------------------------------------------------
# settings per backend


def test_a_gpu_machine_gets_the_task_files_gpu_settings(machine):
    machine(cuda=1)
    cfg = load_config("humanoid")
    assert cfg.task.backend == "gpu"  # the resolved backend is recorded (config.yaml, `python -m app config`)
    assert (cfg.algo.name, cfg.algo.lr_schedule, cfg.algo.minibatch_size) == ("ppo", "kl_adaptive", 24576)
    assert (cfg.task.num_envs, cfg.train.steps_per_env, cfg.train.minutes) == (4096, 24, 10.0)
    assert cfg.policy.hidden_sizes == cfg.value.hidden_sizes == (512, 256, 128)
    # a user's override still wins, and train.device cpu picks the cpu backend and its settings
    assert load_config("humanoid", ["task.num_envs=8192"]).task.num_envs == 8192
    on_cpu = load_config("humanoid", ["train.device=cpu"])
    assert (on_cpu.task.backend, on_cpu.algo.name, on_cpu.task.num_envs) == ("cpu", "trpo", 16)


def test_a_machine_without_a_gpu_or_without_mujoco_warp_gets_the_cpu_settings(machine):
    for have in ({"cuda": 0}, {"cuda": 1, "warp": False}):
        machine(**have)
        cfg = load_config("humanoid")
        assert (cfg.task.backend, cfg.algo.name, cfg.task.num_envs, cfg.train.minutes) == ("cpu", "trpo", 16, None)
        assert cfg.algo.cg_iters == 25 and cfg.value.epochs == 20


def test_another_algorithm_takes_its_pair_files_settings_for_the_backend(machine):
    machine(cuda=1)
    trpo = load_config("humanoid", algo="trpo")  # the gpu default is PPO: TRPO's gpu settings are its pair file's
    assert (trpo.algo.name, trpo.algo.max_kl, trpo.algo.fvp_subsample) == ("trpo", 0.02, 0.2)
    assert (trpo.task.num_envs, trpo.train.steps_per_env, trpo.policy.hidden_sizes) == (4096, 32, (64, 64))
    a2c = load_config("hopper", algo="a2c")
    assert (a2c.algo.name, a2c.task.num_envs, a2c.train.steps_per_env) == ("a2c", 1024, 5)
    machine(cuda=0)
    assert load_config("humanoid", algo="trpo").task.num_envs == 16  # on the CPU TRPO is the task's own


@pytest.mark.parametrize("task", available_tasks())
def test_every_shipped_task_resolves_on_both_backends_with_every_algorithm(task):
    for algo in ALGORITHMS:
        cpu = load_config(task, ["task.backend=cpu"], algo=algo)
        gpu = load_config(task, ["task.backend=gpu"], algo=algo)
        assert (cpu.task.backend, gpu.task.backend) == ("cpu", "gpu")
        assert cpu.algo.name == gpu.algo.name == algo
    own = load_config(task, ["task.backend=gpu"])
    assert own.task.num_envs >= 1024, "the gpu settings are made for thousands of worlds"
    assert own.train.minutes is not None, "the gpu settings carry a wall-clock budget"
    assert load_config(task).task.backend == "cpu"  # this machine: no CUDA


def test_python_m_app_config_shows_the_resolved_settings(machine, capsys):
    machine(cuda=1)
    assert main(["config", "humanoid"]) == 0
    out = capsys.readouterr().out
    assert "backend: gpu" in out and "name: ppo" in out and "num_envs: 4096" in out


def write_task(tmp_path, text: str):
    (tmp_path / "mine.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("task: {id: Hopper-v5, backend: cpu}\ngpu: 3\n", r"mine.yaml: gpu: must be a mapping of sections"),
        (
            "task: {id: Hopper-v5, backend: cpu}\ncpu: {task: {backend: gpu}}\n",
            r"mine.yaml: cpu.task.backend: the backend's settings cannot set what picks the backend",
        ),
        (
            "task: {id: Hopper-v5, backend: cpu}\ncpu: {train: {totl_steps: 5}}\n",
            r"mine.yaml \(cpu settings\): unknown key 'train.totl_steps' \(did you mean 'train.total_steps'\?\)",
        ),
    ],
)
def test_malformed_backend_settings_name_the_file_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config("mine", configs_dir=write_task(tmp_path, text))


def test_a_backends_settings_that_switch_algorithm_replace_the_algo_section(tmp_path):
    text = "task: {id: Hopper-v5, backend: gpu}\nalgo: {cg_iters: 30}\ngpu: {algo: {name: ppo, epochs: 3}}\n"
    cfg = load_config("mine", configs_dir=write_task(tmp_path, text))
    assert (cfg.algo.name, cfg.algo.epochs) == ("ppo", 3)  # TRPO's cg_iters did not leak into PPO's section
    text = "task: {id: Hopper-v5, backend: cpu}\nalgo: {cg_iters: 30}\ncpu: {algo: {max_kl: 0.05}}\n"
    cfg = load_config("mine", configs_dir=write_task(tmp_path, text))
    assert (cfg.algo.name, cfg.algo.cg_iters, cfg.algo.max_kl) == ("trpo", 30, 0.05)  # same algorithm: merged


def test_a_backends_settings_can_be_tried_on_the_other_backend(machine, capsys):
    machine(cuda=0)
    cfg = load_config("hopper", ["task.num_envs=256"], settings="gpu")  # the gpu recipe on mujoco.batch
    assert (cfg.task.backend, cfg.algo.name, cfg.task.num_envs, cfg.policy.activation) == ("cpu", "ppo", 256, "elu")
    with pytest.raises(ConfigError, match=r"settings: unknown backend settings 'tpu'; valid: cpu, gpu"):
        load_config("hopper", settings="tpu")
    assert main(["config", "hopper", "--settings", "gpu"]) == 0
    assert "lr_schedule: kl_adaptive" in capsys.readouterr().out
