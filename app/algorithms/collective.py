"""The collective: how the algorithms turn a mean over this process's samples into a mean over every rank's.

The runner creates one and hands it to every algorithm. :class:`Collective` is one process: every
reduction returns its input (nothing is copied, nothing is synchronized). :class:`TorchCollective`
is data-parallel training on ``torch.distributed`` (torchrun; gloo on CPU, NCCL on GPUs): each rank
holds its own samples, and the reductions below make every statistic, gradient and decision the one
the concatenation of all ranks' samples would give, so the ranks take the same update.

Weights: a mean over samples is ``mean(x, weight=n)`` with n this rank's sample count,
x_global = sum_r n_r x_r / sum_r n_r, which is exact when ranks hold different batch sizes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from app.algorithms.base import standardize
from app.errors import PolicylabError
from policies.normalizer import local_moments


class DistributedError(PolicylabError):
    """A collective failed: another rank died or stopped answering (or ranks disagree on a checkpoint)."""


class Collective:
    """One process: rank 0 of a world of 1. Every method returns its input unchanged."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def active(self) -> bool:
        """More than one rank: the reductions communicate."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes progress.csv, TensorBoard, videos, checkpoints and the report."""
        return self.rank == 0

    def share(self, count: int) -> int:
        """This rank's part of a global sample count, ceil(count / world_size): a configured minibatch size is
        the minibatch of all ranks together, as in one process."""
        return -(-count // self.world_size)

    def sum(self, x: Tensor) -> Tensor:
        """sum_r x_r, elementwise (any shape; a new tensor when ranks communicate)."""
        return x

    def max(self, x: Tensor) -> Tensor:
        """max_r x_r, elementwise."""
        return x

    def mean(self, x: Tensor, weight: float | None = None) -> Tensor:
        """sum_r w_r x_r / sum_r w_r (w_r = ``weight``: this rank's sample count), or the plain mean over ranks."""
        return x

    def all(self, flag: bool) -> bool:
        """True when ``flag`` is True on every rank."""
        return flag

    def mean_gradients(self, params: Iterable[nn.Parameter], weight: float | None = None) -> None:
        """Replace each parameter's .grad by the (sample-weighted) mean of every rank's, in one reduction.

        A parameter without a gradient counts as a zero gradient (so it gets one when another rank has one).
        """

    def broadcast(self, x: Tensor) -> Tensor:
        """Rank 0's x on every rank (in place: x is overwritten and returned)."""
        return x

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's picklable ``obj`` on every rank."""
        return obj

    def broadcast_module(self, module: nn.Module) -> None:
        """Rank 0's parameters and buffers copied into ``module`` on every rank."""

    def gather_objects(self, obj: Any) -> list[Any] | None:
        """Every rank's picklable ``obj`` in rank order on rank 0; None on the other ranks."""
        return [obj]

    def moments(self, x: Tensor) -> tuple[Tensor, Tensor, int]:
        """Mean [D], biased variance [D] and count of the rows of x [n, D] (or of x [n]) of every rank together.

        These are the moments of the concatenated data (not a mean of per-rank means): with
        n = sum_r n_r, mean = sum_r sum_i x_ri / n, var = sum_r sum_i (x_ri - mean)^2 / n (two passes).
        The count is 0 (mean and var NaN) when no rank has a row.
        """
        return local_moments(x)

    def standardize(self, x: Tensor) -> Tensor:
        """(x - mean) / std over every rank's entries of x [n]: :func:`app.algorithms.base.standardize`."""
        return standardize(x)

    def barrier(self) -> None:
        """Wait until every rank gets here."""

    def close(self) -> None:
        """Leave the process group (nothing in one process)."""


def lost_rank_error(rank: int, exc: BaseException) -> DistributedError:
    """One line for a failed collective: who failed, the backend's first sentence, and how to continue."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)  # gloo's "[.../pair.cc:537] " source location
    first = text.split(". ")[0].rstrip(".")[:160]
    return DistributedError(
        f"rank {rank}: lost contact with another rank ({first}); stopping. "
        "The last checkpoint resumes the run with the same number of ranks (make train resume=<run> nproc=<n>)"
    )


class TorchCollective(Collective):
    """The reductions over ``torch.distributed``'s default process group (already initialized).

    Every method is a collective: all ranks call it, in the same order, with tensors of the same
    shape. A failure (a dead rank, a timeout) becomes one :class:`DistributedError` line.
    """

    def __init__(self) -> None:
        import torch.distributed as dist

        self.dist = dist
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(self.world_size)))

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RuntimeError as exc:  # DistBackendError, DistNetworkError and timeouts are RuntimeErrors
            raise lost_rank_error(self.rank, exc) from None

    def _reduce(self, x: Tensor, op: Any) -> Tensor:
        out = x.detach().clone().contiguous()
        self._call(self.dist.all_reduce, out, op=op)
        return out

    def sum(self, x: Tensor) -> Tensor:
        return self._reduce(x, self.dist.ReduceOp.SUM)

    def max(self, x: Tensor) -> Tensor:
        return self._reduce(x, self.dist.ReduceOp.MAX)

    def mean(self, x: Tensor, weight: float | None = None) -> Tensor:
        if weight is None:
            return self.sum(x) / self.world_size
        # one reduction of [w x, w]: sum_r w_r x_r / sum_r w_r
        packed = torch.cat([(x.detach() * weight).reshape(-1), x.new_full((1,), float(weight))])
        total = self.sum(packed)
        return (total[:-1] / total[-1]).view_as(x)

    def all(self, flag: bool) -> bool:
        return bool(self.max(torch.tensor([0.0 if flag else 1.0], device=self._device())).item() == 0.0)

    def mean_gradients(self, params: Iterable[nn.Parameter], weight: float | None = None) -> None:
        params = list(params)
        if not params:
            return
        flat = torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1) for p in params])
        flat = self.mean(flat, weight)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n

    def broadcast(self, x: Tensor) -> Tensor:
        self._call(self.dist.broadcast, x, src=0)
        return x

    def broadcast_object(self, obj: Any) -> Any:
        holder = [obj]
        self._call(self.dist.broadcast_object_list, holder, src=0)
        return holder[0]

    def broadcast_module(self, module: nn.Module) -> None:
        with torch.no_grad():
            for tensor in (*module.parameters(), *module.buffers()):
                self.broadcast(tensor.data)

    def gather_objects(self, obj: Any) -> list[Any] | None:
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        self._call(self.dist.gather_object, obj, out, dst=0)
        return out

    def moments(self, x: Tensor) -> tuple[Tensor, Tensor, int]:
        x2 = x.reshape(x.shape[0], -1)  # [n, D]
        count = int(self.sum(torch.tensor([float(x2.shape[0])], dtype=torch.float64, device=x.device)).item())
        if count == 0:
            nan = torch.full(x.shape[1:], torch.nan, dtype=x.dtype, device=x.device)
            return nan, nan.clone(), 0
        mean = self.sum(x2.sum(dim=0)) / count  # sum_r sum_i x_ri / n
        var = self.sum((x2 - mean).square().sum(dim=0)) / count  # sum_r sum_i (x_ri - mean)^2 / n
        return mean.view(x.shape[1:]), var.view(x.shape[1:]), count

    def standardize(self, x: Tensor) -> Tensor:
        """The global form of :func:`standardize`: centred by the mean of all ranks' entries, divided by their
        (unbiased) std unless that is rounding noise (std <= 1e-6 max_r |x|) or there is a single entry."""
        mean, var, count = self.moments(x.reshape(-1))
        centred = x - mean
        if count < 2:
            return centred
        std = (var * (count / (count - 1))).sqrt()  # unbiased: sum (x - mean)^2 / (n - 1)
        largest = self.max(x.abs().max() if x.numel() else x.new_zeros(())).clamp_min(1e-8)
        if std <= 1e-6 * largest:
            return centred
        return centred / std

    def barrier(self) -> None:
        self._call(self.dist.barrier)

    def close(self) -> None:
        if self.dist.is_initialized():
            self.dist.destroy_process_group()

    def _device(self) -> torch.device:
        backend = self.dist.get_backend()
        return torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")


SINGLE = Collective()  # the one-process collective every algorithm uses unless the runner hands it another
