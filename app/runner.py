"""The training loop: collect -> advantages -> update -> log -> checkpoint.

One iteration, top to bottom, is :meth:`Trainer.iterate`. Everything the loop
carries from one iteration to the next lives in the trainer and goes into the
checkpoint, so a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

import envs
from app import distributed
from app.algorithms import Batch, make_algorithm
from app.algorithms.collective import SINGLE, Collective
from app.algorithms.gae import gae
from app.checkpoint import code_revision, save_checkpoint
from app.config import Config, TrainConfig, config_to_dict, save_config
from app.errors import CheckpointError, ConfigError, TrainingDiverged
from app.evaluate import EVAL_SEED_OFFSET, evaluate_policy, evaluation_envs
from app.logger import RunLogger
from app.rollout import EpisodeTracker, RewardScaler, Rollout, bootstrap_values, collect
from envs import VecEnv
from envs.placement import available_cores
from envs.spec import spec_to_dict
from policies.factory import build_policy, flat_size, make_value

RECENT_EPISODES = 20  # window of the logged mean episode return and length
FINAL_EVAL_EPISODES = 10  # at least this many episodes judge the final policy


def new_run_dir(cfg: Config) -> Path:
    """runs/<task>/<date>-<algo>-s<seed>/ (with a numeric suffix if it exists)."""
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    base = Path(cfg.train.runs_dir) / cfg.task.name / f"{stamp}-{cfg.algo.name}-s{cfg.train.seed}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


class GracefulStop:
    """First SIGINT/SIGTERM: finish the iteration, checkpoint and return. Second: abort at once."""

    def __init__(self, on_first: Any) -> None:
        self.requested = False
        self.on_first = on_first
        self.previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.on_first(signal.Signals(signum).name)

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def update_threads(train: TrainConfig, share: int = 1) -> Iterator[None]:
    """torch uses ``train.update_threads`` threads inside (the simulator is idle then), its collection count after.

    0: the available cores, divided among the ``share`` ranks on this machine.
    """
    collecting = torch.get_num_threads()
    torch.set_num_threads(train.update_threads or max(1, available_cores() // share))
    try:
        yield
    finally:
        torch.set_num_threads(collecting)


class Trainer:
    """Owns the networks, the environments and the loop state of one run (of one rank, with torchrun:
    ``collective`` then joins the ranks, :mod:`app.distributed`)."""

    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        checkpoint: dict[str, Any] | None = None,
        collective: Collective = SINGLE,
    ) -> None:
        self.started = time.monotonic()  # train.minutes counts from here: start-up (kernel compiles) included
        self.cfg, self.run_dir, self.collective = cfg, Path(run_dir), collective
        seed = distributed.rank_seed(cfg.train.seed, collective.rank, cfg.task.num_envs)
        if cfg.train.video_every:
            from app.video import RenderError, check_size

            try:
                check_size(cfg.train.video_width, cfg.train.video_height)
            except RenderError as exc:
                raise ConfigError(f"train.video_width, train.video_height: {exc}") from None
        if cfg.train.torch_threads:
            torch.set_num_threads(cfg.train.torch_threads)
        torch.manual_seed(seed)
        # One decision of where the run lives: the simulator is built on it, the networks follow it
        # (with torchrun, each rank on its own: cuda:LOCAL_RANK where the decision is CUDA).
        self.placement = distributed.rank_placement(envs.placement_of(cfg.task, cfg.train.device), collective)
        self.placement_line = self.placement.describe(cfg.task.num_envs)
        if cfg.train.progress != "none" and collective.rank == 0:
            suffix = f" (each of {collective.world_size} ranks)" if collective.active else ""
            print(self.placement_line + suffix, flush=True)
        self.env = envs.make(cfg.task, where=self.placement)
        self.device = self.placement.device
        self.policy = build_policy(cfg.policy, self.env).to(self.device)
        value_cfg = cfg.value
        self.value = make_value(
            self.env.observation_spec, value_cfg.hidden_sizes, value_cfg.activation, cfg.policy.ortho_init
        ).to(self.device)
        collective.broadcast_module(self.policy)  # every rank starts from rank 0's networks
        collective.broadcast_module(self.value)
        n = self.env.num_envs
        batch = n * cfg.train.steps_per_env * collective.world_size  # all ranks' samples per update
        self.algo = make_algorithm(
            cfg, self.policy, self.value, total_updates=-(-cfg.train.total_steps // batch), collective=collective
        )
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.tracker = EpisodeTracker(n, self.device)
        shared = cfg.advantage
        # with several ranks: the moments of every rank's samples together (one process: this one's)
        self.moments = collective.moments if collective.active else None
        self.reward_scaler: RewardScaler | None = None
        if shared.normalize_rewards:
            self.reward_scaler = RewardScaler(n, shared.gamma, device=self.device, moments=self.moments)
        # The last algo.reuse_rollouts rollouts (with the rewards as scaled when collected), newest first.
        self.past: deque[tuple[Rollout, torch.Tensor]] = deque(maxlen=self.algo.reuse_rollouts)
        self.iteration, self.env_steps, self.wall_time = 0, 0, 0.0
        self.episodes, self.unstable = 0, 0  # episodes ended, and of them unstable resets, over the run
        self.earlier_run_time = 0.0  # seconds the earlier sessions of a resumed run took, start-ups included
        self.best_eval, self.best_eval_steps, self.bad_updates = -math.inf, 0, 0
        self.recent: deque[tuple[float, int]] = deque(maxlen=RECENT_EPISODES)
        self.revision = code_revision()
        self._eval_env: VecEnv | None = None
        self._video_env: Any = None
        self.obs = self.env.reset(seed=seed).to(self.device)
        self.resume_note = ""
        self.stop_requested = False  # this rank's stop request (a signal); the ranks agree on it each iteration
        self.agreed_stop = False
        if checkpoint is not None:
            self.load_state_dict(distributed.rank_view(checkpoint, collective))
        self._unstable_seen = self.env.unstable_resets
        self.startup_time = time.monotonic() - self.started  # building the envs, compiling kernels, networks

    # -- one iteration -------------------------------------------------------

    def iterate(self) -> dict[str, float]:
        """Collect a rollout, compute advantages, update policy and value. Returns the log row."""
        cfg = self.cfg
        start = time.perf_counter()
        rollout, self.obs, episodes = collect(
            self.env, self.policy, self.obs, cfg.train.steps_per_env, self.generator, self.tracker
        )
        self.recent.extend(episodes)
        unstable = self.env.unstable_resets - self._unstable_seen  # this rollout's
        self._unstable_seen = self.env.unstable_resets
        totals = distributed.iteration_totals(  # summed over ranks, as one process would count them
            self.collective,
            rollout.rewards.numel(),
            len(episodes),
            self.recent,
            unstable,
            rollout.is_finite(),
            self.stop_requested,
        )
        steps, self.agreed_stop = totals.steps, totals.stop
        self.env_steps += steps
        self.iteration += 1
        self.episodes += totals.episodes
        self.unstable += totals.unstable_resets
        collected = time.perf_counter()
        if totals.finite:
            with update_threads(cfg.train, self.collective.local_world_size):
                metrics = self.update(rollout)
        else:
            metrics = {"update_rejected": 1.0, "reason": "non-finite observations or rewards from the environment"}
        done = time.perf_counter()
        row: dict[str, Any] = {
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "steps_per_s": steps / max(done - start, 1e-9),
            "collect_time": collected - start,
            "update_time": done - collected,
            "episode_return": totals.episode_return,
            "episode_length": totals.episode_length,
            "episodes": totals.episodes,
            "unstable_resets": self.unstable,  # over the run
            # the share of this rollout's ended episodes that were resets of unstable (or overflowing) worlds
            "unstable_reset_rate": totals.unstable_resets / totals.episodes if totals.episodes else 0.0,
            **rollout.env_stats,  # reward terms' means, statistics of the episodes that ended (success ...): rank 0's
        }
        return row | metrics

    def update(self, rollout: Rollout) -> dict[str, Any]:
        """Advantages with truncation bootstrapping, the algorithm's update, then the normalizer's.

        The observation normalizer keeps the statistics the rollout was collected with until the
        algorithm has updated: the behaviour log-probabilities recorded while collecting and every
        ratio pi / pi_behaviour the algorithm computes see the same normalization.
        """
        done = rollout.terminated | rollout.truncated
        rewards = self.reward_scaler(rollout.rewards, done) if self.reward_scaler else rollout.rewards
        batch = self.build_batch([(rollout, rewards), *self.past])
        result = self.algo.update(batch, self.generator)
        self.policy.normalizer.update(rollout.obs, self.moments)  # [T, N, ...]: every step's (of every rank)
        if self.past.maxlen:
            self.past.appendleft((rollout, rewards))
        metrics: dict[str, Any] = dict(result.metrics)
        metrics["update_rejected"] = float(result.rejected is not None)
        if result.rejected is not None:
            metrics["reason"] = result.rejected
        return metrics

    @torch.no_grad()
    def build_batch(self, rollouts: list[tuple[Rollout, torch.Tensor]]) -> Batch:
        """One batch from rollouts (this iteration's first, then older ones), each with its rewards [T, N].

        Per rollout: V of every observation with the current value net, V(final_obs) at truncations,
        GAE(gamma, lambda) [T, N]; the rollouts then sit side by side as columns [T, N * len(rollouts)].
        The batch's ``refresh`` builds it again from the same rollouts and rewards with the value net as it
        is then (an algorithm that fits the value between passes can re-estimate its advantages).
        """
        shared, policy, value = self.cfg.advantage, self.policy, self.value
        lam = shared.gae_lambda if self.algo.gae_lambda is None else self.algo.gae_lambda
        columns: dict[str, list[torch.Tensor]] = {}
        for age, (rollout, rewards) in enumerate(rollouts):
            values = value(policy.normalizer(rollout.obs))  # [T, N]
            last_values = value(policy.normalizer(rollout.last_obs))  # [N]
            final_values = value(policy.normalizer(rollout.final_obs))  # [K]
            next_values = bootstrap_values(values, last_values, rollout.final_index, final_values)
            advantages, returns = gae(
                rewards, values, next_values, rollout.terminated, rollout.truncated, shared.gamma, lam
            )
            parts = {
                "obs": rollout.obs,
                "actions": rollout.actions,
                "log_probs": rollout.log_probs,
                "advantages": advantages,
                "returns": returns,
                "values": values,
                "rewards": rewards,
                "next_values": next_values,
                "terminated": rollout.terminated,
                "truncated": rollout.truncated,
                "age": torch.full_like(rollout.terminated, age, dtype=torch.long),
            }
            for key, tensor in parts.items():
                columns.setdefault(key, []).append(tensor)
        steps = rollouts[0][0].rewards.shape[0]
        flat = {}
        for key, tensors in columns.items():
            joined = torch.cat(tensors, dim=1)  # [T, M, ...]
            flat[key] = joined.reshape(joined.shape[0] * joined.shape[1], *joined.shape[2:])
        if shared.normalize_advantages:  # over every rank's advantages
            flat["advantages"] = self.collective.standardize(flat["advantages"])
        return Batch(
            **flat,
            time_shape=(steps, flat["rewards"].shape[0] // steps),
            gamma=shared.gamma,
            refresh=lambda: self.build_batch(rollouts),
        )

    # -- evaluation ----------------------------------------------------------

    def evaluate(self, episodes: int | None = None) -> dict[str, float]:
        """Deterministic evaluation (``train.eval_episodes`` episodes unless given) on the evaluation seeds."""
        episodes = episodes or self.cfg.train.eval_episodes
        if self._eval_env is None:
            self._eval_env = envs.make(
                self.cfg.task, num_envs=evaluation_envs(episodes), evaluation=True, where=self.placement
            )
        self.policy.eval()
        result = evaluate_policy(self.policy, self._eval_env, episodes, self.cfg.train.seed + EVAL_SEED_OFFSET)
        self.policy.train()
        return {
            "eval_return": result.mean,
            "eval_return_std": result.std,
            "eval_length": sum(result.lengths) / len(result.lengths),
            **{f"eval_{key}": value for key, value in result.summary().items()},
        }

    # -- the loop ------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Train until ``train.total_steps``; returns the run summary."""
        tcfg, main = self.cfg.train, self.collective.is_main  # rank 0 alone writes and evaluates
        logger: Any = distributed.NullLogger()
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.cfg, self.run_dir / "config.yaml")
            logger = RunLogger(self.run_dir, tcfg.total_steps, self.env_steps, self.iteration, tcfg.progress)
        if self.resume_note:
            logger.message(self.resume_note)

        def on_signal(name: str) -> None:
            self.stop_requested = True
            logger.message(f"{name}: finishing this iteration, then saving a checkpoint (again to abort now)")

        stop = GracefulStop(on_signal)
        last_row: dict[str, Any] = {}
        logger.message(f"start-up {self.startup_time:.1f} s (environments, kernel compiles, networks)")
        final = self.env_steps >= tcfg.total_steps  # a budget in minutes still gets one iteration per session
        try:
            with stop:
                while not final and not self._stopping(stop):
                    start = time.perf_counter()
                    row = self.iterate()
                    final = self.out_of_budget()
                    evaluate = (tcfg.eval_every and self.iteration % tcfg.eval_every == 0) or final
                    if evaluate and not row["update_rejected"] and main:
                        row |= self.evaluate()
                    self.wall_time += time.perf_counter() - start
                    row["wall_time"] = self.wall_time
                    row["run_time"] = self.run_time()
                    logger.log(row)
                    video = tcfg.video_every and self.iteration % tcfg.video_every == 0
                    if video and not row["update_rejected"] and main:
                        self.record_video(logger)
                    last_row = row
                    if row["update_rejected"]:
                        self._reject(row, logger)
                        continue
                    self.bad_updates = 0
                    self._save_checkpoints(row, final)
            stopped = self._stopping(stop)
            finished = final and bool(last_row) and not last_row["update_rejected"]
            if finished and tcfg.eval_episodes < FINAL_EVAL_EPISODES and main:
                # the final policy is what eval, render and export use: the summary judges it on more episodes
                last_row = last_row | self.evaluate(FINAL_EVAL_EPISODES)
            if finished and self.env_steps < tcfg.total_steps:
                logger.message(f"train.minutes={tcfg.minutes:g} reached at {self.env_steps:,} steps")
            if stopped and not finished:
                self._write(self.state_dict(), self.run_dir / "checkpoints" / "latest.pt")
                ranks = f" nproc={self.collective.world_size}" if self.collective.active else ""
                resume = f"make train resume={self.run_dir}{ranks}"
                logger.message(f"stopped at {self.env_steps:,} steps; resume with: {resume}")
        finally:
            logger.close()
            self.close()
        summary = self._summary(last_row, finished=final and (finished or not stopped))
        if main:
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            if summary["finished"]:
                self._write_curve_and_report()
        return summary

    def run_time(self) -> float:
        """Seconds this run has taken: earlier sessions' and this one's since the trainer was built (start-up in)."""
        return self.earlier_run_time + time.monotonic() - self.started

    def out_of_budget(self) -> bool:
        """Whether the run is over: ``train.total_steps`` reached or ``train.minutes`` spent (rank 0's clock)."""
        tcfg = self.cfg.train
        spent = tcfg.minutes is not None and self.run_time() >= 60.0 * tcfg.minutes
        if tcfg.minutes is not None and self.collective.active:  # the ranks' clocks differ; they must agree
            spent = distributed.broadcast_float(self.collective, float(spent)) > 0
        return self.env_steps >= tcfg.total_steps or spent

    def _stopping(self, stop: GracefulStop) -> bool:
        """Stop now: this process's request, or with several ranks the one they agreed on last iteration."""
        return self.agreed_stop if self.collective.active else stop.requested

    def _write(self, state: dict[str, Any], path: Path) -> None:
        """Rank 0 writes the checkpoint (which holds every rank's state); the other ranks write nothing."""
        if self.collective.is_main:
            save_checkpoint(state, path)

    def _write_curve_and_report(self) -> None:
        """plots/learning_curve.png and report.md; a failure here never costs the finished run."""
        from app.plots import plot_run
        from app.report import write_report

        try:
            plot_run(self.run_dir)
            write_report(self.run_dir)
        except Exception as exc:  # the run and its checkpoints are already saved
            print(f"warning: could not write the learning curve or report: {exc}", file=sys.stderr)

    def record_video(self, logger: RunLogger) -> Path:
        """Render one deterministic episode in a separate env to videos/ and TensorBoard."""
        from app.video import log_video_to_tensorboard, render_episode, write_mp4

        tcfg = self.cfg.train
        if self._video_env is None:
            self._video_env = envs.make_single(self.cfg.task, evaluation=True)
        self.policy.eval()
        episode = render_episode(
            self.policy, self._video_env, tcfg.seed + EVAL_SEED_OFFSET, tcfg.video_width, tcfg.video_height
        )
        self.policy.train()
        fps = 1.0 / self.env.dt
        path = write_mp4(episode.frames, self.run_dir / "videos" / f"train-iter_{self.iteration:06d}.mp4", fps)
        log_video_to_tensorboard(logger.tb, "eval/video", episode.frames, fps, self.iteration)
        return path

    def _reject(self, row: dict[str, Any], logger: RunLogger) -> None:
        self.bad_updates += 1
        reason = row.get("reason", "non-finite update")
        logger.message(f"iteration {self.iteration}: update rejected ({reason}); parameters kept")
        if self.bad_updates >= self.cfg.train.max_bad_updates:
            latest = self.run_dir / "checkpoints" / "latest.pt"
            kept = f"last good checkpoint: {latest}" if latest.exists() else "no checkpoint had been written yet"
            raise TrainingDiverged(
                f"{self.bad_updates} consecutive updates rejected ({reason}) at iteration {self.iteration}; "
                f"stopped, {kept}"
            )

    def _save_checkpoints(self, row: dict[str, Any], final: bool) -> None:
        tcfg, folder = self.cfg.train, self.run_dir / "checkpoints"
        # rank 0 evaluates: every rank learns its result, so they all take part in the same saves below
        eval_return = distributed.broadcast_float(self.collective, row.get("eval_return", math.nan))
        improved = math.isfinite(eval_return) and eval_return > self.best_eval
        if improved:
            self.best_eval, self.best_eval_steps = eval_return, self.env_steps
        state = None
        if improved:
            state = self.state_dict()
            self._write(state, folder / "best.pt")
        if final or self.iteration % tcfg.checkpoint_every == 0:
            self._write(state or self.state_dict(), folder / "latest.pt")
        if tcfg.keep_every and self.iteration % tcfg.keep_every == 0:
            self._write(state or self.state_dict(), folder / f"iter_{self.iteration:06d}.pt")

    def _summary(self, row: dict[str, Any], finished: bool) -> dict[str, Any]:
        return {
            "task": self.cfg.task.name,
            "env_id": self.cfg.task.id,
            "algo": self.cfg.algo.name,
            "seed": self.cfg.train.seed,
            "finished": finished,
            "iterations": self.iteration,
            "env_steps": self.env_steps,
            "wall_time": self.wall_time,
            "run_time": self.run_time(),
            "startup_time": self.startup_time,
            "placement": self.placement_line,
            "stopped_by": "total_steps" if self.env_steps >= self.cfg.train.total_steps else "minutes",
            "steps_per_s": self.env_steps / self.wall_time if self.wall_time else math.nan,
            "episodes": self.episodes,
            "unstable_resets": self.unstable,
            "unstable_reset_rate": self.unstable / self.episodes if self.episodes else 0.0,
            "final_eval_return": row.get("eval_return", math.nan) if finished else math.nan,
            "final_eval_return_std": row.get("eval_return_std", math.nan) if finished else math.nan,
            "best_eval_return": self.best_eval if math.isfinite(self.best_eval) else None,
            "best_eval_env_steps": self.best_eval_steps if math.isfinite(self.best_eval) else None,
            "run_dir": str(self.run_dir),
        }

    def close(self) -> None:
        self.env.close()
        if self._eval_env is not None:
            self._eval_env.close()
            self._eval_env = None
        if self._video_env is not None:
            self._video_env.close()
            self._video_env = None

    # -- checkpoint state ----------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        try:
            env_state: dict[str, Any] | None = self.env.get_state()
        except NotImplementedError:
            env_state = None
        state = {
            "config": config_to_dict(self.cfg),
            "task": {
                "name": self.cfg.task.name,
                "id": self.cfg.task.id,
                "obs_dim": flat_size(self.env.observation_spec),
                "observation_spec": spec_to_dict(self.env.observation_spec),
                "act_dim": self.env.action_space.shape[0],
                "dt": self.env.dt,
            },
            "code_revision": self.revision,
            "policy": self.policy.state_dict(),
            "value": self.value.state_dict(),
            "algo": self.algo.state_dict(),
            "runner": {
                "iteration": self.iteration,
                "env_steps": self.env_steps,
                "wall_time": self.wall_time,
                "run_time": self.run_time(),
                "episodes": self.episodes,
                "unstable": self.unstable,
                "best_eval": self.best_eval,
                "best_eval_steps": self.best_eval_steps,
                "bad_updates": self.bad_updates,
                "recent": [list(e) for e in self.recent],
                "generator": self.generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "tracker": self.tracker.state_dict(),
                "reward_scaler": self.reward_scaler.state_dict() if self.reward_scaler else None,
                "obs": self.obs,
                "past": [(dataclasses.asdict(r), rewards) for r, rewards in self.past],
            },
            "env": env_state,
        }
        return distributed.gather_rank_states(self.collective, state)

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        try:
            self.policy.load_state_dict(ckpt["policy"])
            self.value.load_state_dict(ckpt["value"])
            self.algo.load_state_dict(ckpt["algo"])
            runner = ckpt["runner"]
            self.iteration, self.env_steps = int(runner["iteration"]), int(runner["env_steps"])
            self.wall_time, self.best_eval = float(runner["wall_time"]), float(runner["best_eval"])
            self.best_eval_steps = int(runner.get("best_eval_steps", 0))
            self.earlier_run_time = float(runner.get("run_time", self.wall_time))
            self.episodes, self.unstable = int(runner.get("episodes", 0)), int(runner.get("unstable", 0))
            self.bad_updates = int(runner["bad_updates"])
            self.recent.extend((float(r), int(n)) for r, n in runner["recent"])
            self.generator.set_state(runner["generator"])
            for saved, rewards in runner.get("past", [])[: self.past.maxlen]:
                if rewards.shape[0] == self.cfg.train.steps_per_env:  # else the time axes could not sit side by side
                    # tensors (and TensorDicts) to the device; env_stats, a dict of floats, as saved
                    past = Rollout(**{k: v if isinstance(v, dict) else v.to(self.device) for k, v in saved.items()})
                    self.past.append((past, rewards.to(self.device)))
            torch.set_rng_state(runner["torch_rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"checkpoint does not match this configuration: {first[:200]}") from None
        same_batch = ckpt.get("env") is not None and runner["obs"].shape[0] == self.env.num_envs
        if same_batch and (self.reward_scaler is None) == (runner["reward_scaler"] is None):
            try:
                self.env.set_state(ckpt["env"])
            except (NotImplementedError, ValueError, KeyError) as exc:
                self.resume_note = f"resume: environments restarted (their state could not be restored: {exc})"
            else:
                self.obs = runner["obs"].to(self.device)
                self.tracker.load_state_dict(runner["tracker"])
                if self.reward_scaler is not None:
                    self.reward_scaler.load_state_dict(runner["reward_scaler"])
                return
        else:
            self.resume_note = "resume: environments restarted (the saved batch does not match this configuration)"
        # Every environment starts a new episode, but the reward scale is the task's, not the batch's: keep
        # the running variance of the discounted return (a fresh one would rescale the value targets on the
        # first update); only each environment's running return starts over.
        saved_scaler = runner["reward_scaler"]
        if self.reward_scaler is not None and saved_scaler is not None:
            restart = {"discounted": torch.zeros_like(self.reward_scaler.discounted)}
            self.reward_scaler.load_state_dict(saved_scaler | restart)
