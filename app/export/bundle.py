"""``make export``: write a run's policy for robot controllers, verify it, then publish it.

Files (in the run's ``export/``): policy.onnx, policy.pt (TorchScript), policy.json,
policy.h / policy.c / policy_main.c, verification.txt / verification.json.
Everything is written to a temporary folder first; the existing ``export/`` is
replaced only once the new files have passed verification.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import envs
from app.checkpoint import load_run_checkpoint
from app.errors import PolicylabError
from app.evaluate import EVAL_SEED_OFFSET, evaluate_policy, evaluation_envs, load_policy
from app.export import c_source, dict_policy, verify
from app.export.metadata import policy_metadata
from app.export.onnx_model import OPSET, build_onnx
from app.export.weights import DeployedPolicy, control_law

SAMPLES = 1000  # observations per verification set


class ExportError(PolicylabError):
    """The export could not be written or did not reproduce the policy."""


@dataclass
class ExportResult:
    folder: Path
    report: dict[str, dict[str, float]]
    text: str


def _evaluation(
    run_dir: Path, ckpt_path: Path, ckpt: dict[str, Any], policy: Any, cfg: Any, episodes: int
) -> dict[str, Any]:
    """The checkpoint's deterministic evaluation: eval.json when it is of this checkpoint, else a fresh one.

    Kept: the return's and length's summary and every statistic the task reports (success rate,
    final distance, lap completion, ...), not the per-episode lists.
    """
    saved = run_dir / "eval.json"
    if saved.is_file():
        data = json.loads(saved.read_text())
        same_steps = data.get("env_steps") == int(ckpt.get("runner", {}).get("env_steps", 0))
        if Path(data.get("checkpoint", "")).resolve() == ckpt_path.resolve() and same_steps:
            return {**_summary(data), "source": "eval.json"}
    seed = cfg.train.seed + EVAL_SEED_OFFSET
    env = envs.make(cfg.task, num_envs=evaluation_envs(episodes), evaluation=True)
    try:
        result = evaluate_policy(policy, env, episodes, seed).as_dict()
    finally:
        env.close()
    return {**_summary(result), "seed": seed, "source": "evaluated at export"}


# eval.json's fields that describe the run or list every episode rather than summarize the evaluation
_NOT_SUMMARY = frozenset({"task", "env_id", "algo", "checkpoint", "env_steps", "deterministic", "returns", "lengths"})


def _summary(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The scalar results of an evaluation (eval.json or ``EvalResult.as_dict()``)."""
    return {k: v for k, v in evaluation.items() if k not in _NOT_SUMMARY and not isinstance(v, list | dict)}


def _write(folder: Path, law: Any, policy: Any, meta: dict[str, Any]) -> None:
    (folder / "policy.json").write_text(json.dumps(meta, indent=2) + "\n")
    model = build_onnx(law, meta)
    (folder / "policy.onnx").write_bytes(model.SerializeToString())
    example = torch.zeros(1, law.obs_dim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export; libtorch still loads it
        traced = torch.jit.trace(DeployedPolicy(policy).eval(), example)
        torch.jit.save(traced, str(folder / "policy.pt"), _extra_files={"policy.json": json.dumps(meta)})
    (folder / "policy.h").write_text(c_source.policy_header(law, meta["task"]))
    (folder / "policy.c").write_text(c_source.policy_source(law))
    (folder / "policy_main.c").write_text(c_source.EXAMPLE_MAIN)


def _publish(staging: Path, target: Path) -> None:
    """Replace ``target`` with ``staging`` (both in the same folder): rename, then drop the old one."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_fields_policy(folder: Path, policy: Any, meta: dict[str, Any]) -> None:
    """policy.json, policy.onnx and policy.pt of a policy with one input per observation field (no policy.c)."""
    (folder / "policy.json").write_text(json.dumps(meta, indent=2) + "\n")
    dict_policy.write_onnx(policy, folder / "policy.onnx")
    import onnx

    model = onnx.load(str(folder / "policy.onnx"))
    onnx.helper.set_model_props(model, {key: json.dumps(value) for key, value in meta.items()})
    onnx.save(model, str(folder / "policy.onnx"))
    dict_policy.write_torchscript(policy, folder / "policy.pt", json.dumps(meta))


def export_run(run: str | Path, which: str = "latest", eval_episodes: int = 10) -> ExportResult:
    """Export and verify a run's checkpoint; returns the export folder and the verification report."""
    path, ckpt, cfg, run_dir = load_run_checkpoint(run, which)
    vec = envs.make(cfg.task, num_envs=1)
    single = envs.make_single(cfg.task)
    try:
        policy = load_policy(ckpt, cfg, vec, path)
        fields = policy.spec is not None
        law = None if fields else control_law(policy, cfg.policy.activation)
        evaluation = _evaluation(run_dir, path, ckpt, policy, cfg, eval_episodes)
        meta = policy_metadata(cfg, law, single, vec.dt, vec.max_episode_steps, ckpt, evaluation, policy=policy)
        meta["checkpoint"] = str(path)
        meta["onnx_opset"] = OPSET
        observation_sets = {
            "rollout": verify.rollout_observations(policy, vec, SAMPLES, seed=cfg.train.seed + 7),
            "random": verify.random_observations(policy, SAMPLES, seed=cfg.train.seed + 11),
        }
    finally:
        vec.close()
        single.close()

    staging = Path(tempfile.mkdtemp(prefix=".export.tmp-", dir=run_dir))
    try:
        with tempfile.TemporaryDirectory() as build:
            if law is None:
                _write_fields_policy(staging, policy, meta)
                keys = list(policy.spec)
                others = {
                    "onnxruntime": dict_policy.onnx_fields_implementation(staging / "policy.onnx", keys),
                    "torchscript": dict_policy.torchscript_fields_implementation(staging / "policy.pt", keys),
                }
            else:
                _write(staging, law, policy, meta)
                others = {
                    "onnxruntime": verify.onnx_implementation(staging / "policy.onnx"),
                    "torchscript": verify.torchscript_implementation(staging / "policy.pt"),
                    "c": verify.c_implementation(verify.compile_c(staging, Path(build))),
                }
            report = verify.compare(verify.torch_implementation(policy), others, observation_sets)
        text = verify.format_report(report, {k: verify.set_size(v) for k, v in observation_sets.items()})
        if law is None:
            text += "\n" + dict_policy.c_refusal(policy.spec)
        worst = max(d for diffs in report.values() for d in diffs.values())
        (staging / "verification.txt").write_text(text + "\n")
        (staging / "verification.json").write_text(
            json.dumps({"tolerance": verify.TOLERANCE, "max_abs_diff": report, "samples": SAMPLES}, indent=2) + "\n"
        )
        if not worst <= verify.TOLERANCE:
            message = f"exported policy differs from PyTorch by {worst:.3g} > 1e-5; export/ left as it was"
            raise ExportError(f"{message}\n{text}")
        _publish(staging, run_dir / "export")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(run_dir / "export", report, text)
