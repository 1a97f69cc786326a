"""The two-rank side of tests/test_distributed.py: cases built the same way in the test process (one process,
the whole batch) and in each of two gloo ranks (half the batch each), and the worker that runs them.

A case is deterministic given its name: the same networks and the same batch [T, M] on every rank and in
the reference; rank r takes the environment columns [r M / W, (r + 1) M / W) (whole trajectories, their
time axis kept), the reference all M.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from app.algorithms import ALGORITHMS
from app.algorithms.base import Batch
from app.algorithms.collective import SINGLE, Collective
from app.config import ValueConfig
from policies import GaussianPolicy, ValueFunction

STEPS, COLUMNS, OBS_DIM, ACT_DIM = 8, 4, 3, 2  # the batch [T, M]: B = 32 samples, 16 per rank
WORLD = 2

# name -> (algorithm, its config overrides, value config overrides as in one process)
CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "trpo": ("trpo", {"max_kl": 0.05}, {}),
    "npg": ("npg", {"max_kl": 0.05}, {}),
    "a2c": ("a2c", {"lr": 3e-3, "ent_coef": 0.01}, {}),
    "vpg": ("vpg", {"lr": 3e-3}, {}),
    "vpg_mean_baseline": ("vpg", {"lr": 3e-3, "baseline": "mean", "returns": "trajectory"}, {}),
    "vpg_optimal_baseline": ("vpg", {"lr": 3e-3, "baseline": "optimal"}, {}),
    # minibatches of 8 (4 per rank), 2 epochs; per-minibatch standardization, KL early stop and kl_adaptive
    "ppo": (
        "ppo",
        {
            "lr": 3e-3,
            "epochs": 2,
            "minibatch_size": 8,
            "normalize_minibatch_advantages": True,
            "lr_schedule": "kl_adaptive",
            "target_kl": 0.02,
        },
        {},
    ),
}
# TRPO, NPG and VPG fit the value function on the whole batch (each rank's half) for 3 epochs
VALUE = {"epochs": 3, "minibatch_size": STEPS * COLUMNS, "hidden_sizes": (8,)}


def make_networks(seed: int = 0) -> tuple[GaussianPolicy, ValueFunction]:
    """A small policy (normalizer with non-trivial statistics) and value net, the same for every caller."""
    torch.manual_seed(seed)
    policy = GaussianPolicy(OBS_DIM, ACT_DIM, [-1.0] * ACT_DIM, [1.0] * ACT_DIM, hidden_sizes=(8,), init_log_std=-0.5)
    value = ValueFunction(OBS_DIM, hidden_sizes=(8,))
    g = torch.Generator().manual_seed(seed + 1)
    policy.normalizer.update(torch.randn(64, OBS_DIM, generator=g) * 2.0 + 1.0)
    return policy, value


def make_batch(policy: GaussianPolicy, seed: int = 0) -> Batch:
    """A batch [T, M] with behaviour log-probabilities of ``policy``, episode ends and truncations."""
    g = torch.Generator().manual_seed(seed + 2)
    b = STEPS * COLUMNS
    obs = torch.randn(b, OBS_DIM, generator=g) * 2.0 + 1.0
    with torch.no_grad():
        actions, log_probs = policy.sample_with_log_prob(obs, g)
    terminated = torch.zeros(STEPS, COLUMNS, dtype=torch.bool)
    truncated = torch.zeros(STEPS, COLUMNS, dtype=torch.bool)
    terminated[3, 0] = terminated[5, 2] = True
    truncated[4, 1] = truncated[2, 3] = True
    return Batch(
        obs=obs,
        actions=actions,
        log_probs=log_probs,
        advantages=torch.randn(b, generator=g),
        returns=torch.randn(b, generator=g),
        values=torch.randn(b, generator=g) * 0.5,
        rewards=torch.rand(b, generator=g),
        next_values=torch.randn(b, generator=g) * 0.5,
        terminated=terminated.reshape(-1),
        truncated=truncated.reshape(-1),
        age=torch.zeros(b, dtype=torch.long),
        time_shape=(STEPS, COLUMNS),
        gamma=0.9,
    )


def column_part(batch: Batch, rank: int, world: int) -> Batch:
    """Rank ``rank``'s environment columns of a batch [T, M]: [T, M / world], flattened time-major."""
    steps, cols = batch.time_shape
    width = cols // world
    fields: dict[str, Any] = {}
    for name in ("obs", "actions", "log_probs", "advantages", "returns", "values", "rewards", "next_values"):
        fields[name] = _columns(getattr(batch, name), steps, cols, rank * width, width)
    for name in ("terminated", "truncated", "age"):
        fields[name] = _columns(getattr(batch, name), steps, cols, rank * width, width)
    return replace(batch, **fields, time_shape=(steps, width))


def _columns(x: Tensor, steps: int, cols: int, first: int, width: int) -> Tensor:
    view = x.reshape(steps, cols, *x.shape[1:])[:, first : first + width]
    return view.reshape(steps * width, *x.shape[1:]).clone()


def local_to_global(index: Tensor, rank: int, steps: int, cols: int, world: int) -> Tensor:
    """Rank ``rank``'s flat sample indices t * (M / W) + c -> the whole batch's t * M + rank * M / W + c."""
    width = cols // world
    return (index // width) * cols + rank * width + index % width


def build(case: str, collective: Collective = SINGLE) -> tuple[Any, GaussianPolicy, Any]:
    """(algorithm, policy, value) of ``case``, on one process or on a rank of ``collective``.

    Minibatch sizes are configured as in one process; each rank takes its share (half).
    """
    algo_name, overrides, value_overrides = CASES[case]
    spec = ALGORITHMS[algo_name]
    policy, value = make_networks()
    value_cfg = ValueConfig(**(VALUE | value_overrides))
    algo = spec.cls(policy, value, spec.config(**overrides), value_cfg, 10, collective)
    return algo, policy, value


def parameters(*modules: torch.nn.Module) -> Tensor:
    """Every parameter of ``modules``, flattened into one vector [P]."""
    return torch.cat([p.detach().reshape(-1) for m in modules for p in m.parameters()])


def rank_generator(rank: int) -> torch.Generator:
    return torch.Generator().manual_seed(100 + rank)


# ---------------------------------------------------------------------------
# statistics: rank r's rows of the merged-moment checks (unequal sizes: rank 0 has 50, rank 1 has 30 and a NaN row)


def statistic_rows(rank: int) -> Tensor:
    g = torch.Generator().manual_seed(7 + rank)
    rows = torch.randn(50 if rank == 0 else 30, OBS_DIM, generator=g) * (1.0 + rank) + 3.0 * rank
    if rank == 1:
        rows[4, 1] = float("nan")
    return rows


def reward_columns(rank: int) -> tuple[Tensor, Tensor]:
    """Rewards and episode ends [T, N_r] of rank r's environments (N_0 = 3, N_1 = 2)."""
    g = torch.Generator().manual_seed(11 + rank)
    n = 3 if rank == 0 else 2
    rewards = torch.randn(STEPS, n, generator=g) * 2.0 + rank
    done = torch.rand(STEPS, n, generator=g) < 0.2
    return rewards, done


# ---------------------------------------------------------------------------
# the worker: one rank of two


def worker(rank: int, port: int, out: str) -> None:
    """Rank ``rank`` of 2 (gloo on 127.0.0.1:port): run every case on its half and save what it ended with."""
    import torch.distributed as dist

    from app.algorithms.collective import TorchCollective

    os.environ["LOCAL_RANK"] = str(rank)
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD, timeout=timedelta(seconds=60)
    )
    collective = TorchCollective()
    results: dict[str, Any] = {}
    for case in CASES:
        algo, policy, value = build(case, collective)
        part = column_part(make_batch(policy), rank, WORLD)
        result = algo.update(part, rank_generator(rank))
        results[case] = {"params": parameters(policy, value), "metrics": result.metrics, "rejected": result.rejected}
    results["statistics"] = rank_statistics(collective, rank)
    results["trainer"] = trainer_iterations(collective, Path(out))
    torch.save(results, Path(out) / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


def rank_statistics(collective: Collective, rank: int) -> dict[str, Tensor]:
    """The normalizer, reward scaler, standardization and weighted mean over both ranks' unequal data."""
    from app.rollout import RewardScaler
    from policies import RunningNormalizer

    normalizer = RunningNormalizer(OBS_DIM)
    normalizer.update(torch.ones(4, OBS_DIM) * 0.5 + torch.arange(4.0)[:, None])  # the same prior on every rank
    normalizer.update(statistic_rows(rank), collective.moments)
    scaler = RewardScaler(3 if rank == 0 else 2, gamma=0.9, moments=collective.moments)
    rewards, done = reward_columns(rank)
    scaled = scaler(rewards, done)
    x = statistic_rows(rank)[:, 0]
    return {
        "mean": normalizer.mean.clone(),
        "var": normalizer.var.clone(),
        "count": normalizer.count.clone(),
        "reward_var": scaler.var.clone(),
        "scaled": scaled,
        "standardized": collective.standardize(x),
        "weighted_mean": collective.mean(x.mean(), x.numel()),
    }


def trainer_iterations(collective: Collective, out: Path) -> dict[str, Any]:
    """Two iterations of a tiny inverted-pendulum run on both ranks: parameters, counts, first observations
    and the checkpoint state (gathered on rank 0); then a third from the checkpoint and from the running trainer."""
    from app.checkpoint import load_checkpoint, save_checkpoint
    from app.config import load_config
    from app.runner import Trainer

    overrides = [
        f"train.runs_dir={out / 'runs'}",
        "train.progress=none",
        "task.num_envs=2",
        "train.steps_per_env=16",
        "train.total_steps=128",
        "policy.hidden_sizes=[8]",
        "value.hidden_sizes=[8]",
        "value.epochs=2",
        "train.update_threads=1",  # one torch thread in a forked child (OpenMP teams do not survive fork)
    ]
    cfg = load_config("inverted_pendulum", overrides)
    trainer = Trainer(cfg, out / "runs" / "r", collective=collective)
    start = parameters(trainer.policy, trainer.value)
    first_obs = trainer.obs.clone()
    rows = [trainer.iterate(), trainer.iterate()]
    state = trainer.state_dict()
    result = {
        "start": start,
        "end": parameters(trainer.policy, trainer.value),
        "normalizer": trainer.policy.normalizer.mean.clone(),
        "first_obs": first_obs,
        "obs": trainer.obs.clone(),
        "env_steps": trainer.env_steps,
        "rows": rows,
        "distributed": state.get("distributed"),
    }
    # exact resume: rank 0 writes the checkpoint, each rank resumes its own part; one more iteration of the
    # resumed trainer and of the running one (from the same global torch RNG state) must agree exactly
    path = out / "runs" / "latest.pt"
    if collective.is_main:
        save_checkpoint(state, path)
    collective.barrier()
    saved_rng = torch.get_rng_state()
    resumed = Trainer(cfg, out / "runs" / "r", load_checkpoint(path), collective=collective)
    resumed.iterate()
    torch.set_rng_state(saved_rng)
    trainer.iterate()
    # train.minutes: the ranks' clocks differ, rank 0's decides for all (one rank alone stopping would hang
    # the other in its next collective): rank 1 pretends its run started an hour ago, then rank 0 does
    trainer.cfg = replace(cfg, train=replace(cfg.train, minutes=1.0, total_steps=10**9))
    trainer.started -= 3600.0 * (collective.rank == 1)
    spent = [trainer.out_of_budget()]
    trainer.started += 3600.0 * (collective.rank == 1) - 3600.0 * (collective.rank == 0)
    spent.append(trainer.out_of_budget())
    trainer.close()
    resumed.close()
    return result | {
        "budget_spent": spent,
        "continued": parameters(trainer.policy, trainer.value),
        "resumed": parameters(resumed.policy, resumed.value),
        "continued_obs": trainer.obs.clone(),
        "resumed_obs": resumed.obs.clone(),
    }


def silent_rank_worker(rank: int, port: int, out: str) -> None:
    """Rank 1 joins and then never answers (for 4 s); rank 0's sum must fail after the 1 s timeout, in one line."""
    import time

    import torch.distributed as dist

    from app.algorithms.collective import DistributedError, TorchCollective

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD, timeout=timedelta(seconds=1)
    )
    if rank == 1:
        time.sleep(4.0)
        return
    start = time.monotonic()
    try:
        TorchCollective().sum(torch.ones(3))
        message = "no error"
    except DistributedError as exc:
        message = str(exc)
    (Path(out) / "silent.txt").write_text(f"{time.monotonic() - start}\n{message}")
