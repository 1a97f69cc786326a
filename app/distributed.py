"""Data-parallel training on ``torch.distributed``, launched by torchrun: one process (rank) per device.

Each rank owns its device, its environments (``task.num_envs`` per rank) and its RNG streams, collects
its own rollouts, and takes the same update as every other rank through the collective
(:mod:`app.algorithms.collective`). This module holds what the runner and the CLI need around that:

- :func:`start`: joins the process group torchrun describes (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR,
  MASTER_PORT), gloo on CPU and NCCL on GPUs, with a timeout so a rank that stops answering ends the
  others within a bounded time; without torchrun (or with one rank) the one-process collective.
- :func:`rank_device`, :func:`rank_seed`: the device and seed of a rank.
- :func:`iteration_totals`: the per-iteration counts summed over ranks (steps, episodes, returns) and
  the decisions every rank must share (a non-finite rollout anywhere, a stop request anywhere).
- :func:`gather_rank_states`, :func:`rank_view`: a checkpoint holds every rank's environments and RNG
  states, written by rank 0; each rank resumes from its own, with the same number of ranks.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import torch

from app.algorithms.collective import SINGLE, Collective, DistributedError, TorchCollective
from app.errors import CheckpointError

if TYPE_CHECKING:
    from envs.config import TaskConfig
    from envs.placement import Placement

TIMEOUT_ENV = "POLICYLAB_DIST_TIMEOUT"  # seconds a collective waits for a silent rank (default below)
DEFAULT_TIMEOUT_S = 300.0  # above the longest rank-0-only stretch (evaluation, a video) of a long run
# runner fields that differ between ranks: saved per rank in a distributed checkpoint (with "env")
RANK_FIELDS = ("generator", "torch_rng", "tracker", "reward_scaler", "obs", "past", "recent")


def world_size_from_env() -> int:
    """WORLD_SIZE as torchrun sets it (1 without torchrun); a malformed value is a one-line error."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        size = int(raw)
    except ValueError:
        raise DistributedError(f"WORLD_SIZE={raw!r} is not an integer; torchrun sets it (a positive integer)") from None
    if size < 1:
        raise DistributedError(f"WORLD_SIZE={size}: the number of ranks must be at least 1")
    return size


def timeout_from_env() -> float:
    """The collectives' timeout in seconds: $POLICYLAB_DIST_TIMEOUT or :data:`DEFAULT_TIMEOUT_S`."""
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise DistributedError(f"{TIMEOUT_ENV}={raw!r}: the timeout must be a positive number of seconds")
    return value


def wants_cuda(train_device: str, task: TaskConfig | None = None) -> bool:
    """Whether the run's device is CUDA on this machine: the placement of ``task`` (:mod:`envs.placement`),
    or without a task whether ``train.device`` can be CUDA here."""
    if task is not None:
        import envs

        return envs.placement_of(task, train_device).device.type == "cuda"
    return train_device != "cpu" and torch.cuda.is_available()


def rank_device(device: torch.device, local_rank: int) -> torch.device:
    """The device of the rank with ``local_rank`` on its machine: cuda:LOCAL_RANK when ``device`` is CUDA
    (one GPU per rank; the simulator belongs there too), the CPU otherwise."""
    if device.type == "cuda":
        return torch.device("cuda", local_rank)
    return device


def rank_placement(where: Placement, collective: Collective) -> Placement:
    """This rank's placement: with several ranks, cuda:LOCAL_RANK where the run's decision is CUDA (networks and
    the gpu simulator alike); one process keeps the decision as it is (``train.device: cuda:1`` stays cuda:1)."""
    if not collective.active:
        return where
    return dataclasses.replace(where, device=rank_device(where.device, collective.local_rank))


def rank_seed(seed: int, rank: int, num_envs: int) -> int:
    """The run's seed plus rank x num_envs: rank r's environments get seeds that no other rank's get.

    (A Gymnasium vector env seeds its worlds seed, seed + 1, ..., seed + N - 1; an offset of the bare
    rank would hand rank 1's first world the seed of rank 0's second, and the same episodes.)
    """
    return seed + rank * num_envs


def start(train_device: str, task: TaskConfig | None = None) -> Collective:
    """Join torchrun's process group (gloo on CPU, NCCL when ``train.device`` resolves to CUDA), or the
    one-process collective when not launched by torchrun with several ranks."""
    if world_size_from_env() == 1:
        return SINGLE
    import torch.distributed as dist

    for key in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if key not in os.environ:
            raise DistributedError(
                f"WORLD_SIZE is {os.environ['WORLD_SIZE']} but {key} is not set: launch with torchrun "
                "(make train nproc=<n> task=...)"
            )
    backend = "nccl" if wants_cuda(train_device, task) else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    try:
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_from_env()))
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise DistributedError(f"could not join the other ranks ({backend}): {first}") from None
    return TorchCollective()


# ---------------------------------------------------------------------------
# one iteration's totals over ranks


@dataclass(frozen=True)
class IterationTotals:
    """What the log row and the loop need of an iteration, over every rank."""

    steps: int  # environment steps collected (all ranks)
    episodes: int  # episodes that ended (all ranks)
    episode_return: float  # mean return over every rank's window of recent episodes (NaN: none yet)
    episode_length: float  # their mean length
    unstable_resets: int  # environments reset for instability, all ranks
    finite: bool  # every rank's rollout is finite (else every rank skips the update)
    stop: bool  # a stop was requested on some rank (every rank stops after this iteration)


def iteration_totals(
    collective: Collective,
    steps: int,
    episodes: int,
    recent: deque[tuple[float, int]],
    unstable_resets: int,
    finite: bool,
    stop: bool,
) -> IterationTotals:
    """This rank's counts, summed over ranks in one reduction (as they are in one process)."""
    if not collective.active:
        n = len(recent)
        mean_return = sum(r for r, _ in recent) / n if n else math.nan
        mean_length = sum(k for _, k in recent) / n if n else math.nan
        return IterationTotals(steps, episodes, mean_return, mean_length, unstable_resets, finite, stop)
    local = [
        steps,
        episodes,
        sum(r for r, _ in recent),
        sum(k for _, k in recent),
        len(recent),
        unstable_resets,
        float(not finite),
        float(stop),
    ]
    device = torch.device("cuda", torch.cuda.current_device()) if _nccl() else torch.device("cpu")
    total = collective.sum(torch.tensor(local, dtype=torch.float64, device=device)).tolist()
    n = total[4]
    return IterationTotals(
        steps=int(total[0]),
        episodes=int(total[1]),
        episode_return=total[2] / n if n else math.nan,
        episode_length=total[3] / n if n else math.nan,
        unstable_resets=int(total[5]),
        finite=total[6] == 0,
        stop=total[7] > 0,
    )


def broadcast_float(collective: Collective, value: float) -> float:
    """Rank 0's ``value`` on every rank (an evaluation's return, which only rank 0 computes)."""
    if not collective.active:
        return value
    device = torch.device("cuda", torch.cuda.current_device()) if _nccl() else torch.device("cpu")
    return float(collective.broadcast(torch.tensor([value], dtype=torch.float64, device=device)).item())


def _nccl() -> bool:
    import torch.distributed as dist

    return dist.is_initialized() and dist.get_backend() == "nccl"


# ---------------------------------------------------------------------------
# checkpoints across ranks


def to_cpu(obj: Any) -> Any:
    """Tensors (and TensorDicts) moved to the CPU, recursively through dicts, lists and tuples."""
    if hasattr(obj, "to") and hasattr(obj, "device"):
        return obj.to("cpu")
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def gather_rank_states(collective: Collective, state: dict[str, Any]) -> dict[str, Any]:
    """Add every rank's environments and RNG states to a checkpoint (rank 0's state; others get theirs back).

    The top level stays rank 0's (policy, value, optimizer, counters, its environments), so a single
    process evaluates, renders and exports the checkpoint as any other; ``distributed`` holds
    {"world_size": W, "ranks": [{"env": ..., "generator": ..., ...} for each rank]}.
    """
    if not collective.active:
        return state
    runner = state["runner"]
    mine = to_cpu({"env": state["env"], **{key: runner[key] for key in RANK_FIELDS}})
    gathered = collective.gather_objects(mine)
    if gathered is not None:
        state = state | {"distributed": {"world_size": collective.world_size, "ranks": gathered}}
    return state


def saved_world_size(ckpt: dict[str, Any]) -> int:
    """How many ranks wrote the checkpoint (1 for one process)."""
    return int(ckpt.get("distributed", {}).get("world_size", 1))


def rank_view(ckpt: dict[str, Any], collective: Collective) -> dict[str, Any]:
    """The checkpoint as this rank resumes it: its own environments and RNG states in place of rank 0's.

    Resuming needs the number of ranks that wrote it (each rank's environments continue exactly);
    another number is refused in one line.
    """
    saved = saved_world_size(ckpt)
    if saved != collective.world_size:
        how = "one process (make train resume=<run>)" if saved == 1 else f"{saved} ranks (make train nproc={saved})"
        raise CheckpointError(
            f"this checkpoint was written by {saved} rank(s) and resumes exactly only with {how}; this run has "
            f"{collective.world_size}. (Any number of processes can evaluate, render and export it.)"
        )
    if not collective.active:
        return ckpt
    mine = ckpt["distributed"]["ranks"][collective.rank]
    runner = ckpt["runner"] | {key: mine[key] for key in RANK_FIELDS}
    return ckpt | {"env": mine["env"], "runner": runner}


class NullLogger:
    """The logger of ranks other than 0: they write no progress.csv, TensorBoard or messages."""

    tb = None

    def log(self, row: dict[str, Any]) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass
