"""Export of policies that read several observation fields (a camera image through a CNN, a state vector).

Such a policy has one input per field, in the spec's order and named after it
(``camera`` uint8 [batch, H, W, 3], ``state`` float32 [batch, 3]), and one
output ``action`` [batch, act_dim]. ONNX comes from ``torch.onnx.export`` of the
same deterministic function PyTorch runs (a CNN is where tracing earns its place
over the hand-built MLP graph); TorchScript traces it too. ``policy.c`` covers
MLP policies over one vector only and is not written for these.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict
from torch import nn

from envs.spec import ObservationSpec, spec_to_dict
from policies.gaussian import GaussianPolicy

OPSET = 17


def c_refusal(spec: ObservationSpec) -> str:
    """Why policy.c is not written for a policy over ``spec``."""
    images = [k for k, f in spec.items() if f.is_image]
    what = f"reads {', '.join(images)} through a CNN" if images else f"reads {len(spec)} observation fields"
    return (
        f"policy.c not written: the C export covers MLP policies over one observation vector, and this policy "
        f"{what}; use policy.onnx (onnxruntime) or policy.pt (libtorch)"
    )


class FieldsPolicy(nn.Module):
    """(field_1 [B, ...], ..., field_k [B, ...]) in spec order -> action [B, act_dim]: the policy's act()."""

    def __init__(self, policy: GaussianPolicy) -> None:
        super().__init__()
        assert policy.spec is not None
        self.policy = policy
        self.keys = list(policy.spec)

    def forward(self, *fields: torch.Tensor) -> torch.Tensor:
        obs = TensorDict(dict(zip(self.keys, fields, strict=True)), batch_size=[fields[0].shape[0]])
        return self.policy.act(obs)


def example_inputs(spec: ObservationSpec, batch: int = 2) -> tuple[torch.Tensor, ...]:
    """Zeros shaped like one batch of each field."""
    return tuple(
        torch.zeros((batch, *f.shape), dtype=torch.uint8 if f.dtype == "uint8" else torch.float32)
        for f in spec.values()
    )


def write_onnx(policy: GaussianPolicy, path: Path) -> None:
    spec = policy.spec
    assert spec is not None
    keys = list(spec)
    axes = {k: {0: "batch"} for k in [*keys, "action"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated; it needs no onnxscript
        torch.onnx.export(
            FieldsPolicy(policy).eval(),
            example_inputs(spec),
            str(path),
            input_names=keys,
            output_names=["action"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def write_torchscript(policy: GaussianPolicy, path: Path, meta_json: str) -> None:
    assert policy.spec is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(FieldsPolicy(policy).eval(), example_inputs(policy.spec))
        torch.jit.save(traced, str(path), _extra_files={"policy.json": meta_json})


def io_description(spec: ObservationSpec, act_dim: int) -> dict[str, Any]:
    """policy.json's ``io`` for a policy with one input per field."""
    return {
        "inputs": [{"name": k, "shape": ["batch", *f.shape], "dtype": f.dtype} for k, f in spec.items()],
        "output": "action",
        "output_shape": ["batch", act_dim],
        "fields": spec_to_dict(spec),
        "pixels": "uint8 RGB, rows top to bottom; the network scales them by 1/255 itself",
    }


def normalizer_description(policy: GaussianPolicy) -> dict[str, Any]:
    """Per normalized field: mean, std (sqrt(var + eps)) and clip of clip((x - mean) / std)."""
    out: dict[str, Any] = {"formula": "clip((x - mean) / std, -clip, clip) for the fields listed; others raw"}
    for key in getattr(policy.normalizer, "keys", []):
        norm = policy.normalizer.fields[key]
        std = torch.sqrt(norm.var + norm.eps)
        out[key] = {"mean": norm.mean.tolist(), "std": std.tolist(), "clip": norm.clip}
    return out


def onnx_fields_implementation(path: Path, keys: list[str]) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda obs: session.run(["action"], {k: obs[k] for k in keys})[0]


def torchscript_fields_implementation(path: Path, keys: list[str]) -> Any:
    module = torch.jit.load(str(path), map_location="cpu")

    def run(obs: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            return module(*[torch.from_numpy(obs[k]) for k in keys]).numpy()

    return run


__all__ = [
    "FieldsPolicy",
    "c_refusal",
    "io_description",
    "normalizer_description",
    "onnx_fields_implementation",
    "torchscript_fields_implementation",
    "write_onnx",
    "write_torchscript",
]
