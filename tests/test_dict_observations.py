"""Dict observations end to end: the camera task, per-field rollouts, the CNN policy, exact resume, export."""

from __future__ import annotations

import json
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from tensordict import TensorDict

import envs
from app.checkpoint import load_checkpoint
from app.cli import main
from app.config import load_config
from app.export import export_run
from app.rollout import EpisodeTracker, collect
from app.runner import Trainer, new_run_dir
from envs.driving.task import DrivingCamera
from envs.native.gym_env import NativeGymEnv
from envs.native.vecenv import NativeVecEnv
from policies.encoders import ConvEncoder, DictNormalizer
from policies.factory import build_policy
from tests.test_training import assert_resume_is_exact

SMALL = [
    "task.num_envs=4",
    "train.steps_per_env=16",
    "train.progress=none",
    "train.eval_every=2",
    "train.eval_episodes=2",
    "task.driving.camera_size=[24,24]",
    "task.max_episode_steps=40",
]


def camera_env(n: int = 4, **kwargs) -> NativeVecEnv:
    return NativeVecEnv(DrivingCamera, n, nthread=1, **kwargs)


def test_camera_observations_are_a_tensordict_with_uint8_pixels_and_a_dict_space():
    env = camera_env()
    obs = env.reset(seed=0)
    assert isinstance(obs, TensorDict) and obs.batch_size == torch.Size([4])
    assert obs["camera"].dtype == torch.uint8 and obs["camera"].shape == (4, 64, 64, 3)
    assert obs["state"].dtype == torch.float32 and obs["state"].shape == (4, 3)
    assert set(env.observation_space.spaces) == {"camera", "state"}
    spec = env.observation_spec
    assert spec["camera"].is_image and not spec["camera"].normalize and spec["state"].normalize
    check_env(NativeGymEnv("policylab/DrivingCamera-v0"), skip_render_check=True)


def test_the_ray_cast_camera_matches_mujocos_render_of_the_scene():
    """Sky, the right (yellow) wall and the floor fall on the same pixels as in MuJoCo's own render."""
    env = camera_env(3)
    env.reset(seed=1)
    for _ in range(10):
        obs, *_ = env.step(torch.full((3, 1), 0.05))
    for i in range(3):
        ours = obs["camera"][i].numpy().astype(int)
        model, data = env.task.render_scene(env.sim, i)
        with mujoco.Renderer(model, 64, 64) as renderer:
            renderer.update_scene(data, camera="front")
            for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
                renderer.scene.flags[flag] = False
            reference = renderer.render().astype(int)
        sky_ours, sky_ref = ours.sum(-1) < 15, reference.sum(-1) < 15
        yellow_ours = ours[..., 0] - ours[..., 2] > 30
        yellow_ref = reference[..., 0] - reference[..., 2] > 30
        assert (sky_ours == sky_ref).mean() > 0.95, i
        assert (yellow_ours == yellow_ref).mean() > 0.9, i


def test_rollouts_store_each_field_and_the_normalizer_skips_pixels():
    cfg = load_config("driving_camera", SMALL)
    env = envs.make(cfg.task)
    policy = build_policy(cfg.policy, env)
    assert isinstance(policy.normalizer, DictNormalizer) and policy.normalizer.keys == ["state"]
    assert isinstance(policy.encoder.cnns["camera"], ConvEncoder)
    obs = env.reset(seed=0)
    rollout, _, _ = collect(env, policy, obs, 8, torch.Generator().manual_seed(0), EpisodeTracker(4))
    assert rollout.obs["camera"].shape == (8, 4, 24, 24, 3) and rollout.obs["camera"].dtype == torch.uint8
    assert rollout.obs["state"].shape == (8, 4, 3) and rollout.is_finite()
    policy.normalizer.update(rollout.obs)
    assert float(policy.normalizer.fields["state"].count) == 32.0
    # the same observation as a Gymnasium dict gives the same action (render and export feed it that way)
    from app.video import policy_input

    single = {k: v[0].numpy() for k, v in obs.items()}
    assert torch.allclose(policy.act(policy_input(single, "cpu")), policy.act(obs[:1]))


def test_a_camera_run_resumes_exactly(tmp_path):
    # 4 envs x 16 steps per iteration: 256 steps are 4 iterations
    assert_resume_is_exact(tmp_path, "driving_camera", [*SMALL, "algo.lr_schedule=constant"], steps=256, iterations=4)
    (run,) = (tmp_path / "a").glob("*/*")
    saved = load_checkpoint(run / "checkpoints" / "latest.pt")["task"]["observation_spec"]["camera"]
    assert saved == {"shape": [24, 24, 3], "dtype": "uint8", "normalize": False}


@pytest.fixture(scope="module")
def camera_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("camera")
    cfg = load_config("driving_camera", [*SMALL, f"train.runs_dir={root}", "train.total_steps=128"])
    summary = Trainer(cfg, new_run_dir(cfg)).run()
    return Path(summary["run_dir"])


def test_an_image_policy_exports_to_onnx_and_torchscript_matching_pytorch(camera_run):
    result = export_run(camera_run)
    assert set(result.report) == {"onnxruntime", "torchscript"}
    assert all(d <= 1e-5 for diffs in result.report.values() for d in diffs.values()), result.text
    assert "policy.c not written" in result.text and "camera through a CNN" in result.text
    names = {p.name for p in result.folder.iterdir()}
    assert {"policy.onnx", "policy.pt", "policy.json"} <= names and "policy.c" not in names
    meta = json.loads((result.folder / "policy.json").read_text())
    assert [i["name"] for i in meta["io"]["inputs"]] == ["camera", "state"]
    assert meta["io"]["inputs"][0] == {"name": "camera", "shape": ["batch", 24, 24, 3], "dtype": "uint8"}
    assert len(meta["normalizer"]["state"]["mean"]) == 3 and "camera" not in meta["normalizer"]

    import onnxruntime as ort

    session = ort.InferenceSession(str(result.folder / "policy.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["camera", "state"]
    out = session.run(["action"], {"camera": np.zeros((5, 24, 24, 3), np.uint8), "state": np.zeros((5, 3), np.float32)})
    assert out[0].shape == (5, 1)


def test_deploy_sim_refuses_an_image_policy_with_a_clear_message(camera_run, capfd):
    export_run(camera_run)
    assert main(["deploy-sim", str(camera_run)]) == 2
    assert "reads several observation fields (camera, state)" in capfd.readouterr().err
