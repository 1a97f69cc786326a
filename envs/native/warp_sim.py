"""The ``gpu`` simulator: N worlds of one MuJoCo model on MuJoCo Warp, fields as zero-copy torch views.

``mujoco_warp`` keeps every world's MjData fields in Warp arrays [N, ...] on
one device (a CUDA GPU, or Warp's CPU device for tests). :class:`WarpSim`
shows them to the task as torch tensors through ``wp.to_torch``, which shares
the memory, so observations, rewards, actions and resets never leave the
device. The step (``nstep`` mj_steps, then ``rne_postconstraint`` where the task
reads ``cfrc_ext``) and the forward pass are captured once in a graph (a CUDA
graph on a GPU, Warp's recorded launch stream on the CPU) and replayed.

How it differs from the ``cpu`` backend (:class:`~envs.native.batch_sim.BatchSim`):

- float32 fields instead of float64 (MuJoCo Warp computes in float32). The
  task code is the same; its float64 constants promote what they touch.
- The constraint solver: MuJoCo Warp has CG and Newton but not PGS, so a model
  that asks for PGS (Gymnasium's Humanoid) runs with Newton here
  (:func:`warp_model`). All three solve the same convex problem; they differ
  in how far they get within their iterations and tolerance, and Warp raises
  the tolerance to at least 1e-6 for float32.
- Contacts and constraint rows live in buffers of fixed size: ``nconmax``
  contacts per world on average in one pool shared by all worlds, ``njmax``
  rows per world. MuJoCo Warp never resets a world itself and, when a buffer
  overflows, drops what does not fit; here a world whose rows overflowed, or
  that holds at least its share of an overflowed contact pool, or whose state
  went NaN, infinite or above 1e10 (MuJoCo's own bad-state bound), is
  reported by :meth:`WarpSim.step` as unstable, so that the VecEnv resets it
  and counts it.
- ``forward``, ``set_const`` of a subset of worlds run on every world (Warp
  has no per-world variant) and then put back the derived fields the task
  reads in the worlds outside the subset, so that the other worlds look
  untouched, as on the cpu backend.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import mujoco
import numpy as np
import torch
from torch import Tensor

from envs.native.views import STATE_FIELDS, FieldViews

# MuJoCo's bound for a bad qpos/qvel/qacc (mjMAXVAL in mj_checkPos/Vel/Acc).
MAX_STATE = 1e10
# Model fields that mj_setConst derives from the masses: per-world as soon as the masses are.
MASS_DERIVED = ("body_subtreemass", "body_invweight0", "dof_invweight0", "actuator_acc0", "tendon_invweight0")
# Warp's solver tolerance floor for float32 (mujoco_warp.put_model raises a lower one to this).
WARP_MIN_TOLERANCE = 1e-6


def warp_model(model: mujoco.MjModel) -> mujoco.MjModel:
    """The model as this backend runs it: a copy with PGS replaced by Newton and Warp's tolerance floor.

    The cpu backend run on this model uses the same solver settings as the gpu
    backend (the parity tests compare them so).
    """
    model = copy.copy(model)
    if model.opt.solver == mujoco.mjtSolver.mjSOL_PGS:
        model.opt.solver = mujoco.mjtSolver.mjSOL_NEWTON
    model.opt.tolerance = max(float(model.opt.tolerance), WARP_MIN_TOLERANCE)
    return model


def import_warp() -> Any:
    """``warp``, initialized without its banner and per-module load lines."""
    import warp as wp

    wp.config.log_level = wp.LOG_WARNING  # no banner, no line per kernel module loaded
    wp.init()
    return wp


def default_device() -> str:
    """The gpu backend's device when none is named: :mod:`envs.placement`'s rule (CUDA where torch sees it)."""
    from envs.placement import resolve_placement

    return resolve_placement("gpu", native=True).simulator_device


class WarpSim(FieldViews):
    """The ``gpu`` :class:`~envs.native.simulator.Simulator`: ``num_worlds`` worlds of ``model`` on MuJoCo Warp.

    ``model`` is run as :func:`warp_model` gives it (``self.model``).
    ``nconmax``: contacts per world in the shared pool (None: MuJoCo Warp's
    default); ``njmax``: constraint rows per world. ``device``: a Warp device
    name (None: :func:`default_device`). ``graph``: replay captured graphs
    (default) or launch every kernel from Python each call (slower; for
    debugging). Raises ``NotImplementedError`` or ``ValueError`` (MuJoCo Warp's)
    for a model it cannot run.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        num_worlds: int,
        fields: Iterable[str] = (),
        *,
        rne_post: bool = False,
        nconmax: int | None = None,
        njmax: int | None = None,
        device: str | None = None,
        graph: bool = True,
    ) -> None:
        wp = import_warp()
        import mujoco_warp as mjw

        self._wp, self._mjw = wp, mjw
        self.model = warp_model(model)
        self.num_worlds = num_worlds
        self.rne_post = rne_post
        self.wp_device = wp.get_device(device or default_device())
        self.device = torch.device("cuda", self.wp_device.ordinal) if self.wp_device.is_cuda else torch.device("cpu")
        self.use_graph = graph
        with wp.ScopedDevice(self.wp_device):
            self.m = mjw.put_model(self.model)
            self.m.opt.warn_overflow = 0  # overflows are reported per world by step(), not printed
            self.d = mjw.make_data(self.model, nworld=num_worlds, nconmax=nconmax, njmax=njmax)
            self._warm_up(nconmax, njmax)
        self.nconmax = self.d.naconmax // num_worlds
        self.njmax = self.d.njmax
        self._shapes = _mjdata_shapes(self.model)
        self._init_views(fields)
        self._qacc = self._field("qacc")
        self._overflow = wp.to_torch(self.d.overflow)
        self._contact_world = wp.to_torch(self.d.contact.worldid)  # [naconmax]
        self._nacon = wp.to_torch(self.d.nacon)  # [1]
        self._cfrc_ext = self._field("cfrc_ext") if rne_post else None
        self.cfrc_ext_post = torch.zeros((num_worlds, self.model.nbody, 6), dtype=torch.float32, device=self.device)
        self._graphs: dict[Any, Any] = {}
        self._all_mask = torch.ones(num_worlds, dtype=torch.bool, device=self.device)
        self._reset_mask = torch.zeros(num_worlds, dtype=torch.bool, device=self.device)
        self._reset_mask_wp = wp.from_torch(self._reset_mask, dtype=wp.bool)
        self._torch_stream: Any = None
        if self.wp_device.is_cuda:  # torch work on Warp's arrays is ordered with Warp's stream, both ways
            self._torch_stream = torch.cuda.ExternalStream(wp.get_stream(self.wp_device).cuda_stream)
        self.reset()
        self.forward()

    # -- fields ------------------------------------------------------------------

    def _warm_up(self, nconmax: int | None, njmax: int | None) -> None:
        """Compile every kernel of step/forward/reset on a one-world scratch Data (before any capture)."""
        mjw = self._mjw
        scratch = mjw.make_data(self.model, nworld=1, nconmax=nconmax, njmax=njmax)
        mjw.reset_data(self.m, scratch)
        mjw.reset_data(self.m, scratch, reset=self._wp.ones(1, dtype=bool))
        mjw.forward(self.m, scratch)
        mjw.step(self.m, scratch)
        if self.rne_post:
            mjw.rne_postconstraint(self.m, scratch)
        self._wp.synchronize_device(self.wp_device)

    def _field(self, name: str) -> Tensor:
        """Zero-copy torch view [N, ...] of Warp Data field ``name``, shaped as MuJoCo's MjData field."""
        array = getattr(self.d, name, None)
        if array is None or name not in self._shapes:
            raise AttributeError(f"field '{name}' is not an MjData field MuJoCo Warp has")
        return self._wp.to_torch(array).view(self.num_worlds, *self._shapes[name])

    def model_field(self, name: str) -> Tensor:
        """Per-world values of model field ``name``: a writable view [N, ...] (the first call copies the shared one)."""
        if name not in self._model_views:
            self._expand(name)
            shape = np.shape(getattr(self.model, name))
            self._model_views[name] = self._wp.to_torch(getattr(self.m, name)).view(self.num_worlds, *shape)
            if name == "body_mass":
                for derived in MASS_DERIVED:
                    if np.size(getattr(self.model, derived)):
                        self._expand(derived)
        return self._model_views[name]

    def _expand(self, name: str) -> None:
        """Give model field ``name`` one row per world (Warp reads row ``world % rows``); graphs are recaptured."""
        wp = self._wp
        shared = getattr(self.m, name)
        if shared.shape[0] == self.num_worlds:
            return
        expanded = wp.empty((self.num_worlds, *shared.shape[1:]), dtype=shared.dtype, device=self.wp_device)
        wp.to_torch(expanded).copy_(wp.to_torch(shared).expand(self.num_worlds, *wp.to_torch(shared).shape[1:]))
        setattr(self.m, name, expanded)
        self._graphs.clear()  # the captured launches point at the old array

    # -- running ------------------------------------------------------------------

    def _run(self, key: Any, body: Callable[[], None]) -> None:
        """Run ``body`` (Warp launches on the whole batch): replay its captured graph, captured on first use."""
        wp = self._wp
        if self._torch_stream is not None:
            self._torch_stream.wait_stream(torch.cuda.current_stream(self.device))
        with wp.ScopedDevice(self.wp_device):
            if not self.use_graph:
                body()
            else:
                graph = self._graphs.get(key)
                if graph is None:
                    with wp.ScopedCapture(device=self.wp_device) as capture:
                        body()
                    graph = self._graphs[key] = capture.graph
                wp.capture_launch(graph)
        if self._torch_stream is not None:
            torch.cuda.current_stream(self.device).wait_stream(self._torch_stream)

    def step(self, nstep: int) -> Tensor:
        """Advance every world by ``nstep`` mj_steps; returns unstable [N] (bool, on ``device``).

        Unstable: rows or CCD contacts overflowed, the shared contact pool
        overflowed while the world held at least its share (``nconmax``) of it,
        or qpos/qvel/qacc are not finite or above 1e10.
        """
        m, d, mjw = self.m, self.d, self._mjw

        def body() -> None:
            d.overflow.zero_()
            for _ in range(nstep):
                mjw.step(m, d)
            if self.rne_post:
                mjw.rne_postconstraint(m, d)

        self._run(("step", nstep), body)
        if self._cfrc_ext is not None:
            self.cfrc_ext_post.copy_(self._cfrc_ext)
        return self.unstable()

    def unstable(self) -> Tensor:
        """Worlds [N] (bool) that overflowed a buffer or hold a bad state (see :meth:`step`); no host sync."""
        from mujoco_warp import OverflowType as Overflow

        per_world = int(Overflow.NEFC | Overflow.NJMAX_NNZ | Overflow.CCD | Overflow.EPA_HORIZON | Overflow.HFIELD)
        pool = int(Overflow.BROADPHASE | Overflow.NARROWPHASE)
        flags = self._overflow
        bad = (flags & per_world) != 0
        # Which worlds lost contacts to a full pool is unknown: blame those that hold at least their share.
        kept = self._contact_world
        valid = torch.arange(kept.shape[0], device=self.device) < self._nacon
        held = torch.zeros(self.num_worlds, dtype=torch.int32, device=self.device)
        held.scatter_add_(0, kept.clamp(0, self.num_worlds - 1).long(), valid.int())
        bad |= ((flags & pool) != 0) & (held >= self.nconmax)
        for state in (self.qpos, self.qvel, self._qacc):
            bad |= ~(state.abs() <= MAX_STATE).all(dim=1)  # NaN fails the comparison too
        return bad

    def _mask(self, ids: Tensor | None) -> Tensor:
        """World selection as a bool mask [N] on the device (no host sync)."""
        if ids is None:
            return self._all_mask
        ids = ids.to(self.device)
        if ids.dtype == torch.bool:
            return ids
        mask = torch.zeros(self.num_worlds, dtype=torch.bool, device=self.device)
        mask[ids] = True
        return mask

    def reset(self, ids: Tensor | None = None) -> None:
        """``mj_resetData`` on worlds ``ids`` (all if None); derived fields wait for :meth:`forward`."""
        mask = self._mask(ids)
        self._reset_mask.copy_(mask)  # the captured reset reads this array
        self._run("reset", lambda: self._mjw.reset_data(self.m, self.d, reset=self._reset_mask_wp))
        self.cfrc_ext_post.masked_fill_(mask.view(-1, 1, 1), 0.0)

    def _on_subset(self, ids: Tensor | None, key: str, body: Callable[[], None]) -> None:
        """Run ``body`` on every world; outside ``ids`` put the derived fields the task reads back."""
        if ids is None:
            self._run(key, body)
            return
        keep = ~self._mask(ids)
        saved = [(view, view.clone()) for view in (getattr(self, f) for f in self.derived_fields())]
        self._run(key, body)
        for view, before in saved:
            view.copy_(torch.where(keep.view(-1, *([1] * (view.dim() - 1))), before, view))

    def forward(self, ids: Tensor | None = None) -> None:
        """``mj_forward`` on worlds ``ids`` (all if None): their derived fields from their current state."""
        self._on_subset(ids, "forward", lambda: self._mjw.forward(self.m, self.d))

    def set_const(self, ids: Tensor | None = None) -> None:
        """``mj_setConst`` after changing masses: constants of every world from its own masses."""

        def body() -> None:
            self._mjw.set_const(self.m, self.d)

        # set_const allocates scratch arrays per call: launched, not captured.
        use_graph, self.use_graph = self.use_graph, False
        try:
            self._on_subset(ids, "set_const", body)
        finally:
            self.use_graph = use_graph

    # -- state (get_state, set_state: FieldViews) -----------------------------------

    def model_of(self, index: int) -> mujoco.MjModel:
        """World ``index``'s model with its per-world field values (a host MjModel, float64)."""
        if not self._model_views:
            return self.model
        model = copy.copy(self.model)
        for name, view in self._model_views.items():
            getattr(model, name)[...] = view[index].cpu().numpy()
        if "body_mass" in self._model_views:
            mujoco.mj_setConst(model, mujoco.MjData(model))
        return model

    def data_of(self, index: int) -> mujoco.MjData:
        """A host MjData with world ``index``'s state, derived fields by ``mj_forward`` (for rendering)."""
        model = self.model_of(index)
        data = mujoco.MjData(model)
        for name in STATE_FIELDS:
            value = self._field(name)[index].cpu().numpy()
            if name == "time":
                data.time = float(value)
            else:
                getattr(data, name)[...] = value
        mujoco.mj_forward(model, data)
        return data


def _mjdata_shapes(model: mujoco.MjModel) -> dict[str, tuple[int, ...]]:
    """Shape of each MjData array field of ``model`` (one world), for views shaped as MuJoCo's."""
    data = mujoco.MjData(model)
    shapes = {}
    for name in dir(data):
        if name.startswith("_"):
            continue
        try:
            value = getattr(data, name)
        except Exception:  # some properties need arguments or are not arrays
            continue
        if isinstance(value, np.ndarray):
            shapes[name] = value.shape
        elif isinstance(value, float) and name == "time":
            shapes[name] = ()
    return shapes
