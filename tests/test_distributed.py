"""Data-parallel training on torch.distributed (gloo, two ranks on this machine).

The equivalence tests run every case of tests/distributed_cases.py on two ranks (each with half of the
batch's environment columns) in one spawn of two processes, and compare with one process updating on the
whole batch: the same update to float tolerance, and the two ranks bit-identical.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from app import distributed
from app.algorithms.base import standardize
from app.algorithms.collective import SINGLE, DistributedError
from app.cli import main
from app.errors import CheckpointError
from app.rollout import RewardScaler
from policies import RunningNormalizer
from tests.distributed_cases import (
    CASES,
    COLUMNS,
    OBS_DIM,
    STEPS,
    WORLD,
    build,
    local_to_global,
    make_batch,
    parameters,
    rank_generator,
    reward_columns,
    silent_rank_worker,
    statistic_rows,
    worker,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """What each of two gloo ranks ended with (one spawn for every test of this module)."""
    out = tmp_path_factory.mktemp("ranks")
    # forked (not spawned): the ranks start with this process's imports, seconds sooner on 2 cores
    torch.multiprocessing.start_processes(
        worker, args=(free_port(), str(out)), nprocs=WORLD, join=True, start_method="fork"
    )
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def aligned_order(per_rank_minibatch: int) -> Any:
    """PPO's epoch order for one process on the whole batch: minibatch j is the union of both ranks' j-th
    minibatches, drawn from the ranks' own generators (as the ranks draw them)."""
    generators = [rank_generator(r) for r in range(WORLD)]
    width = COLUMNS // WORLD

    def order(size: int, generator: torch.Generator | None, device: Any) -> torch.Tensor:
        perms = [
            local_to_global(torch.randperm(STEPS * width, generator=g), r, STEPS, COLUMNS, WORLD)
            for r, g in enumerate(generators)
        ]
        m = per_rank_minibatch
        return torch.cat([torch.cat([p[j : j + m] for p in perms]) for j in range(0, STEPS * width, m)])

    return order


def reference(case: str) -> tuple[torch.Tensor, dict[str, float]]:
    """One process, the whole batch: parameters after the update and its metrics."""
    algo, policy, value = build(case)
    batch = make_batch(policy)
    if CASES[case][0] == "ppo":
        algo.epoch_order = aligned_order(CASES[case][1]["minibatch_size"] // WORLD)
    result = algo.update(batch, torch.Generator().manual_seed(0))
    assert result.rejected is None
    return parameters(policy, value), result.metrics


@pytest.mark.parametrize("case", list(CASES))
def test_two_ranks_take_the_update_of_one_process_on_the_whole_batch(ranks, case):
    expected, metrics = reference(case)
    before = parameters(*build(case)[1:])
    first, second = (r[case] for r in ranks)
    assert first["rejected"] is None and second["rejected"] is None
    assert torch.equal(first["params"], second["params"])  # the ranks stay identical
    moved = (expected - before).abs().max().item()
    assert moved > 1e-3  # the update does something, so agreeing with it means something
    assert torch.allclose(first["params"], expected, rtol=1e-4, atol=1e-6), (
        (first["params"] - expected).abs().max().item(),
        moved,
    )
    for key in ("kl", "value_loss", "policy_loss", "approx_kl", "epochs", "line_search_fraction"):
        if key in metrics:
            assert first["metrics"][key] == pytest.approx(metrics[key], rel=1e-4, abs=1e-7), key


def test_the_ranks_statistics_are_those_of_the_concatenated_data(ranks):
    rows = [statistic_rows(r) for r in range(WORLD)]
    normalizer = RunningNormalizer(OBS_DIM)
    normalizer.update(torch.ones(4, OBS_DIM) * 0.5 + torch.arange(4.0)[:, None])
    normalizer.update(torch.cat(rows))  # merged moments: not the mean of the ranks' means
    stats = [r["statistics"] for r in ranks]
    for s in stats:
        assert s["count"].item() == 4 + 50 + 29  # the NaN row is skipped
        assert torch.allclose(s["mean"], normalizer.mean, rtol=1e-12, atol=1e-12)
        assert torch.allclose(s["var"], normalizer.var, rtol=1e-12, atol=1e-12)
    # a plain mean of the ranks' batch means would weight rank 1's 29 rows like rank 0's 50
    naive = (rows[0].mean(0) + rows[1][torch.isfinite(rows[1]).all(1)].mean(0)).double() / 2
    assert not torch.allclose(naive, torch.cat(rows)[torch.isfinite(torch.cat(rows)).all(1)].double().mean(0))

    rewards, done = zip(*(reward_columns(r) for r in range(WORLD)), strict=True)
    scaler = RewardScaler(5, gamma=0.9)
    scaled = scaler(torch.cat(rewards, dim=1), torch.cat(done, dim=1))
    assert stats[0]["reward_var"].item() == pytest.approx(scaler.var.item(), rel=1e-12)
    assert torch.allclose(torch.cat([stats[0]["scaled"], stats[1]["scaled"]], dim=1), scaled, rtol=1e-6)

    # advantages' standardization and a sample-weighted mean over unequal parts (80 entries, 50 and 30)
    x = torch.cat([rows[0][:, 0], rows[1][:, 0]])
    got = torch.cat([stats[0]["standardized"], stats[1]["standardized"]])
    assert torch.allclose(got, standardize(x), rtol=1e-5, atol=1e-6)
    assert stats[0]["weighted_mean"].item() == pytest.approx(x.mean().item(), rel=1e-5)


def test_ranks_start_equal_stay_equal_and_collect_different_episodes(ranks):
    first, second = (r["trainer"] for r in ranks)
    assert torch.equal(first["start"], second["start"])  # rank 0's networks, broadcast
    assert torch.equal(first["end"], second["end"])
    assert not torch.equal(first["start"], first["end"])
    assert torch.equal(first["normalizer"], second["normalizer"])
    assert not torch.allclose(first["first_obs"], second["first_obs"])  # seeds per rank
    assert first["env_steps"] == second["env_steps"] == 2 * (2 * 16) * WORLD  # steps summed over ranks
    assert [row["env_steps"] for row in first["rows"]] == [64, 128]
    # rank 0's checkpoint holds both ranks' environments and RNG states; the other ranks write nothing
    assert second["distributed"] is None
    saved = first["distributed"]
    assert saved["world_size"] == WORLD and len(saved["ranks"]) == WORLD
    assert torch.equal(saved["ranks"][0]["obs"], first["obs"]) and torch.equal(saved["ranks"][1]["obs"], second["obs"])
    assert saved["ranks"][1]["env"] is not None


def test_a_distributed_checkpoint_resumes_each_rank_exactly(ranks):
    for rank in ranks:
        trainer = rank["trainer"]
        assert torch.equal(trainer["resumed"], trainer["continued"])
        assert torch.equal(trainer["resumed_obs"], trainer["continued_obs"])
        assert not torch.equal(trainer["continued"], trainer["end"])  # the third iteration moved them
    assert not torch.equal(ranks[0]["trainer"]["resumed_obs"], ranks[1]["trainer"]["resumed_obs"])


def test_the_ranks_agree_on_a_spent_wall_clock_budget_by_rank_0s_clock(ranks):
    assert [rank["trainer"]["budget_spent"] for rank in ranks] == [[False, True], [False, True]]


def test_a_rank_that_stops_answering_ends_the_others_after_the_timeout_in_one_line(tmp_path):
    torch.multiprocessing.start_processes(
        silent_rank_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True, start_method="fork"
    )
    waited, message = (tmp_path / "silent.txt").read_text().split("\n", 1)
    assert 0.9 < float(waited) < 3.5  # the process group's 1 s timeout, not the sleeping rank's 4 s
    assert message.startswith("rank 0: lost contact with another rank (") and "\n" not in message, message
    assert "resumes the run with the same number of ranks" in message


def test_a_checkpoint_resumes_only_with_the_number_of_ranks_that_wrote_it():
    ckpt = {"runner": {"obs": torch.zeros(1)}, "env": None, "distributed": {"world_size": 2, "ranks": [{}, {}]}}
    with pytest.raises(CheckpointError, match="written by 2 rank.*make train nproc=2.*this run has 1"):
        distributed.rank_view(ckpt, SINGLE)
    plain = {"runner": {"obs": torch.zeros(1)}, "env": None}
    assert distributed.rank_view(plain, SINGLE) is plain


def test_rank_device_seed_and_the_one_process_default(monkeypatch):
    assert distributed.rank_device(torch.device("cuda"), 3) == torch.device("cuda", 3)
    assert distributed.rank_device(torch.device("cpu"), 3) == torch.device("cpu")
    assert [distributed.rank_seed(5, r, 8) for r in range(3)] == [5, 13, 21]
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.start("auto") is SINGLE
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(DistributedError, match="WORLD_SIZE='two' is not an integer"):
        distributed.start("auto")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(DistributedError, match="launch with torchrun"):
        distributed.start("auto")
    monkeypatch.setenv("POLICYLAB_DIST_TIMEOUT", "-1")
    with pytest.raises(DistributedError, match="positive number of seconds"):
        distributed.timeout_from_env()


def test_a_ranks_placement_is_cuda_local_rank_and_one_process_keeps_its_own():
    from types import SimpleNamespace

    from envs.placement import Placement

    chosen = Placement("gpu", torch.device("cuda", 1), "train.device cuda:1")
    assert distributed.rank_placement(chosen, SINGLE) is chosen  # one process: cuda:1 as asked
    rank = SimpleNamespace(active=True, local_rank=2)
    assert distributed.rank_placement(chosen, rank).device == torch.device("cuda", 2)
    on_cpu = Placement("cpu", torch.device("cpu"), "auto")
    assert distributed.rank_placement(on_cpu, rank).device == torch.device("cpu")


def test_the_one_process_collective_returns_its_input():
    x = torch.randn(5)
    assert SINGLE.sum(x) is x and SINGLE.mean(x, 5) is x and SINGLE.max(x) is x
    assert SINGLE.share(64) == 64 and SINGLE.gather_objects(3) == [3] and SINGLE.all(False) is False


# ---------------------------------------------------------------------------
# torchrun end to end: the shipped inverted-pendulum config on two ranks


REPO = Path(__file__).resolve().parent.parent
TORCHRUN = Path(sys.executable).with_name("torchrun")


def torchrun(args: list[str]) -> subprocess.Popen[str]:
    """``torchrun <args>`` from the repository root, stdout and stderr together as text."""
    env = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [str(TORCHRUN), *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def worker_with_rank(launcher: int, rank: int) -> int:
    """The pid of the worker process of ``launcher`` (a torchrun) whose RANK is ``rank``."""
    for child in Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split():
        environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in environ:
            return int(child)
    raise AssertionError(f"no worker with RANK={rank} under torchrun {launcher}")


@pytest.mark.slow  # the shipped config's whole run to its learning threshold (about a minute): make test-fast skips it
@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside this python")
def test_a_two_rank_run_learns_survives_a_killed_rank_and_resumes_on_two_nodes(tmp_path, capsys):
    # the shipped config, its full budget; its 8 environments split over the 2 ranks (task.num_envs is per rank);
    # evaluated at the end only (the CI's time)
    overrides = [f"train.runs_dir={tmp_path}", "train.progress=log", "task.num_envs=4", "train.checkpoint_every=1"]
    overrides.append("train.eval_every=0")
    first = torchrun(
        ["--standalone", "--nproc-per-node=2", "-m", "app", "train", "--task", "inverted_pendulum", *overrides]
    )
    assert first.stdout is not None
    output = []
    for line in first.stdout:
        output.append(line)
        if line.startswith("iter    45 "):
            break
    else:
        pytest.fail("".join(output[-20:]))
    killed_at = time.monotonic()
    os.kill(worker_with_rank(first.pid, 1), signal.SIGKILL)  # rank 1 dies without a word
    rest, _ = first.communicate(timeout=60)
    ended = time.monotonic() - killed_at
    output.append(rest)
    text = "".join(output)
    assert first.returncode != 0
    assert ended < 30, ended  # the other rank and torchrun end at once, no hang
    assert "lost contact with another rank" in text or "Signal 9 (SIGKILL)" in text, text[-2000:]
    (run_dir,) = (tmp_path / "inverted_pendulum").iterdir()
    saved = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)
    assert saved["distributed"]["world_size"] == 2 and int(saved["runner"]["iteration"]) >= 44

    # the multi-node path: two torchrun invocations meet at a c10d rendezvous and finish the run
    port = free_port()
    nodes = [
        torchrun(
            [
                "--nnodes=2",
                "--nproc-per-node=1",
                "--rdzv-backend=c10d",
                f"--rdzv-endpoint=127.0.0.1:{port}",
                "--rdzv-id=resume-test",
                "-m",
                "app",
                "train",
                "--resume",
                str(run_dir),
                "train.update_threads=1",  # the two "machines" share this one's cores
            ]
        )
        for _ in range(2)
    ]
    outputs = [node.communicate(timeout=240)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["finished"] and summary["env_steps"] >= 60_000
    assert summary["final_eval_return"] >= 950.0, summary  # as one process learns it (tests/test_training.py)
    with (run_dir / "progress.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iteration"]) for r in rows] == list(range(1, len(rows) + 1))  # one row per iteration
    assert [int(r["env_steps"]) for r in rows] == [1024 * k for k in range(1, len(rows) + 1)]

    # one process: refuses to resume it, evaluates and exports it
    assert main(["train", "--resume", str(run_dir)]) == 2
    assert "written by 2 rank(s)" in capsys.readouterr().err
    assert main(["evaluate", str(run_dir), "--episodes", "3"]) == 0
    assert json.loads((run_dir / "eval.json").read_text())["mean_return"] >= 950.0
    assert main(["export", str(run_dir)]) == 0
    assert (run_dir / "export" / "policy.onnx").is_file()
