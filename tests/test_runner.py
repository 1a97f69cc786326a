"""Runner options end to end on short runs: Fisher subsampling, periodic checkpoints, async
vectorization, and resuming with another number of environments."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

import app.algorithms.trpo as trpo
from app.checkpoint import load_checkpoint
from app.cli import main
from app.config import load_config
from app.runner import Trainer, new_run_dir
from tests.devices import DEVICES


def train(overrides: list[str], algo: str | None = None) -> Path:
    cfg = load_config("inverted_pendulum", overrides, algo=algo)
    summary = Trainer(cfg, new_run_dir(cfg)).run()
    assert summary["finished"]
    return Path(summary["run_dir"])


def progress(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "progress.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("fraction,rows", [(0.25, 16), (1.0, 64)])
def test_fvp_subsample_runs_fisher_products_on_a_random_subset_of_the_batch(fast, monkeypatch, fraction, rows):
    batches, subsets = [], []
    update, fisher_product = trpo.TRPO.update, trpo.fisher_product

    def spy_update(self, batch, generator=None):
        batches.append(batch.obs.clone())
        return update(self, batch, generator)

    def spy_fisher_product(policy, obs, params, damping):
        subsets.append(obs.clone())
        return fisher_product(policy, obs, params, damping)

    monkeypatch.setattr(trpo.TRPO, "update", spy_update)
    monkeypatch.setattr(trpo, "fisher_product", spy_fisher_product)
    run_dir = train([*fast, f"algo.fvp_subsample={fraction}"])  # 3 iterations of 2 x 32 steps

    assert len(batches) == len(subsets) == 3
    for batch, subset in zip(batches, subsets, strict=True):
        assert batch.shape[0] == 64 and subset.shape[0] == rows  # round(fraction * 64)
        # distinct rows of this iteration's batch
        matches = (subset[:, None, :] == batch[None, :, :]).all(-1)
        assert matches.any(1).all()
        assert len({int(i) for i in matches.float().argmax(1)}) == rows
    if fraction < 1:
        assert not torch.equal(subsets[0], batches[0][:rows])  # drawn at random, not the first rows
    rows_csv = progress(run_dir)
    max_kl = load_config("inverted_pendulum").algo.max_kl
    assert all(0.0 <= float(r["kl"]) <= max_kl + 1e-9 for r in rows_csv)
    assert all(r["update_rejected"] == "0" for r in rows_csv)


def test_keep_every_writes_periodic_checkpoints_that_evaluate(fast, capsys):
    run_dir = train([*fast, "train.total_steps=320", "train.keep_every=2"])  # 5 iterations
    names = {p.name for p in (run_dir / "checkpoints").iterdir()}
    assert {"iter_000002.pt", "iter_000004.pt", "latest.pt"} <= names
    assert not {"iter_000001.pt", "iter_000003.pt", "iter_000005.pt"} & names
    for name, steps in (("iter_000002.pt", 128), ("iter_000004.pt", 256), ("latest.pt", 320)):
        ckpt = load_checkpoint(run_dir / "checkpoints" / name)
        assert ckpt["runner"]["env_steps"] == steps and ckpt["runner"]["iteration"] == steps // 64
    assert main(["evaluate", str(run_dir), "--checkpoint", "iter_000002", "--episodes", "2"]) == 0
    assert json.loads((run_dir / "eval.json").read_text())["env_steps"] == 128
    capsys.readouterr()

    never = train([*fast, "train.keep_every=0"])
    assert not [p for p in (never / "checkpoints").iterdir() if p.name.startswith("iter_")]


def test_async_vectorization_trains_and_resumes(fast, capsys):
    overrides = [*fast, "task.backend=gym", "task.vectorization=async", "train.total_steps=128"]
    run_dir = train(overrides)  # 2 iterations, environments stepped in subprocesses
    ckpt = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    assert ckpt["config"]["task"]["vectorization"] == "async"
    assert len(ckpt["env"]["envs"]) == 2  # the simulator state came back from the workers
    assert main(["train", "--resume", str(run_dir), "train.total_steps=192"]) == 0
    out = capsys.readouterr().out
    assert "environments restarted" not in out  # the workers' state was restored
    assert load_checkpoint(run_dir / "checkpoints" / "latest.pt")["runner"]["env_steps"] == 192
    assert [r["iteration"] for r in progress(run_dir)] == ["1", "2", "3"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("algo", [None, "a2c"])
def test_resume_with_another_number_of_environments(fast, capsys, algo, device):
    # a2c also reuses the last rollout: one of 2 environments beside the new ones of 3
    extra = ["algo.reuse_rollouts=1"] if algo else []
    overrides = [*fast, "train.total_steps=128", "train.progress=log", f"train.device={device}", *extra]
    run_dir = train(overrides, algo=algo)
    saved = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    capsys.readouterr()

    # the same trainer `make train resume=... task.num_envs=3` builds
    cfg = load_config("inverted_pendulum", [*overrides, "task.num_envs=3", "train.total_steps=224"], algo=algo)
    trainer = Trainer(cfg, run_dir, saved)
    assert trainer.env.num_envs == 3 and trainer.obs.shape == (3, 4)
    assert "environments restarted" in trainer.resume_note
    assert trainer.iteration == 2 and trainer.env_steps == 128
    assert trainer.tracker.lengths.tolist() == [0, 0, 0]  # new episodes
    # the reward scale is the task's, not the batch's: its running statistics carry over
    scaler = saved["runner"]["reward_scaler"]
    assert trainer.reward_scaler.var == scaler["var"] and trainer.reward_scaler.count == scaler["count"]
    assert trainer.reward_scaler.discounted.tolist() == [0.0, 0.0, 0.0]
    if algo:
        assert len(trainer.past) == 1 and trainer.past[0][0].obs.shape == (32, 2, 4)
    summary = trainer.run()
    out = capsys.readouterr().out
    assert "resume: environments restarted" in out  # the note is printed

    assert summary["finished"] and summary["env_steps"] == 128 + 96
    rows = progress(run_dir)
    assert [r["iteration"] for r in rows] == ["1", "2", "3"]
    assert [r["env_steps"] for r in rows] == ["64", "128", "224"]
    ckpt = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    assert ckpt["runner"]["obs"].shape == (3, 4) and ckpt["runner"]["reward_scaler"]["discounted"].shape == (3,)
    assert ckpt["config"]["task"]["num_envs"] == 3

    # and through the command line, back to 2 environments
    assert main(["train", "--resume", str(run_dir), "task.num_envs=2", "train.total_steps=288"]) == 0
    assert "resume: environments restarted" in capsys.readouterr().out
    assert load_checkpoint(run_dir / "checkpoints" / "latest.pt")["runner"]["env_steps"] == 288


def test_resume_when_the_environment_state_cannot_be_restored_says_why(fast, monkeypatch):
    from envs.native import NativeVecEnv

    run_dir = train([*fast, "train.total_steps=128"])
    saved = load_checkpoint(run_dir / "checkpoints" / "latest.pt")

    def refuse(self, state):
        raise ValueError("simulator version changed")

    monkeypatch.setattr(NativeVecEnv, "set_state", refuse)
    cfg = load_config("inverted_pendulum", [*fast, "train.total_steps=192"])
    trainer = Trainer(cfg, run_dir, saved)
    try:
        assert trainer.resume_note == (
            "resume: environments restarted (their state could not be restored: simulator version changed)"
        )
        assert trainer.reward_scaler.var == saved["runner"]["reward_scaler"]["var"]
        assert trainer.reward_scaler.discounted.tolist() == [0.0, 0.0]
        assert trainer.tracker.lengths.tolist() == [0, 0]
    finally:
        trainer.close()


def test_a_batch_refreshes_with_the_value_function_as_it_is_now(fast, monkeypatch):
    # PPO fits V_phi during its epochs; the batch's refresh rebuilds V(s), V(s') and GAE from the same rollout with
    # V_phi as updated: checked after each update against V on the batch's observations and a brute-force GAE.
    import app.algorithms.ppo as ppo
    from app.algorithms.base import standardize
    from tests.algorithms.test_gae import brute_force_gae

    checked = []
    update = ppo.PPO.update
    lam = load_config("inverted_pendulum", algo="ppo").advantage.gae_lambda

    def spy_update(self, batch, generator=None):
        result = update(self, batch, generator)
        fresh = batch.refresh()
        with torch.no_grad():
            values = self.value(self.policy.normalizer(batch.obs))
        assert not torch.allclose(fresh.values, batch.values)  # the value function moved
        torch.testing.assert_close(fresh.values, values)
        steps, columns = batch.time_shape
        grid = [t.reshape(steps, columns) for t in (fresh.rewards, fresh.values, fresh.next_values)]
        ends = [t.reshape(steps, columns) for t in (batch.terminated, batch.truncated)]
        inside = ~(ends[0] | ends[1])[:-1]  # successors inside the rollout: the next row's state
        torch.testing.assert_close(grid[2][:-1][inside], grid[1][1:][inside])
        expected = brute_force_gae(*grid, *ends, batch.gamma, lam)
        torch.testing.assert_close(fresh.advantages.double(), standardize(expected.reshape(-1)), rtol=1e-4, atol=1e-5)
        checked.append(batch.size)
        return result

    monkeypatch.setattr(ppo.PPO, "update", spy_update)
    train([*fast, "algo.recompute_advantages=true"], algo="ppo")
    assert checked == [64, 64, 64]
