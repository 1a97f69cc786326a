"""Checkpoints: atomic writes, safe loading, and finding them in run directories.

A checkpoint is a dict of tensors and plain Python values, loaded with
``torch.load(weights_only=True)`` so a file from elsewhere cannot run code.
It holds the resolved config, the policy (with its normalizer), the value
function, optimizer and RNG states, counters and the environments' state:
enough to evaluate, render, export or resume exactly.
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.config import Config, config_from_dict
from app.errors import CheckpointError, PolicylabError

FORMAT = "policylab-checkpoint"
VERSION = 1


def code_revision() -> str:
    """The git commit of the code (with -dirty for local changes), or 'unknown'."""
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def to_saveable(obj: Any) -> Any:
    """Replace numpy arrays and scalars by tensors and Python numbers, recursively."""
    if isinstance(obj, np.ndarray):
        arr = obj.astype(np.int64) if obj.dtype == np.uint32 else obj
        return torch.from_numpy(np.ascontiguousarray(arr))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: to_saveable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_saveable(v) for v in obj)
    return obj


def save_checkpoint(payload: dict[str, Any], path: Path) -> None:
    """Write atomically: temporary file in the same folder, fsync, rename, fsync the folder.

    A reader (or a run killed mid-write) sees either the old file or the new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(to_saveable({"format": FORMAT, "version": VERSION, **payload}), buffer)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and sanity-check a checkpoint; any problem is one CheckpointError line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path} is not a readable policylab checkpoint (corrupt or truncated?): {reason[:200]}"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a policylab checkpoint")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {ckpt.get('version')} is not supported (expected {VERSION})"
        )
    for key in ("config", "policy", "value"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint lacks '{key}'")
    return ckpt


def checkpoint_config(ckpt: dict[str, Any], path: Path, resume: bool = False) -> Config:
    """The run's config, re-validated (a task or key that no longer exists is a clear error).

    Unless ``resume``, a run trained on the gpu backend is evaluated, rendered and exported on
    this machine's backend for its native task (``auto``: MuJoCo Warp where there is CUDA, else
    mujoco.batch); a resumed run keeps the backend it was trained on.
    """
    import envs

    data = ckpt["config"]
    task = data.get("task") if isinstance(data, dict) else None
    if not resume and isinstance(task, dict) and task.get("backend") == "gpu":
        data = {**data, "task": {**task, "backend": "auto"}}
    try:
        cfg = config_from_dict(data, f"config in checkpoint {path}", saved=True)
        envs.check_env_id(cfg.task.id)
    except PolicylabError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return cfg


def resolve_checkpoint(run: str | Path, which: str = "latest") -> Path:
    """A run directory (or a checkpoint file) -> the checkpoint file to use.

    ``which`` is ``latest``, ``best`` or a file name inside ``checkpoints/``.
    """
    run = Path(run)
    if run.is_file():
        return run
    if not run.exists():
        raise CheckpointError(f"run directory not found: {run}")
    folder = run / "checkpoints"
    name = which if which.endswith(".pt") else f"{which}.pt"
    path = folder / name
    if not path.is_file():
        available = sorted(p.name for p in folder.glob("*.pt")) if folder.is_dir() else []
        listing = ", ".join(available) if available else "none"
        raise CheckpointError(f"no checkpoint {name} in {run} (available: {listing})")
    return path


def run_dir_of(checkpoint: Path) -> Path:
    """The run directory a checkpoint file belongs to (its folder's parent)."""
    checkpoint = Path(checkpoint).resolve()
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def load_run_checkpoint(
    run: str | Path, which: str = "latest", resume: bool = False
) -> tuple[Path, dict[str, Any], Config, Path]:
    """(checkpoint path, checkpoint, config, run directory) of a run, checked against the run.

    ``resume``: the config as trained (see :func:`checkpoint_config`).

    A checkpoint whose task differs from the run's ``config.yaml`` (copied in from
    another run) is a CheckpointError naming both tasks.
    """
    import yaml

    path = resolve_checkpoint(run, which)
    ckpt = load_checkpoint(path)
    cfg = checkpoint_config(ckpt, path, resume=resume)
    run_dir = run_dir_of(path)
    saved = run_dir / "config.yaml"
    if saved.is_file():
        try:
            task = (yaml.safe_load(saved.read_text()) or {}).get("task", {})
        except yaml.YAMLError:
            task = {}
        if isinstance(task, dict) and task.get("id") not in (None, cfg.task.id):
            raise CheckpointError(
                f"{path} is from task {cfg.task.name} ({cfg.task.id}) but run {run_dir} trains "
                f"{task.get('name')} ({task.get('id')}); use a checkpoint of this run"
            )
    return path, ckpt, cfg, run_dir
