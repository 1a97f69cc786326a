"""Videos, plots and reports: the MP4 is real, the overlay draws, curves come from progress.csv."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import yaml

import envs
from app.checkpoint import load_checkpoint
from app.config import load_config
from app.errors import CheckpointError, ConfigError
from app.plots import plot_run, plot_runs
from app.report import write_report
from app.runner import Trainer, new_run_dir
from app.video import RenderError, draw_overlay, render_episode, render_run, select_gl_backend


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    reader = imageio.get_reader(path)
    frames, fps = [np.asarray(f) for f in reader], reader.get_meta_data()["fps"]
    reader.close()
    return frames, fps


def test_render_writes_decodable_h264_at_the_control_rate(trained_run):
    videos = render_run(trained_run, episodes=2, width=96, height=64)
    assert [p.name for p, _ in videos] == ["latest-192steps-ep0.mp4", "latest-192steps-ep1.mp4"]
    for path, episode in videos:
        assert path.parent == trained_run / "videos"
        frames, fps = read_video(path)
        assert len(frames) == episode.length + 1  # the initial state, then one frame per control step
        assert frames[0].shape == (64, 96, 3)
        assert fps == pytest.approx(25.0)  # InvertedPendulum-v5: dt = 0.04 s
        assert all(f.std() > 5 for f in frames)  # not blank
        assert any(np.abs(a.astype(int) - b).mean() > 0.5 for a, b in itertools.pairwise(frames))
    with imageio.get_reader(videos[0][0]) as reader:
        assert reader.get_meta_data()["codec"] == "h264"


def test_frames_change_without_overlay_and_overlay_draws_only_its_corner(trained_run):
    cfg = load_config("inverted_pendulum")
    env = envs.make_single(cfg.task)
    from app.evaluate import load_policy

    ckpt = load_checkpoint(trained_run / "checkpoints" / "latest.pt")
    policy = load_policy(ckpt, load_config("inverted_pendulum", ["policy.hidden_sizes=[16]"]), env, Path("x"))
    plain = render_episode(policy, env, seed=3, width=160, height=120, overlay=False, max_steps=5)
    marked = render_episode(policy, env, seed=3, width=160, height=120, overlay=True, max_steps=5)
    env.close()
    assert len(plain.frames) == 6 and not np.array_equal(plain.frames[0], plain.frames[-1])
    diff = np.abs(plain.frames[2].astype(int) - marked.frames[2]).sum(axis=2)
    rows, cols = np.nonzero(diff)
    assert len(rows) > 50  # the text box is there
    assert rows.max() < 60 and cols.max() < 120  # and only in the top-left corner
    a, b = draw_overlay(plain.frames[0], ["step 1"]), draw_overlay(plain.frames[0], ["step 2"])
    assert not np.array_equal(a, b)  # the text itself changes pixels


def test_no_rendering_backend_names_what_was_tried(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    with pytest.raises(RenderError, match=r"tried egl \(no EGL\); osmesa \(no OSMesa\).*apt install libosmesa6"):
        select_gl_backend(probe=lambda b: f"no {b.upper() if b == 'egl' else 'OSMesa'}", mujoco_loaded=False)
    assert select_gl_backend(probe=lambda b: None if b == "osmesa" else "broken", mujoco_loaded=False) == "osmesa"
    import os

    assert os.environ["MUJOCO_GL"] == "osmesa"


def test_bad_render_requests_are_clear_errors(tmp_path, trained_run):
    with pytest.raises(CheckpointError, match="run directory not found"):
        render_run(tmp_path / "nope")
    with pytest.raises(RenderError, match="must be even"):
        render_run(trained_run, width=101)
    with pytest.raises(RenderError, match="unknown camera 'top'; valid: track, free"):
        render_run(trained_run, episodes=1, width=32, height=32, camera="top")
    config = trained_run / "config.yaml"
    data = yaml.safe_load(config.read_text())
    data["task"]["id"], data["task"]["name"] = "Hopper-v5", "hopper"
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(CheckpointError, match=r"is from task inverted_pendulum .* but run .* trains hopper"):
        render_run(trained_run)


def test_odd_training_video_size_is_a_config_error(tmp_path, fast):
    cfg = load_config("inverted_pendulum", [*fast, "train.video_every=1", "train.video_width=33"])
    with pytest.raises(ConfigError, match=r"train.video_width, train.video_height: video size 33x240: .* even"):
        Trainer(cfg, new_run_dir(cfg))


def fake_run(root: Path, task: str, seed: int, scale: float) -> Path:
    run = root / task / f"run-s{seed}"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"task": {"name": task, "id": "X-v5"}, "algo": {"name": "trpo"}}))
    with (run / "progress.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["iteration", "env_steps", "wall_time", "episode_return", "eval_return"])
        for i in range(1, 21):
            writer.writerow([i, i * 2048, i * 1.5 + seed, scale * np.log1p(i) + seed, "" if i % 5 else scale * i])
    return run


def test_plots_from_progress_csv(tmp_path):
    runs = [fake_run(tmp_path, "hopper", s, 100.0) for s in range(3)] + [fake_run(tmp_path, "walker", 0, 50.0)]
    out = plot_runs([tmp_path / "hopper", runs[3]], tmp_path / "curves.png")
    image = imageio.imread(out)
    assert image.shape[0] > 300 and image.shape[1] > 800 and image[..., :3].std() > 10
    single = plot_run(runs[0])
    assert single == runs[0] / "plots" / "learning_curve.png" and single.stat().st_size > 10_000
    with pytest.raises(Exception, match="run directory not found"):
        plot_runs([tmp_path / "missing"], tmp_path / "x.png")


def test_training_videos_go_to_videos_and_tensorboard_and_the_run_gets_a_report(tmp_path, fast):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    video = ["train.video_every=2", "train.video_width=64", "train.video_height=48"]
    cfg = load_config("inverted_pendulum", [*fast, *video])
    run = new_run_dir(cfg)
    Trainer(cfg, run).run()
    videos = sorted(p.name for p in (run / "videos").glob("*.mp4"))
    assert videos == ["train-iter_000002.mp4"]
    frames, _ = read_video(run / "videos" / videos[0])
    assert frames[0].shape == (48, 64, 3)
    events = EventAccumulator(str(run), size_guidance={"images": 0})
    events.Reload()
    assert "eval/video" in events.Tags()["images"]
    assert (run / "plots" / "learning_curve.png").is_file()
    report = (run / "report.md").read_text()
    assert "inverted_pendulum" in report and "trpo" in report and "final return" in report
    assert "](plots/learning_curve.png)" in report and "](videos/train-iter_000002.mp4)" in report
    assert write_report(run) == run / "report.md"
