"""The simulator seam: what the native tasks and :class:`~envs.native.vecenv.NativeVecEnv` see of a backend.

A simulator holds ``num_worlds`` copies ("worlds") of one MuJoCo model and
shows their MjData fields as torch tensors [N, ...] on its ``device``, views
that the simulator refreshes in place: the state fields ``qpos`` [N, nq],
``qvel`` [N, nv] and ``ctrl`` [N, nu] are writable, and every derived field a
task declares in ``NativeTask.fields`` (``xpos`` [N, nbody, 3], ``cinert``
[N, nbody, 10], ...) is a read-only attribute of the same name. Task code
touches nothing else, so one task serves every backend: ``cpu``
(:class:`~envs.native.batch_sim.BatchSim`, ``mujoco.batch``, float64) and
``gpu`` (:class:`~envs.native.warp_sim.WarpSim`, MuJoCo Warp, float32). Both bind
their fields and save their state through :class:`~envs.native.views.FieldViews`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import mujoco
import torch
from torch import Tensor

if TYPE_CHECKING:
    from envs.native.task import NativeTask

# The backends that have a simulator (TaskConfig.backend values other than "gym").
SIMULATOR_BACKENDS = ("cpu", "gpu")


@runtime_checkable
class Simulator(Protocol):
    """``num_worlds`` simulations of ``model`` on ``device``; fields are torch views [N, ...].

    ``ids`` arguments select worlds: a long tensor of indices [k] or a bool
    mask [N] (on any device); None means every world.
    """

    model: mujoco.MjModel  # the shared model (per-world values of some fields: :meth:`model_field`)
    num_worlds: int
    device: torch.device
    # float64 on the cpu backend, float32 on the gpu one (task code promotes through its float64 constants)
    qpos: Tensor  # [N, nq], writable
    qvel: Tensor  # [N, nv], writable
    ctrl: Tensor  # [N, nu], writable
    # [N, nbody, 6]: cfrc_ext as mj_rnePostConstraint leaves it after a step (Gymnasium's
    # contact forces), zero after a reset; kept up to date only for rne_post simulators.
    cfrc_ext_post: Tensor

    def __getattr__(self, name: str) -> Tensor:
        """A derived MjData field the task declared at construction: read-only view [N, ...]."""
        ...

    def step(self, nstep: int) -> Tensor:
        """Advance every world by ``nstep`` mj_step calls; returns unstable [N] (bool, on ``device``).

        A world is unstable if its state went NaN, infinite or huge during the call.
        """
        ...

    def reset(self, ids: Tensor | None = None) -> None:
        """``mj_resetData`` on worlds ``ids``; others are left untouched. Derived fields wait for :meth:`forward`."""
        ...

    def forward(self, ids: Tensor | None = None) -> None:
        """``mj_forward`` on worlds ``ids``: derived fields from the current state."""
        ...

    def model_field(self, name: str) -> Tensor:
        """Per-world values of model field ``name`` (``body_mass`` [N, nbody] ...): a writable view.

        The first call gives every world its own copy of the model's values.
        """
        ...

    def model_fields(self) -> dict[str, Tensor]:
        """The model fields given per-world values so far: name -> view [N, ...]."""
        ...

    def set_const(self, ids: Tensor | None = None) -> None:
        """``mj_setConst`` on worlds ``ids``, after changing masses or other inputs of derived constants."""
        ...

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue exactly: integration state, per-world model fields, ``cfrc_ext_post``."""
        ...

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s result; derived fields are recomputed."""
        ...

    def model_of(self, index: int) -> mujoco.MjModel:
        """World ``index``'s model, with its per-world field values (for rendering)."""
        ...

    def data_of(self, index: int) -> mujoco.MjData:
        """A fresh MjData with world ``index``'s state and derived fields (for rendering)."""
        ...


def make_simulator(
    backend: str,
    task_cls: type[NativeTask],
    num_worlds: int,
    *,
    nthread: int = 0,
    nconmax: int = 0,
    njmax: int = 0,
    device: str | None = None,
    options: Any = None,
) -> Simulator:
    """The simulator of ``num_worlds`` worlds of ``task_cls``'s model for ``backend``.

    ``cpu``: BatchSim with ``nthread`` simulation threads (0: one per available
    core). ``gpu``: WarpSim on ``device`` (a Warp device name; None: CUDA when
    torch and Warp see one, else Warp's CPU device) with ``nconmax`` contacts
    and ``njmax`` constraint rows per world (0: the task's own sizes). ``options``: the task's config
    section, for a model built from it.
    """
    if backend == "cpu":
        from envs.native.batch_sim import BatchSim

        return BatchSim(
            task_cls.load_model(options),
            num_worlds,
            fields=task_cls.fields,
            nthread=nthread,
            rne_post=task_cls.rne_post,
        )
    if backend == "gpu":
        from envs.native.warp_sim import WarpSim

        return WarpSim(
            task_cls.load_model(options),
            num_worlds,
            fields=task_cls.fields,
            rne_post=task_cls.rne_post,
            nconmax=nconmax or task_cls.nconmax,
            njmax=njmax or task_cls.njmax,
            device=device,
        )
    raise ValueError(f"no simulator for backend '{backend}'; native backends: {', '.join(SIMULATOR_BACKENDS)}")
