"""The command line's error paths (one line, exit 2) and its checkpoint and algorithm choices."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.algorithms import ALGORITHMS
from app.algorithms.ppo import PPOConfig
from app.checkpoint import load_checkpoint
from app.cli import main
from app.config import CONFIGS_DIR, load_config
from app.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
VALID = ", ".join(ALGORITHMS)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    return err


def test_train_with_neither_task_nor_resume_exits_2_with_one_line():
    # the real process, as `python -m app train` from a shell
    proc = subprocess.run(
        [sys.executable, "-m", "app", "train"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: train needs a task"), proc.stderr
    assert "resume" in proc.stderr


@pytest.mark.parametrize("command", ["evaluate", "render", "deploy-sim"])
@pytest.mark.parametrize("episodes", ["0", "-3"])
def test_episodes_below_one_exit_2_with_one_line(tmp_path, capsys, command, episodes):
    assert main([command, str(tmp_path), "--episodes", episodes]) == 2
    assert "--episodes must be at least 1" in one_line_error(capsys)


@pytest.mark.parametrize(
    "args",
    [
        ["--algo", "sac"],
        ["algo.name=sac"],
        ["algo.name=[]"],
        ["algo.name={a: 1}"],
        ["algo.name="],
        ["--algo", "ppo", "algo.name=[ppo]"],
    ],
)
def test_unknown_algorithm_is_a_one_line_config_error_naming_the_valid_ones(tmp_path, capsys, args):
    runs = tmp_path / "runs"
    assert main(["train", "--task", "inverted_pendulum", f"train.runs_dir={runs}", *args]) == 2
    err = one_line_error(capsys)
    assert "algo.name: unknown algorithm" in err and f"valid: {VALID}" in err
    assert not runs.exists()
    assert main(["config", "inverted_pendulum", *args]) == 2
    one_line_error(capsys)


def test_overrides_before_and_after_options_all_apply(capsys):
    argv = ["config", "hopper", "train.seed=3", "--algo", "ppo", "algo.lr=0.002", "algo.epochs=4"]
    assert main(argv) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["train"]["seed"] == 3 and cfg["algo"]["name"] == "ppo"
    assert cfg["algo"]["lr"] == 0.002 and cfg["algo"]["epochs"] == 4
    with pytest.raises(SystemExit) as info:  # an unknown option is still argparse's usage error
        main(["config", "hopper", "--algo", "ppo", "algo.lr=0.002", "--bogus"])
    assert info.value.code == 2
    assert "unrecognized arguments: algo.lr=0.002 --bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # commands without overrides take no stray positionals
        main(["evaluate", "runs/x", "--episodes", "2", "extra"])
    capsys.readouterr()


@pytest.mark.parametrize("name", ["[]", "{a: 1}", "sac", ""])
def test_unknown_algorithm_from_load_config(name):
    with pytest.raises(ConfigError, match=rf"algo.name: unknown algorithm .*; valid: {VALID}") as info:
        load_config("hopper", [f"algo.name={name}"])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["../../etc", "a/b", "", "..", "/abs", "a b", "-x"])
def test_task_names_that_are_not_one_plain_folder_name_are_refused(tmp_path, capsys, name):
    runs = tmp_path / "runs"
    assert main(["train", "--task", "inverted_pendulum", f"train.runs_dir={runs}", f"task.name={name}"]) == 2
    err = one_line_error(capsys)
    assert "task.name: must be a plain name" in err
    assert not runs.exists()  # nothing was created, inside or outside runs_dir
    with pytest.raises(ConfigError, match="task.name"):
        load_config("inverted_pendulum", [f"task.name={name}"])


def test_task_names_from_environment_ids_are_plain():
    assert load_config("dmc:walker-walk").task.name == "dmc-walker-walk"
    assert load_config("PolicylabTest/NaNAfter-v0").task.name == "PolicylabTest-NaNAfter-v0"
    assert load_config("hopper", ["task.name=my_hopper-2.v1+x"]).task.name == "my_hopper-2.v1+x"


def test_evaluate_and_export_the_best_checkpoint(trained_run, capsys):
    best = trained_run / "checkpoints" / "best.pt"
    steps = int(load_checkpoint(best)["runner"]["env_steps"])
    assert main(["evaluate", str(trained_run), "--checkpoint", "best", "--episodes", "3"]) == 0
    result = json.loads((trained_run / "eval.json").read_text())
    assert Path(result["checkpoint"]) == best and result["env_steps"] == steps and result["episodes"] == 3
    assert "over 3 episodes" in capsys.readouterr().out

    assert main(["export", str(trained_run), "--checkpoint", "best"]) == 0
    meta = json.loads((trained_run / "export" / "policy.json").read_text())
    assert Path(meta["checkpoint"]) == best and meta["env_steps"] == steps

    assert main(["evaluate", str(trained_run), "--checkpoint", "bets"]) == 2
    assert "available: best.pt, latest.pt" in one_line_error(capsys)


def write_configs(folder: Path, pair: str | None) -> Path:
    (folder / "hopper.yaml").write_text((CONFIGS_DIR / "hopper.yaml").read_text())
    if pair is not None:
        (folder / "ppo").mkdir()
        (folder / "ppo" / "hopper.yaml").write_text(pair)
    return folder


def test_algo_for_a_task_without_tuned_settings_starts_from_the_algorithms_defaults(tmp_path):
    cfg = load_config("hopper", algo="ppo", configs_dir=write_configs(tmp_path, None))
    shipped = load_config("hopper")
    assert cfg.algo == PPOConfig(name="ppo")  # none of TRPO's settings in hopper.yaml leak in
    assert (cfg.task, cfg.value, cfg.train, cfg.advantage) == (
        shipped.task,
        shipped.value,
        shipped.train,
        shipped.advantage,
    )


def test_algo_for_a_task_with_tuned_settings_reads_its_pair_file(tmp_path):
    pair = "algo:\n  name: ppo\n  lr: 2.0e-4\n  epochs: 5\ntrain:\n  total_steps: 3000\n"
    folder = write_configs(tmp_path, pair)
    cfg = load_config("hopper", algo="ppo", configs_dir=folder)
    assert cfg.algo == PPOConfig(name="ppo", lr=2e-4, epochs=5)
    assert cfg.train.total_steps == 3000 and cfg.task.id == "Hopper-v5" and cfg.value.epochs == 20
    # algo.name=ppo on the command line is the same choice, and other overrides still apply on top
    same = load_config("hopper", ["algo.name=ppo", "algo.epochs=7"], configs_dir=folder)
    assert same.algo == PPOConfig(name="ppo", lr=2e-4, epochs=7)
    # a bad value in the pair file is the pair file's error
    (folder / "ppo" / "hopper.yaml").write_text("algo:\n  name: ppo\n  lr: -1\n")
    with pytest.raises(ConfigError, match=r"ppo/hopper.yaml: algo.lr: must be > 0.0"):
        load_config("hopper", algo="ppo", configs_dir=folder)


def test_make_train_task_hopper_algo_ppo_uses_the_shipped_pair_or_ppo_defaults(capsys):
    # `make train task=hopper algo=ppo` runs `python -m app train --task hopper --algo ppo`
    # hopper has a shipped pair file: its algo section, on top of PPO's defaults, is what the user gets
    cfg = load_config("hopper", algo="ppo")
    pair = CONFIGS_DIR / "ppo" / "hopper.yaml"
    assert pair.is_file()
    tuned = yaml.safe_load(pair.read_text())["algo"]
    assert tuned["name"] == "ppo" and len(tuned) > 1
    assert cfg.algo == PPOConfig(**tuned) != PPOConfig(name="ppo")
    assert cfg.task.id == "Hopper-v5"
    assert main(["config", "hopper", "--algo", "ppo"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["algo"]["name"] == "ppo"
