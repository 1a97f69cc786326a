"""deploy-sim's controller for Gymnasium tasks: the env's own observation against the layout's, its reward."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from envs.gym_deploy import GymController
from envs.obs_layout import gym_observation_layout


def export_of(env_id: str, layout: list | None) -> dict:
    """The part of policy.json GymController reads."""
    return {"task": "t", "env_id": env_id, "env_kwargs": {}, "max_episode_steps": 50, "observation": {"layout": layout}}


def test_the_layouts_observation_is_the_envs_own_and_episodes_follow_the_seed():
    layout = gym_observation_layout(gym.make("Hopper-v5").unwrapped)
    controller = GymController.from_export(export_of("Hopper-v5", layout), seed=3)
    assert controller.max_episode_steps == 50
    returns = []
    for _ in range(2):
        controller.reset(1)  # the same episode twice, with the same actions
        rng = np.random.default_rng(0)
        total, steps, done = 0.0, 0, False
        while not done:
            assert np.array_equal(controller.observation(), controller.reference_observation())
            reward, done = controller.step(rng.uniform(-0.3, 0.3, 3))
            total, steps = total + reward, steps + 1
        returns.append(total)
    assert returns[0] == returns[1] and steps <= 50
    assert controller.episode_stats() == {} and controller.summary_lines(controller.summarize([{}]), {}) == []


def test_a_task_without_a_layout_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="no observation layout; deploy-sim supports Gymnasium MuJoCo tasks"):
        GymController.from_export(export_of("Hopper-v5", None), seed=0)
