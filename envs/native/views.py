"""What both simulators share: MjData fields bound once as torch attributes, and the state they save.

A simulator (:class:`~envs.native.batch_sim.BatchSim`, :class:`~envs.native.warp_sim.WarpSim`)
derives from :class:`FieldViews` and supplies one thing: :meth:`FieldViews._field`, a
torch view [N, ...] of any MjData field of its worlds. ``sim.<field>`` is then a plain
attribute (no lookup per read in task code), ``get_state``/``set_state`` round-trip the
integration state, and a field nobody bound is an error that says where to declare it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor

# The state fields saved for an exact resume: mjSTATE_INTEGRATION without mocap/eq/user data,
# which the shipped tasks do not use.
STATE_FIELDS = ("time", "qpos", "qvel", "act", "qacc_warmstart", "ctrl", "qfrc_applied", "xfrc_applied")
# Fields every simulator binds: the state a task writes.
TASK_STATE = ("qpos", "qvel", "ctrl")
# Inputs of mj_forward that it never writes; every other bound field is derived (forward recomputes it).
FORWARD_INPUTS = ("qpos", "qvel", "ctrl", "act")


class FieldViews:
    """MjData fields of ``num_worlds`` worlds as torch views [N, ...], bound once, and the state round trip.

    The simulator sets ``num_worlds`` and ``cfrc_ext_post`` [N, nbody, 6], calls
    :meth:`_init_views` in its constructor once its worlds exist, and implements
    :meth:`_field`, :meth:`model_field` (recording its views in ``_model_views``),
    :meth:`set_const` and :meth:`forward`.
    """

    num_worlds: int
    cfrc_ext_post: Tensor
    _bound: list[str]  # bound field names, in binding order
    _model_views: dict[str, Tensor]  # model fields given per-world values: name -> view [N, ...]

    def _field(self, name: str) -> Tensor:
        """A torch view [N, ...] of MjData field ``name`` of every world (the backend's)."""
        raise NotImplementedError

    def _init_views(self, fields: Iterable[str]) -> None:
        """Start with :data:`TASK_STATE` and the derived ``fields`` a task reads bound, no model field per-world."""
        self._bound, self._model_views = [], {}
        for name in (*TASK_STATE, *fields):
            self.bind(name)

    def bind(self, name: str) -> Tensor:
        """The torch view [N, ...] of MjData field ``name``, also set as ``self.<name>`` (bound once).

        The view shares the simulator's memory, refreshed by every later step, reset and forward (on the
        cpu backend, a derived field bound after construction holds its values from the next of those on).
        """
        if name not in self._bound:
            setattr(self, name, self._field(name))  # the tensor keeps the backend's array alive
            self._bound.append(name)
        return getattr(self, name)

    def derived_fields(self) -> list[str]:
        """The bound fields that ``mj_forward`` computes (all but its inputs)."""
        return [name for name in self._bound if name not in FORWARD_INPUTS]

    def __getattr__(self, name: str) -> Tensor:  # only reached for names that are not attributes
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(f"field '{name}' is not bound; add it to the task's fields")

    def model_field(self, name: str) -> Tensor:
        """Per-world values of model field ``name``: a writable view [N, ...] (the backend's)."""
        raise NotImplementedError

    def model_fields(self) -> dict[str, Tensor]:
        """Model fields given per-world values so far: name -> view [N, ...]."""
        return dict(self._model_views)

    def set_const(self, ids: Tensor | None = None) -> None:
        """``mj_setConst`` on worlds ``ids`` (the backend's)."""
        raise NotImplementedError

    def forward(self, ids: Tensor | None = None) -> None:
        """``mj_forward`` on worlds ``ids`` (the backend's)."""
        raise NotImplementedError

    def get_state(self) -> dict[str, np.ndarray]:
        """Integration state of every world, the per-world model fields and ``cfrc_ext_post`` (host numpy copies)."""
        state = {f: self._field(f).cpu().numpy().copy() for f in STATE_FIELDS}
        state |= {f"model.{k}": v.cpu().numpy().copy() for k, v in self._model_views.items()}
        state["cfrc_ext_post"] = self.cfrc_ext_post.cpu().numpy().copy()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` (of this backend or the other); derived fields are recomputed by ``forward``."""
        for key, value in state.items():
            if key.startswith("model."):
                self.model_field(key.removeprefix("model.")).copy_(torch.as_tensor(value))
            elif key in STATE_FIELDS:
                view = self._field(key)
                view.copy_(torch.as_tensor(value).reshape(view.shape))
        if any(k.startswith("model.") for k in state):
            self.set_const()
        self.forward()
        self.cfrc_ext_post.copy_(torch.as_tensor(state["cfrc_ext_post"]))


__all__ = ["FORWARD_INPUTS", "STATE_FIELDS", "TASK_STATE", "FieldViews"]
