"""Command-line interface: ``python -m app <command>``. Every Makefile target calls this."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app.errors import PolicylabError


def _select_backend_for_videos(video_every: int) -> None:
    """Training videos need a rendering backend: pick it before MuJoCo is imported."""
    if video_every:
        from app.video import select_gl_backend

        select_gl_backend()


def _train(args: argparse.Namespace) -> int:
    from app import distributed
    from app.checkpoint import load_run_checkpoint
    from app.config import apply_overrides, config_from_dict, config_to_dict, load_config

    if args.resume:
        _, ckpt, cfg, run_dir = load_run_checkpoint(args.resume, "latest", resume=True)
        if args.overrides:
            cfg = config_from_dict(apply_overrides(config_to_dict(cfg), args.overrides), "command line", saved=True)
        _select_backend_for_videos(cfg.train.video_every)
        from app.runner import Trainer

        ranks = distributed.start(cfg.train.device, cfg.task)  # torchrun's ranks, or this one process
        if ranks.is_main:
            print(f"resuming {run_dir} at {int(ckpt['runner']['env_steps']):,} steps")
        trainer = Trainer(cfg, run_dir, ckpt, collective=ranks)
    else:
        if not args.task:
            raise PolicylabError("train needs a task (make train task=hopper) or a run to resume (resume=runs/...)")
        cfg = load_config(args.task, args.overrides, algo=args.algo, settings=args.settings)
        _select_backend_for_videos(cfg.train.video_every)
        from app.runner import Trainer, new_run_dir

        ranks = distributed.start(cfg.train.device, cfg.task)
        run_dir = ranks.broadcast_object(new_run_dir(cfg) if ranks.is_main else None)  # rank 0 names the run
        if ranks.is_main:
            print(
                f"training {cfg.algo.name} on {cfg.task.name} ({cfg.task.id}), {cfg.train.total_steps:,} steps "
                f"-> {run_dir}" + (f" on {ranks.world_size} ranks" if ranks.active else "")
            )
        trainer = Trainer(cfg, run_dir, collective=ranks)
    summary = trainer.run()
    ranks.close()
    if not ranks.is_main:
        return 0
    if summary["finished"]:
        ret, std = summary["final_eval_return"], summary["final_eval_return_std"]
        print(
            f"done: {summary['env_steps']:,} steps in {summary['wall_time']:.0f} s "
            f"({summary['steps_per_s']:,.0f} steps/s); "
            f"deterministic return {ret:.1f} ± {std:.1f}; run: {run_dir}"
        )
        best = summary.get("best_eval_return")
        if best is not None and best > ret + max(std, 0.05 * abs(best)):
            print(
                f"note: the final policy (latest.pt, what eval/render/export use by default) scores below the best "
                f"evaluation, {best:.1f} at {summary['best_eval_env_steps']:,} steps; to use that one: "
                f"make eval run={run_dir} checkpoint=best (also for render and export)"
            )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from app.evaluate import evaluate_run, summary_lines

    path, result = evaluate_run(args.run, episodes=args.episodes, which=args.checkpoint, seed=args.seed)
    print(
        f"{result['task']}: deterministic return {result['mean_return']:.2f} ± {result['std_return']:.2f} "
        f"over {result['episodes']} episodes (mean length {result['mean_length']:.0f}); wrote {path}"
    )
    for line in summary_lines(result):  # the task's own statistics
        print(line)
    return 0


def _export(args: argparse.Namespace) -> int:
    from app.export import export_run

    result = export_run(args.run, which=args.checkpoint)
    print(result.text)
    written = ", ".join(p.name for p in sorted(result.folder.iterdir()) if p.name.startswith("policy"))
    print(f"wrote {result.folder}: {written}")
    return 0


def _deploy_sim(args: argparse.Namespace) -> int:
    import subprocess
    from pathlib import Path

    run = Path(args.run)
    if not run.exists():
        raise PolicylabError(f"run directory not found: {run}")
    folder = run if (run / "policy.json").is_file() else run / "export"
    if not (folder / "policy.onnx").is_file():
        raise PolicylabError(f"no export in {run}; run 'make export run={run}' first")
    # A separate interpreter, isolated (-I): the deployment side must not import torch or this package.
    script = Path(__file__).resolve().parent / "deploy_sim.py"
    cmd = [sys.executable, "-I", str(script), str(folder), "--episodes", str(args.episodes)]
    cmd += ["--latency", str(args.latency), "--obs-noise", str(args.obs_noise)]
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    return subprocess.run(cmd, check=False).returncode


def _render(args: argparse.Namespace) -> int:
    from app.video import select_gl_backend

    backend = select_gl_backend()  # before anything imports MuJoCo
    from app.report import write_report
    from app.video import render_run

    videos = render_run(
        args.run,
        episodes=args.episodes,
        width=args.width,
        height=args.height,
        camera=args.camera,
        overlay=not args.no_overlay,
        which=args.checkpoint,
    )
    for path, episode in videos:
        print(f"{path}: return {episode.total_return:.1f}, {episode.length} steps")
    if videos:
        write_report(videos[0][0].parent.parent)
    print(f"rendered with MUJOCO_GL={backend}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.plots import find_runs, plot_runs

    runs = find_runs(args.runs)
    out = Path(args.out) if args.out else Path(args.runs[0]).resolve().parent / "plots" / "learning_curves.png"
    path = plot_runs(args.runs, out, metric=args.metric)
    print(f"wrote {path} ({len(runs)} runs)")
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.plots import plot_run
    from app.report import write_report

    run = Path(args.run)
    if not run.is_dir():
        raise PolicylabError(f"run directory not found: {run}")
    plot_run(run)
    print(f"wrote {write_report(run)}")
    return 0


def _tasks(args: argparse.Namespace) -> int:
    import envs
    from app.config import available_tasks, load_config, tuned_algorithms

    rows = [("task", "environment", "obs", "act", "dt [s]", "episode steps", "tuned algorithms")]
    for name in available_tasks():
        cfg = load_config(name, ["train.device=cpu"])  # sizes only: mujoco.batch builds at once, Warp compiles
        env = envs.make(cfg.task, num_envs=1)
        steps = str(env.max_episode_steps) if env.max_episode_steps else "-"
        rows.append(
            (
                name,
                cfg.task.id,
                " + ".join(
                    "x".join(str(d) for d in f.shape) if len(f.shape) > 1 else str(f.shape[0])
                    for f in env.observation_spec.values()
                ),
                str(env.action_space.shape[0]),
                f"{env.dt:g}",
                steps,
                ", ".join(tuned_algorithms(name)),
            )
        )
        env.close()
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(
        "\nmake train task=<task> algo=<algorithm>: tuned settings from configs/<algorithm>/<task>.yaml, "
        "the algorithm's defaults otherwise (the first listed is the task's default)."
    )
    print("Also: any Gymnasium id (task=Hopper-v5) or dm_control suite task (task=dmc:walker-walk).")
    return 0


def _config(args: argparse.Namespace) -> int:
    import yaml

    from app.config import config_to_dict, field_help, load_config

    cfg = load_config(args.task, args.overrides, algo=args.algo, settings=args.settings)
    if args.fields:
        for key, default, text in field_help():
            shown = "null" if default is None else default
            print(f"{key:<32} {shown!s:<12} {text}")
        return 0
    print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="policylab: Gaussian-policy RL on MuJoCo robots")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    p = sub.add_parser("train", help="train a policy (or resume a run)")
    p.add_argument("--task", help="task config name (see 'tasks'), Gymnasium id or dmc:domain-task")
    p.add_argument("--resume", metavar="RUN", help="run directory (or checkpoint file) to continue")
    p.add_argument("--algo", default=None, help="algorithm (trpo, npg, ppo, a2c, vpg); default: the task config's")
    p.add_argument(
        "--settings",
        choices=("cpu", "gpu"),
        default=None,
        help="take the task file's settings for this backend whatever the backend (default: the backend's own)",
    )
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides by dotted path, e.g. algo.max_kl=0.02"
    )
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="deterministic evaluation of a run; writes eval.json")
    p.add_argument("run", help="run directory or checkpoint file")
    p.add_argument("--episodes", type=int, default=10, help="episodes to run (default 10)")
    p.add_argument("--checkpoint", default="latest", help="latest, best or a file in checkpoints/ (default latest)")
    p.add_argument("--seed", type=int, default=None, help="evaluation seed (default: the run's seed + 1000003)")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("export", help="export a run's policy to ONNX, TorchScript and C, verified")
    p.add_argument("run", help="run directory or checkpoint file")
    p.add_argument("--checkpoint", default="latest", help="latest, best or a file in checkpoints/ (default latest)")
    p.set_defaults(func=_export)

    p = sub.add_parser("deploy-sim", help="run the exported policy like a robot controller would (sim-to-sim)")
    p.add_argument("run", help="run directory (with export/) or an export folder")
    p.add_argument("--episodes", type=int, default=10, help="episodes to run (default 10)")
    p.add_argument("--latency", type=int, default=0, help="command delay in control periods (default 0)")
    p.add_argument("--obs-noise", type=float, default=0.0, help="std of Gaussian observation noise (default 0)")
    p.add_argument("--seed", type=int, default=None, help="first episode's seed (default: the evaluation's)")
    p.set_defaults(func=_deploy_sim)

    p = sub.add_parser("render", help="render deterministic episodes of a run to MP4 (videos/)")
    p.add_argument("run", help="run directory or checkpoint file")
    p.add_argument("--episodes", type=int, default=3, help="episodes, one MP4 each (default 3)")
    p.add_argument("--width", type=int, default=640, help="frame width in pixels, even (default 640)")
    p.add_argument("--height", type=int, default=480, help="frame height in pixels, even (default 480)")
    p.add_argument("--camera", default=None, help="track (default: follow the robot), free, or a model camera")
    p.add_argument("--no-overlay", action="store_true", help="no step/return/speed text on the frames")
    p.add_argument("--checkpoint", default="latest", help="latest, best or a file in checkpoints/ (default latest)")
    p.set_defaults(func=_render)

    p = sub.add_parser("plot", help="learning curves of runs (mean and spread over seeds) to a PNG")
    p.add_argument("runs", nargs="+", help="run directories, or folders holding runs")
    p.add_argument("--out", default=None, help="PNG path (default: <first run's parent>/plots/learning_curves.png)")
    p.add_argument("--metric", default="episode_return", help="episode_return (default) or eval_return")
    p.set_defaults(func=_plot)

    p = sub.add_parser("report", help="(re)write a run's plots/learning_curve.png and report.md")
    p.add_argument("run", help="run directory")
    p.set_defaults(func=_report)

    p = sub.add_parser("tasks", help="list the tasks with their observation and action sizes")
    p.set_defaults(func=_tasks)

    p = sub.add_parser("config", help="print a task's resolved config (or every field with --fields)")
    p.add_argument("task", help="task config name, Gymnasium id or dmc:domain-task")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--fields", action="store_true", help="list every config field with its default and meaning")
    p.add_argument("--algo", default=None, help="algorithm (default: the task config's)")
    p.add_argument("--settings", choices=("cpu", "gpu"), default=None, help="a backend's settings (see train)")
    p.set_defaults(func=_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # argparse fills a command's positionals from one contiguous run of arguments, so key=value
    # overrides after an option (`config hopper --algo ppo algo.lr=1e-3`) come back unparsed: they
    # are overrides all the same, in the order given.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "overrides") or any(item.startswith("-") for item in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    if getattr(args, "episodes", 1) is not None and getattr(args, "episodes", 1) < 1:
        print("error: --episodes must be at least 1", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except PolicylabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
