"""Check that every exported implementation computes the same actions as PyTorch.

Each implementation is a function obs [B, obs_dim] float32 -> action [B, act_dim];
the report holds the largest absolute difference from the PyTorch policy on
each observation set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict

from app.errors import PolicylabError
from envs.vecenv import VecEnv
from policies.gaussian import GaussianPolicy

TOLERANCE = 1e-5
Implementation = Callable[[np.ndarray], np.ndarray]


Observations = Any  # np.ndarray [count, obs_dim], or a dict of field arrays [count, ...] (dict observations)


def set_size(obs: Observations) -> int:
    return len(next(iter(obs.values()))) if isinstance(obs, dict) else len(obs)


@torch.no_grad()
def rollout_observations(policy: GaussianPolicy, env: VecEnv, count: int, seed: int) -> Observations:
    """``count`` observations [count, ...] met by the deterministic policy in ``env``."""
    obs = env.reset(seed=seed)
    seen: list[Any] = []
    total = 0
    while total < count:
        seen.append(obs.cpu())
        total += obs.shape[0]
        obs, *_ = env.step(policy.act(obs))
    joined = torch.cat(seen)[:count]
    if isinstance(joined, TensorDict):
        return {k: v.numpy() if v.dtype == torch.uint8 else v.numpy().astype(np.float32) for k, v in joined.items()}
    return joined.numpy().astype(np.float32)


def random_observations(policy: GaussianPolicy, count: int, seed: int) -> Observations:
    """mean + 3 std N(0, 1) under the normalizer (exercises its clipping); uniform random pixels for images."""
    rng = np.random.default_rng(seed)
    if policy.spec is not None:
        out: dict[str, np.ndarray] = {}
        for key, field in policy.spec.items():
            if field.dtype == "uint8":
                out[key] = rng.integers(0, 256, (count, *field.shape), dtype=np.uint8)
                continue
            norm = policy.normalizer.fields[key] if key in policy.normalizer.keys else None
            mean = norm.mean.cpu().numpy() if norm is not None else 0.0
            std = np.sqrt(norm.var.cpu().numpy() + norm.eps) if norm is not None else 1.0
            out[key] = (mean + 3.0 * std * rng.standard_normal((count, *field.shape))).astype(np.float32)
        return out
    norm = policy.normalizer
    mean = norm.mean.cpu().numpy() if norm.enabled else 0.0
    std = np.sqrt(norm.var.cpu().numpy() + norm.eps) if norm.enabled else 1.0
    noise = rng.standard_normal((count, policy.obs_dim))
    return (mean + 3.0 * std * noise).astype(np.float32)


def torch_implementation(policy: GaussianPolicy) -> Implementation:
    def run(obs: Observations) -> np.ndarray:
        with torch.no_grad():
            if isinstance(obs, dict):
                fields = {k: torch.from_numpy(v) for k, v in obs.items()}
                return policy.act(TensorDict(fields, batch_size=[set_size(obs)])).numpy()
            return policy.act(torch.from_numpy(obs)).numpy()

    return run


def onnx_implementation(path: Path) -> Implementation:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda obs: session.run(["action"], {"obs": obs})[0]


def torchscript_implementation(path: Path) -> Implementation:
    module = torch.jit.load(str(path), map_location="cpu")

    def run(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(obs)).numpy()

    return run


def compile_c(folder: Path, build_dir: Path) -> Path:
    """Compile policy.c + policy_main.c with ``cc -std=c99 -Wall -Werror``; the executable's path."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise PolicylabError(f"no C compiler '{cc}' found to verify policy.c; install one (gcc, clang) or set CC")
    exe = build_dir / "policy_demo"
    cmd = [cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-o", str(exe)]
    cmd += [str(folder / "policy.c"), str(folder / "policy_main.c"), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PolicylabError(f"policy.c does not compile: {proc.stderr.strip().splitlines()[0]}")
    return exe


def c_implementation(exe: Path) -> Implementation:
    def run(obs: np.ndarray) -> np.ndarray:
        text = "\n".join(" ".join(f"{v:.9g}" for v in row) for row in obs.astype(np.float64)) + "\n"
        proc = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=False, timeout=120)
        if proc.returncode != 0:
            raise PolicylabError(f"compiled policy exited with {proc.returncode}: {proc.stderr.strip()}")
        return np.array([[float(v) for v in line.split()] for line in proc.stdout.splitlines()], dtype=np.float32)

    return run


def compare(
    reference: Implementation, others: dict[str, Implementation], observation_sets: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """{implementation: {set name: max |action - reference action|}}."""
    report: dict[str, dict[str, float]] = {}
    for set_name, obs in observation_sets.items():
        expected = reference(obs)
        for name, impl in others.items():
            got = impl(obs)
            diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
            report.setdefault(name, {})[set_name] = diff
    return report


def format_report(report: dict[str, dict[str, float]], sizes: dict[str, int]) -> str:
    sets = list(sizes)
    lines = [
        "largest |action - PyTorch action| (tolerance 1e-05)",
        f"{'implementation':<14}" + "".join(f"{f'{s} ({sizes[s]})':>18}" for s in sets) + "  verdict",
    ]
    for name, diffs in report.items():
        ok = all(d <= TOLERANCE for d in diffs.values())
        lines.append(f"{name:<14}" + "".join(f"{diffs[s]:>18.3g}" for s in sets) + ("  ok" if ok else "  FAILED"))
    return "\n".join(lines)
