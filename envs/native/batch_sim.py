"""The ``cpu`` simulator: N simulations of one MuJoCo model on ``mujoco.batch.Batch``, fields as torch views.

The batch keeps every simulation's integration state in rows of one array and
steps them on a thread pool in C. :class:`BatchSim` binds the MjData fields a
task reads once, and wraps each bound numpy array in a torch tensor that shares
its memory: state fields (qpos, qvel, ctrl, ...) are writable views, derived
fields (xpos, cinert, ...) read-only views the batch refreshes in place after
every call. Task code therefore reads and writes [N, ...] float64 tensors and
never copies, nor loops over simulations.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import mujoco
import numpy as np
import torch
from mujoco import batch as mjbatch
from torch import Tensor

from envs.native.views import FieldViews
from envs.placement import available_cores

# Warnings after which MuJoCo resets a simulation itself: its state went NaN, infinite or huge.
UNSTABLE_WARNINGS = (
    int(mujoco.mjtWarning.mjWARN_BADQPOS),
    int(mujoco.mjtWarning.mjWARN_BADQVEL),
    int(mujoco.mjtWarning.mjWARN_BADQACC),
)


def torch_view(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory (read-only arrays too: we never write those)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "The given NumPy array is not writable"
        return torch.from_numpy(array)


class BatchSim(FieldViews):
    """The ``cpu`` :class:`~envs.native.simulator.Simulator`: ``num_worlds`` simulations of ``model`` on a batch.

    ``sim.<field>`` is a torch view [N, ...] of each field bound at
    construction (qpos, qvel, ctrl and ``fields``), a plain attribute (:class:`FieldViews`).
    ``rne_post`` keeps one MjData per simulation (a persistent batch) so that
    :meth:`rne_post_constraint` can run ``mj_rnePostConstraint`` on each after
    a step, as Gymnasium does to fill ``cfrc_ext``.
    """

    device = torch.device("cpu")

    def __init__(
        self,
        model: mujoco.MjModel,
        num_worlds: int,
        fields: Iterable[str] = (),
        nthread: int = 0,
        rne_post: bool = False,
    ) -> None:
        self.model = model
        self.num_worlds = num_worlds
        self.nthread = nthread or available_cores()
        self.batch = mjbatch.Batch(model, num_worlds, nthread=self.nthread, persistent=rne_post)
        self.rne_post = rne_post
        self._init_views(fields)
        self._warnings = self._unstable_counts()
        # cfrc_ext as Gymnasium sees it: computed after the step, zero after a reset.
        self.cfrc_ext_post = torch.zeros((num_worlds, model.nbody, 6), dtype=torch.float64)
        self._scratch = mujoco.MjData(model) if rne_post else None

    def _field(self, name: str) -> Tensor:
        """The torch view [N, ...] of the batch's MjData field ``name``."""
        return torch_view(self.batch.bind(name))

    def model_field(self, name: str) -> Tensor:
        """Per-simulation values of model field ``name``: a writable torch view [N, ...]."""
        if name not in self._model_views:
            self._model_views[name] = torch_view(self.batch.expand(name))
        return self._model_views[name]

    def _ids(self, ids: Tensor | None) -> np.ndarray | None:
        """World indices as the batch takes them (int64 [k]), from indices or a bool mask [N]."""
        if ids is None:
            return None
        ids = ids.detach().cpu()
        if ids.dtype == torch.bool:
            ids = ids.nonzero().squeeze(1)
        return ids.numpy().astype(np.int64)

    def step(self, nstep: int) -> Tensor:
        """Advance every simulation by ``nstep`` mj_step calls; returns unstable [N] (bool).

        A simulation is unstable if MuJoCo warned that its state went bad (it
        then resets that simulation itself) or raised an error (the batch then
        leaves it at its state before the call).
        """
        failed = np.zeros(self.num_worlds, dtype=bool)
        try:
            self.batch.step(nstep=nstep)
        except mjbatch.SimulationError as exc:
            failed[np.asarray(exc.ids, dtype=np.int64)] = True
        counts = self._unstable_counts()
        failed |= (counts > self._warnings).any(axis=1)
        self._warnings = counts
        if self.rne_post:
            self.rne_post_constraint()
        return torch.from_numpy(failed)

    def _unstable_counts(self) -> np.ndarray:
        return np.array(self.batch.warning[:, UNSTABLE_WARNINGS, 1], copy=True)

    def rne_post_constraint(self) -> None:
        """cfrc_ext [N, nbody, 6] as ``mj_rnePostConstraint`` gives it after ``mj_step``.

        Gymnasium calls it after every step. Inside ``mj_step`` a sensor would
        compute it at the step's first evaluation, while with the RK4
        integrator of Ant and Humanoid the MjData left by ``mj_step`` holds the
        contacts of the last Runge-Kutta stage, which is what Gymnasium reports.
        ``mujoco.batch`` has no batched call for it, so this is the one loop
        over simulations: one C call per simulation on its persistent MjData.
        """
        scratch, model, out = self._scratch, self.model, self.cfrc_ext_post.numpy()
        assert scratch is not None
        for i in range(self.num_worlds):
            self.batch.get_data(i, scratch)
            mujoco.mj_rnePostConstraint(model, scratch)
            out[i] = scratch.cfrc_ext

    def reset(self, ids: Tensor | None = None) -> None:
        """``mj_resetData`` on simulations ``ids`` (all if None); derived fields are computed by :meth:`forward`."""
        rows = self._ids(ids)
        self.batch.reset(rows, stage=int(mujoco.mjtStage.mjSTAGE_NONE))
        self.cfrc_ext_post[slice(None) if rows is None else torch.from_numpy(rows)] = 0.0
        self._warnings = self._unstable_counts()  # mj_resetData clears the reset simulations' counters

    def forward(self, ids: Tensor | None = None) -> None:
        """``mj_forward`` on simulations ``ids`` (all if None), as Gymnasium's ``set_state`` does."""
        self.batch.forward(self._ids(ids))

    def set_const(self, ids: Tensor | None = None) -> None:
        """``mj_setConst`` after changing masses or other constants' inputs."""
        self.batch.set_const(self._ids(ids))

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (:class:`FieldViews`); the baseline of MuJoCo's warning counts is taken anew."""
        super().set_state(state)
        self._warnings = self._unstable_counts()

    def model_of(self, index: int) -> mujoco.MjModel:
        """Simulation ``index``'s model (with its randomized fields)."""
        return self.batch.get_model(index) if self._model_views else self.model

    def data_of(self, index: int) -> mujoco.MjData:
        """A fresh MjData with simulation ``index``'s state and derived fields (for rendering)."""
        model = self.model_of(index)
        data = self.batch.get_data(index)
        mujoco.mj_forward(model, data)
        return data
