"""Exact save/restore of a MuJoCo ``MjData`` (state and derived quantities).

``mj_getState`` holds the integration state but not derived fields (body
positions, ``cfrc_ext``...) that some tasks read before their next step, so a
whole ``MjData`` is saved. It is pickled, compressed, and loaded back through
an unpickler that accepts nothing but ``MjData``: a checkpoint cannot run code.
"""

from __future__ import annotations

import io
import pickle
import zlib
from typing import Any

import mujoco
import numpy as np


class _MjDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("mujoco._structs", "MjData"):
            return mujoco.MjData
        raise pickle.UnpicklingError(f"simulator state may only hold MjData, found {module}.{name}")


def dump_mjdata(data: mujoco.MjData) -> np.ndarray:
    """MjData -> compressed bytes as a uint8 array (safe inside a weights-only checkpoint)."""
    return np.frombuffer(zlib.compress(pickle.dumps(data), 1), dtype=np.uint8).copy()


def load_mjdata(model: mujoco.MjModel, data: mujoco.MjData, blob: np.ndarray) -> None:
    """Overwrite ``data`` in place with the MjData saved in ``blob``."""
    saved = _MjDataUnpickler(io.BytesIO(zlib.decompress(np.asarray(blob, dtype=np.uint8).tobytes()))).load()
    if not isinstance(saved, mujoco.MjData):
        raise pickle.UnpicklingError("simulator state is not an MjData")
    mujoco.mj_copyData(data, model, saved)


_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return dict(rng.bit_generator.state)


def rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    name = state.get("bit_generator")
    if name not in _BIT_GENERATORS:
        raise ValueError(f"unknown numpy bit generator {name!r}")
    bit_generator = getattr(np.random, name)()
    bit_generator.state = state
    return np.random.Generator(bit_generator)
