"""What an environment observes: a spec of named fields (shape, dtype, whether the normalizer applies).

A task with one flat vector has the spec ``{"obs": ObsField((obs_dim,))}`` and
observations are plain tensors [N, obs_dim]. A task with several fields (a
camera image beside a state vector) gives a dict of tensors, batched as a
``tensordict.TensorDict`` [N] (indexing, ``.to``, ``torch.cat`` work on all
fields at once); Gymnasium sees a ``Dict`` space. Policies are built from the
spec (:func:`policies.factory.build_policy`). No torch here: ``import envs`` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

FLAT_KEY = "obs"


@dataclass(frozen=True)
class ObsField:
    """One observed field of one environment: shape, dtype ('float32' or 'uint8'), normalized or not."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    normalize: bool = True  # the running normalizer applies (never to images)

    @property
    def is_image(self) -> bool:
        """An image [H, W, C] (uint8 pixels, encoded by a CNN)."""
        return len(self.shape) == 3

    def space(self) -> spaces.Box:
        if self.dtype == "uint8":
            return spaces.Box(0, 255, self.shape, dtype=np.uint8)
        return spaces.Box(-np.inf, np.inf, self.shape, dtype=np.dtype(self.dtype))


ObservationSpec = dict[str, ObsField]


def flat_spec(dim: int) -> ObservationSpec:
    """The spec of one flat vector of ``dim`` entries."""
    return {FLAT_KEY: ObsField((dim,))}


def is_flat(spec: ObservationSpec) -> bool:
    """Whether observations are one plain tensor [N, dim] rather than a dict."""
    return list(spec) == [FLAT_KEY] and len(spec[FLAT_KEY].shape) == 1


def gym_space(spec: ObservationSpec) -> spaces.Space:
    """One environment's Gymnasium space: a Box for a flat spec, a Dict of Boxes otherwise."""
    if is_flat(spec):
        return spec[FLAT_KEY].space()
    return spaces.Dict({key: field.space() for key, field in spec.items()})


def spec_from_space(space: spaces.Dict) -> ObservationSpec:
    """The spec of a Gymnasium Dict space (uint8 boxes are images, not normalized)."""
    return {
        key: ObsField(tuple(box.shape), str(np.dtype(box.dtype)), normalize=np.dtype(box.dtype) != np.uint8)
        for key, box in space.spaces.items()
    }


def observation_spec(env: Any) -> ObservationSpec:
    """What ``env`` observes: a VecEnv's own spec, or a single Gymnasium env's (a Box [obs_dim] or a Dict space)."""
    spec = getattr(env, "observation_spec", None)
    if spec is not None:
        return spec
    space = env.observation_space
    return spec_from_space(space) if hasattr(space, "spaces") else flat_spec(space.shape[0])


def spec_to_dict(spec: ObservationSpec) -> dict[str, dict[str, object]]:
    """JSON-friendly form (checkpoints, policy.json)."""
    return {k: {"shape": list(f.shape), "dtype": f.dtype, "normalize": f.normalize} for k, f in spec.items()}


def spec_from_dict(data: dict[str, dict[str, object]]) -> ObservationSpec:
    return {
        k: ObsField(tuple(int(s) for s in v["shape"]), str(v["dtype"]), bool(v["normalize"]))  # type: ignore[union-attr]
        for k, v in data.items()
    }


__all__ = [
    "FLAT_KEY",
    "ObsField",
    "ObservationSpec",
    "flat_spec",
    "gym_space",
    "is_flat",
    "observation_spec",
    "spec_from_dict",
    "spec_from_space",
    "spec_to_dict",
]
