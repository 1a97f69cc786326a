"""The control law (app.export.weights) as an ONNX graph, built node by node.

Input ``obs`` [batch, obs_dim] float32, output ``action`` [batch, act_dim] float32.
Nodes: Sub, Div, Clip (normalizer); Gemm + activation per hidden layer; Gemm
(mean); Max, Min (per-dimension clip to [-1, 1]); Mul, Add (actuator units).
Building the graph directly keeps the exporter independent of PyTorch's
tracing exporters and makes every operation explicit.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from app.export.weights import ControlLaw

OPSET = 17


def _activation_nodes(kind: str, x: str, out: str) -> list[onnx.NodeProto]:
    if kind == "tanh":
        return [helper.make_node("Tanh", [x], [out])]
    if kind == "relu":
        return [helper.make_node("Relu", [x], [out])]
    if kind == "elu":
        return [helper.make_node("Elu", [x], [out], alpha=1.0)]
    if kind == "silu":  # x * sigmoid(x)
        return [helper.make_node("Sigmoid", [x], [f"{out}_sig"]), helper.make_node("Mul", [x, f"{out}_sig"], [out])]
    raise ValueError(f"activation '{kind}' has no ONNX form here")


def build_onnx(law: ControlLaw, metadata: dict[str, Any]) -> onnx.ModelProto:
    """The ONNX model of ``law``; each top-level ``metadata`` entry becomes a JSON metadata_props value."""
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    x = "obs"
    if law.normalize:
        # y = clip((obs - mean) / std, -c, c)
        nodes.append(helper.make_node("Sub", [x, const("obs_mean", law.obs_mean)], ["obs_centered"]))
        nodes.append(helper.make_node("Div", ["obs_centered", const("obs_std", law.obs_std)], ["obs_scaled"]))
        lo, hi = const("obs_clip_low", np.array(-law.obs_clip)), const("obs_clip_high", np.array(law.obs_clip))
        nodes.append(helper.make_node("Clip", ["obs_scaled", lo, hi], ["obs_normalized"]))
        x = "obs_normalized"
    last = len(law.weights) - 1
    for k, (w, b) in enumerate(zip(law.weights, law.biases, strict=True)):
        # z = x W^T + b
        z = "mean" if k == last else f"z{k}"
        nodes.append(helper.make_node("Gemm", [x, const(f"W{k}", w), const(f"b{k}", b)], [z], transB=1))
        if k < last:
            nodes += _activation_nodes(law.activation, z, f"h{k}")
            x = f"h{k}"
    # u = center + half_range * clip(mean, -1, 1) (infinite bounds leave unbounded actuators alone)
    nodes.append(helper.make_node("Max", ["mean", const("action_lower", law.action_lower())], ["mean_lo"]))
    nodes.append(helper.make_node("Min", ["mean_lo", const("action_upper", law.action_upper())], ["mean_clipped"]))
    nodes.append(helper.make_node("Mul", ["mean_clipped", const("action_half_range", law.action_half_range)], ["u0"]))
    nodes.append(helper.make_node("Add", ["u0", const("action_center", law.action_center)], ["action"]))

    graph = helper.make_graph(
        nodes,
        "policylab_policy",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", law.obs_dim])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", law.act_dim])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="policylab", ir_version=8
    )
    helper.set_model_props(model, {key: json.dumps(value) for key, value in metadata.items()})
    onnx.checker.check_model(model, full_check=True)
    return model
