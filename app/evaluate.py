"""Deterministic evaluation of a policy: fixed seeds, the mean action, whole episodes."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import envs
from app.checkpoint import load_run_checkpoint
from app.config import Config
from envs import VecEnv
from envs.episode_stats import episode_means
from policies import GaussianPolicy
from policies.factory import build_policy

EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes never share seeds with training


Summarize = Callable[[dict[str, np.ndarray]], dict[str, float]]


@dataclass(frozen=True)
class EvalResult:
    returns: list[float]
    lengths: list[int]
    stats: dict[str, list[float]] = field(default_factory=dict)  # the task's per-episode statistics
    summarize: Summarize = episode_means  # the task's statistics over episodes (NativeTask.summarize)

    def summary(self) -> dict[str, float]:
        """The task's statistics over these episodes: the means of its episode statistics and what it derives."""
        return self.summarize({key: np.asarray(values, dtype=np.float64) for key, values in self.stats.items()})

    @property
    def mean(self) -> float:
        return statistics.fmean(self.returns) if self.returns else math.nan

    @property
    def std(self) -> float:
        return statistics.pstdev(self.returns) if self.returns else math.nan

    def as_dict(self) -> dict[str, object]:
        return {
            "episodes": len(self.returns),
            "mean_return": self.mean,
            "std_return": self.std,
            "mean_length": statistics.fmean(self.lengths) if self.lengths else math.nan,
            **self.summary(),
            "returns": self.returns,
            "lengths": self.lengths,
        }


def evaluation_envs(episodes: int) -> int:
    """Environments used to evaluate ``episodes`` episodes (each runs about the same number)."""
    return max(1, min(episodes, 16))


@torch.no_grad()
def evaluate_policy(policy: GaussianPolicy, env: VecEnv, episodes: int, seed: int) -> EvalResult:
    """Run the deterministic policy (the mean action) until ``episodes`` episodes end.

    Environment i contributes its first ceil/floor(episodes / N) episodes, so
    short episodes are not over-represented. Same seed -> same episodes.
    """
    device = next(policy.parameters()).device
    n = env.num_envs
    quota = torch.tensor([episodes // n + (1 if i < episodes % n else 0) for i in range(n)])
    done_count = torch.zeros(n, dtype=torch.long)
    running = torch.zeros(n, dtype=torch.float64)
    lengths = torch.zeros(n, dtype=torch.long)
    returns: list[float] = []
    steps: list[int] = []
    stats: dict[str, list[float]] = {}
    obs = env.reset(seed=seed)
    while bool((done_count < quota).any()):
        action = policy.act(obs.to(device)).to(env.device)
        obs, reward, terminated, truncated, info = env.step(action)
        running += reward.cpu().double()
        lengths += 1
        ended = info.get("episode_stats", {})
        for i in (terminated | truncated).cpu().nonzero().flatten().tolist():
            if done_count[i] < quota[i]:
                returns.append(float(running[i]))
                steps.append(int(lengths[i]))
                for key, values in ended.items():
                    stats.setdefault(key, []).append(float(values[i]))
                done_count[i] += 1
            running[i], lengths[i] = 0.0, 0
    return EvalResult(returns, steps, stats, getattr(getattr(env, "task", None), "summarize", episode_means))


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The task's lines of the evaluation report (its ``summary_lines``) for ``result`` (eval.json's content)."""
    from envs.native import NATIVE_TASKS

    task = NATIVE_TASKS.get(result["env_id"])
    return task.summary_lines(result) if task is not None else []


def load_policy(ckpt: dict, cfg: Config, env: VecEnv, path: Path) -> GaussianPolicy:
    """A policy with the checkpoint's weights; a shape mismatch is a CheckpointError."""
    from app.errors import CheckpointError

    policy = build_policy(cfg.policy, env)
    try:
        policy.load_state_dict(ckpt["policy"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise CheckpointError(f"{path}: the policy does not fit task {cfg.task.name} ({first})") from None
    return policy.eval()


def evaluate_run(
    run: str | Path, episodes: int = 10, which: str = "latest", seed: int | None = None
) -> tuple[Path, dict]:
    """Evaluate a run's checkpoint; writes eval.json in the run directory. Returns (path, results)."""
    path, ckpt, cfg, run_dir = load_run_checkpoint(run, which)
    env = envs.make(cfg.task, num_envs=evaluation_envs(episodes), evaluation=True)
    try:
        policy = load_policy(ckpt, cfg, env, path)
        eval_seed = cfg.train.seed + EVAL_SEED_OFFSET if seed is None else seed
        result = evaluate_policy(policy, env, episodes, eval_seed)
    finally:
        env.close()
    out = {
        "task": cfg.task.name,
        "env_id": cfg.task.id,
        "algo": cfg.algo.name,
        "checkpoint": str(path),
        "env_steps": int(ckpt.get("runner", {}).get("env_steps", 0)),
        "seed": eval_seed,
        "deterministic": True,
        **result.as_dict(),
    }
    (run_dir / "eval.json").write_text(json.dumps(out, indent=2) + "\n")
    return run_dir / "eval.json", out
