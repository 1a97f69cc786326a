"""The control law (app.export.weights) as dependency-free C99.

``policy.h`` declares ``policy_act(const float obs[POLICY_OBS_DIM], float action[POLICY_ACT_DIM])``;
``policy.c`` holds the weights as const arrays and the forward pass, with two
stack buffers of the widest layer and no heap allocation; only ``math.h``.
``policy_main.c`` is an example program: one observation per stdin line, one
action per stdout line. Products are summed in double and rounded to float per
layer, which stays within rounding of PyTorch's float32 matrix products.
"""

from __future__ import annotations

import numpy as np

from app.export.weights import ControlLaw

ACTIVATION_C = {
    "tanh": "tanhf(v)",
    "relu": "(v > 0.0f ? v : 0.0f)",
    "elu": "(v > 0.0f ? v : expf(v) - 1.0f)",
    "silu": "(v / (1.0f + expf(-v)))",
}


def _c_float(value: float) -> str:
    """A float32 value as a C literal that round-trips exactly (9 significant digits)."""
    if np.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    text = f"{float(np.float32(value)):.9g}"
    return text + ("f" if any(c in text for c in ".e") else ".0f")


def _floats(values: np.ndarray) -> str:
    """float32 values as a C initializer list."""
    items = [_c_float(v) for v in np.asarray(values, dtype=np.float32).ravel()]
    lines = [", ".join(items[i : i + 8]) for i in range(0, len(items), 8)]
    return "{\n    " + ",\n    ".join(lines) + "\n}"


def policy_header(law: ControlLaw, task: str) -> str:
    return f"""/* policylab policy for {task}: generated, do not edit. C99, no dependency beyond math.h. */
#ifndef POLICYLAB_POLICY_H
#define POLICYLAB_POLICY_H

#define POLICY_OBS_DIM {law.obs_dim}
#define POLICY_ACT_DIM {law.act_dim}

/* Deterministic control: raw observation (see policy.json for names, order and units)
 * -> actuator command in the actuators' units, clipped to their control range. */
void policy_act(const float obs[POLICY_OBS_DIM], float action[POLICY_ACT_DIM]);

#endif
"""


def policy_source(law: ControlLaw) -> str:
    width = max([law.obs_dim, law.act_dim, *law.hidden_sizes])
    parts = [
        "/* policylab policy: generated, do not edit. */",
        "#include <math.h>",
        '#include "policy.h"',
        "",
        f"#define POLICY_MAX_WIDTH {width}",
        "",
    ]
    if law.normalize:
        parts += [
            f"static const float obs_mean[{law.obs_dim}] = {_floats(law.obs_mean)};",
            f"static const float obs_std[{law.obs_dim}] = {_floats(law.obs_std)};",
            f"static const float obs_clip = {_c_float(law.obs_clip)};",
        ]
    sizes = [law.obs_dim, *law.hidden_sizes, law.act_dim]
    for k, (w, b) in enumerate(zip(law.weights, law.biases, strict=True)):
        parts.append(f"static const float W{k}[{w.shape[0]} * {w.shape[1]}] = {_floats(w)};  /* row-major [out][in] */")
        parts.append(f"static const float b{k}[{b.shape[0]}] = {_floats(b)};")
    parts += [
        f"static const float action_lower[{law.act_dim}] = {_floats(law.action_lower())};",
        f"static const float action_upper[{law.act_dim}] = {_floats(law.action_upper())};",
        f"static const float action_center[{law.act_dim}] = {_floats(law.action_center)};",
        f"static const float action_half_range[{law.act_dim}] = {_floats(law.action_half_range)};",
        "",
        "/* y[j] = b[j] + sum_i W[j][i] x[i], summed in double. */",
        "static void dense(const float *w, const float *b, const float *x, float *y, int in, int out) {",
        "    int i, j;",
        "    for (j = 0; j < out; ++j) {",
        "        double acc = 0.0;",
        "        for (i = 0; i < in; ++i) acc += (double)w[j * in + i] * (double)x[i];",
        "        y[j] = (float)(acc + (double)b[j]);",
        "    }",
        "}",
        "",
        "void policy_act(const float obs[POLICY_OBS_DIM], float action[POLICY_ACT_DIM]) {",
        "    float a[POLICY_MAX_WIDTH], h[POLICY_MAX_WIDTH];",
        "    int i;",
        "    for (i = 0; i < POLICY_OBS_DIM; ++i) {",
    ]
    if law.normalize:
        parts += [
            "        /* y = clip((obs - mean) / std, -c, c) */",
            "        float v = (obs[i] - obs_mean[i]) / obs_std[i];",
            "        a[i] = v < -obs_clip ? -obs_clip : (v > obs_clip ? obs_clip : v);",
        ]
    else:
        parts.append("        a[i] = obs[i];")
    parts.append("    }")
    last = len(law.weights) - 1
    for k in range(len(law.weights)):
        src, dst = ("a", "h") if k % 2 == 0 else ("h", "a")
        parts.append(f"    dense(W{k}, b{k}, {src}, {dst}, {sizes[k]}, {sizes[k + 1]});")
        if k < last:
            parts += [
                f"    for (i = 0; i < {sizes[k + 1]}; ++i) {{",
                f"        float v = {dst}[i];",
                f"        {dst}[i] = {ACTIVATION_C[law.activation]};",
                "    }",
            ]
    out = "h" if last % 2 == 0 else "a"
    parts += [
        "    /* u = center + half_range * clip(mean, -1, 1) on bounded actuators */",
        "    for (i = 0; i < POLICY_ACT_DIM; ++i) {",
        f"        float m = {out}[i];",
        "        m = m < action_lower[i] ? action_lower[i] : m;",
        "        m = m > action_upper[i] ? action_upper[i] : m;",
        "        action[i] = action_half_range[i] * m + action_center[i];",
        "    }",
        "}",
        "",
    ]
    return "\n".join(parts)


EXAMPLE_MAIN = """/* Example controller loop: one observation per stdin line (POLICY_OBS_DIM numbers),
 * one action per stdout line. Build: cc -std=c99 -O2 policy.c policy_main.c -lm */
#include <stdio.h>
#include "policy.h"

int main(void) {
    float obs[POLICY_OBS_DIM], action[POLICY_ACT_DIM];
    int i;
    for (;;) {
        for (i = 0; i < POLICY_OBS_DIM; ++i) {
            if (scanf("%f", &obs[i]) != 1) return i == 0 ? 0 : 1;
        }
        policy_act(obs, action);
        for (i = 0; i < POLICY_ACT_DIM; ++i) printf(i ? " %.9g" : "%.9g", action[i]);
        printf("\\n");
    }
}
"""
