"""Configuration: typed, strict, one clear line per mistake."""

import shutil

import pytest
import yaml

from app.cli import main
from app.config import CONFIGS_DIR, Config, available_tasks, config_from_dict, config_to_dict, load_config
from app.errors import ConfigError, TaskError

SHIPPED = ["ant", "halfcheetah", "hopper", "humanoid", "inverted_pendulum", "pusher", "reacher", "swimmer", "walker2d"]


TASK_FILES = sorted(CONFIGS_DIR.glob("*.yaml"))
PAIR_FILES = sorted(CONFIGS_DIR.glob("*/*.yaml"))


def test_the_shipped_configs_are_the_ones_the_tests_below_load():
    assert set(SHIPPED) <= set(available_tasks()) == {p.stem for p in TASK_FILES}
    assert len(TASK_FILES) >= 16 and len(PAIR_FILES) >= 15  # configs/<task>.yaml and configs/<algo>/<task>.yaml
    for name in SHIPPED:
        assert load_config(name).task.id.endswith("-v5"), name


@pytest.mark.parametrize("path", TASK_FILES, ids=[p.stem for p in TASK_FILES])
def test_every_task_config_loads_and_round_trips(path):
    cfg = load_config(path.stem)
    assert cfg.task.name == path.stem
    assert config_from_dict(config_to_dict(cfg), "round trip") == cfg


@pytest.mark.parametrize("path", PAIR_FILES, ids=[f"{p.parent.name}/{p.stem}" for p in PAIR_FILES])
def test_every_algorithm_pair_config_loads_round_trips_and_takes_effect(path, tmp_path):
    algo, task = path.parent.name, path.stem
    assert (CONFIGS_DIR / f"{task}.yaml").is_file(), f"{path}: no configs/{task}.yaml to pair with"
    # on each backend's settings (a pair file may hold settings for one backend only: configs/trpo/humanoid.yaml)
    loaded = [load_config(task, [f"task.backend={backend}"], algo=algo) for backend in ("cpu", "gpu")]
    for cfg in loaded:
        assert cfg.algo.name == algo and cfg.task.name == task
        assert config_from_dict(config_to_dict(cfg), "round trip") == cfg
    # the same load without this one pair file (a copy of configs/ less it) is a different configuration
    shutil.copytree(CONFIGS_DIR, tmp_path / "configs")
    (tmp_path / "configs" / algo / f"{task}.yaml").unlink()
    without = [
        load_config(task, [f"task.backend={backend}"], algo=algo, configs_dir=tmp_path / "configs")
        for backend in ("cpu", "gpu")
    ]
    assert without != loaded, f"{path} changes nothing"


def test_overrides_by_dotted_path_with_number_forms():
    cfg = load_config(
        "hopper", ["algo.max_kl=0.02", "train.total_steps=2e6", "train.seed=3", "policy.hidden_sizes=[32,32]"]
    )
    assert cfg.algo.max_kl == 0.02 and cfg.train.total_steps == 2_000_000 and cfg.train.seed == 3
    assert cfg.policy.hidden_sizes == (32, 32)
    assert isinstance(cfg.train.total_steps, int)


def write(tmp_path, text):
    (tmp_path / "mytask.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "task: {id: Hopper-v5}\nalgo: {max_kll: 0.1}\n",
            r"mytask.yaml: unknown key 'algo.max_kll' \(did you mean 'algo.max_kl'\?\); valid keys in algo: .*max_kl",
        ),
        ("task: {id: Hopper-v5}\ntrain: {seed: lots}\n", r"mytask.yaml: train.seed: must be an integer, got 'lots'"),
        ("task: {id: Hopper-v5}\nalgo: {max_kl: -0.1}\n", r"mytask.yaml: algo.max_kl: must be > 0.0, got -0.1"),
        (
            "task: {id: Hopper-v5}\nadvantage: {gae_lambda: 1.5}\n",
            r"mytask.yaml: advantage.gae_lambda: must be in \[0.0, 1.0\], got 1.5",
        ),
        (
            "task: {id: Hopper-v5}\nalgo: {gamma: 0.9}\n",
            r"unknown key 'algo.gamma' \(it is shared by every algorithm now: advantage.gamma\)",
        ),
        (
            "task: {id: Hopper-v5}\npolicy: {activation: sigmoid}\n",
            r"policy.activation: must be one of tanh, relu, elu, silu, got 'sigmoid'",
        ),
        (
            "task: {id: Hopper-v5}\nalgo: {name: sac}\n",
            r"algo.name: unknown algorithm 'sac'; valid: trpo, npg, ppo, a2c, vpg",
        ),
        (
            "task: {id: Hopper-v5}\noptimizer: {}\n",
            r"unknown key 'optimizer'; valid keys in the configuration: task, policy, value, advantage, algo, train",
        ),
        ("task: {id: Hopper-v5}\ntrain: {normalize_obs: true}\n", r"unknown key 'train.normalize_obs'"),
        ("task: {id: Hopper-v5}\ntask: {num_envs: 0}\n", r"task.num_envs: must be >= 1, got 0"),
        ("task: {id: Hopper-v5}\nvalue: {lr: .nan}\n", r"value.lr: must be a number, got nan \(must be finite\)"),
        ("task: {id: Hopper-v5}\npolicy: {hidden_sizes: [64, 0]}\n", r"policy.hidden_sizes\[1\]: must be >= 1, got 0"),
    ],
)
def test_bad_config_files_name_the_file_key_and_valid_values(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config("mytask", configs_dir=write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_bad_overrides_name_the_command_line():
    source = r"command line \(over .*hopper.yaml \(cpu settings\)\)"
    with pytest.raises(ConfigError, match=source + r": algo.max_kl: must be > 0.0, got 0.0"):
        load_config("hopper", ["algo.max_kl=0"])
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        load_config("hopper", ["algo.max_kl"])
    with pytest.raises(ConfigError, match="unknown key 'train.totl_steps'"):
        load_config("hopper", ["train.totl_steps=10"])


def test_malformed_yaml_reports_file_and_line(tmp_path):
    text = "task:\n  id: Hopper-v5\nalgo:\n  max_kl: [0.01\n  gamma: 0.99\n"
    with pytest.raises(ConfigError, match=r"mytask.yaml:\d+: malformed YAML"):
        load_config("mytask", configs_dir=write(tmp_path, text))
    with pytest.raises(ConfigError, match=r"mytask.yaml:2: malformed YAML: mapping values are not allowed here"):
        load_config("mytask", configs_dir=write(tmp_path, "task:\n  id: a: b\n"))


def test_unknown_task_lists_tasks_and_the_closest_match():
    with pytest.raises(TaskError, match=r"unknown task 'hoper'\. Did you mean 'hopper'\? Tasks: ant, .*walker2d"):
        load_config("hoper")


def test_raw_environment_ids_get_default_settings():
    cfg = load_config("dmc:walker-walk")
    assert cfg.task.id == "dmc:walker-walk" and cfg.task.name == "dmc-walker-walk"
    assert cfg.algo == Config().algo


def test_cli_reports_config_errors_in_one_line(capsys):
    assert main(["train", "--task", "hopper", "algo.max_kl=-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: command line") and "algo.max_kl" in err and "\n" not in err
    assert main(["config", "hopper", "algo.max_kl=0.05"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["algo"]["max_kl"] == 0.05
