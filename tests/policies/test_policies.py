"""Gaussian policy, value function and the running observation normalizer."""

import subprocess
import sys

import numpy as np
import torch
from gymnasium import spaces

import app.config
from policies import GaussianPolicy, RunningNormalizer, ValueFunction
from policies.config import PolicyConfig
from policies.factory import build_policy


def test_normalizer_matches_numpy_over_several_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)) for n in (1, 7, 100, 33)]
    norm = RunningNormalizer(4)
    for b in batches:
        norm.update(torch.as_tensor(b))
    data = np.concatenate(batches)
    np.testing.assert_allclose(norm.mean.numpy(), data.mean(0), rtol=1e-12)
    np.testing.assert_allclose(norm.var.numpy(), data.var(0), rtol=1e-10)
    assert norm.count.item() == len(data)
    x = torch.as_tensor(data[:5], dtype=torch.float32)
    expected = (data[:5] - data.mean(0)) / np.sqrt(data.var(0) + 1e-8)
    np.testing.assert_allclose(norm(x).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_normalizer_clips_skips_non_finite_rows_and_can_be_disabled():
    norm = RunningNormalizer(2, clip=3.0)
    norm.update(torch.tensor([[0.0, 0.0], [2.0, 2.0], [float("nan"), 1.0]]))
    assert norm.count.item() == 2  # the NaN row was skipped
    assert norm(torch.tensor([[1000.0, -1000.0]])).tolist() == [[3.0, -3.0]]
    off = RunningNormalizer(2, enabled=False)
    off.update(torch.ones(3, 2) * 5)
    x = torch.tensor([[5.0, 6.0]])
    assert torch.equal(off(x), x) and off.count.item() == 0


def test_normalizer_state_travels_in_the_policy_state_dict():
    policy = GaussianPolicy(3, 2, [-1, -1], [1, 1])
    policy.normalizer.update(torch.randn(20, 3) + 5)
    clone = GaussianPolicy(3, 2, [-1, -1], [1, 1])
    clone.load_state_dict(policy.state_dict())
    assert {"normalizer.mean", "normalizer.var", "normalizer.count"} <= set(policy.state_dict())
    obs = torch.randn(4, 3)
    assert torch.equal(clone(obs), policy(obs))


def test_policy_deterministic_mode_is_the_mean_and_actions_are_scaled_to_actuator_units():
    torch.manual_seed(0)
    policy = GaussianPolicy(3, 2, [-0.4, 0.0], [0.4, 2.0], hidden_sizes=(8,), init_log_std=-1.0)
    obs = torch.randn(5, 3)
    dist = policy.distribution(obs)
    assert torch.equal(dist.mean, policy(obs))
    assert torch.allclose(dist.stddev, torch.full((5, 2), float(np.exp(-1.0))))
    # u = center + half_range * clip(a, -1, 1): center (0, 1), half range (0.4, 1)
    a = torch.tensor([[0.5, -0.5], [2.0, -3.0]])
    assert torch.allclose(policy.to_env_action(a), torch.tensor([[0.2, 0.5], [0.4, 0.0]]))
    assert torch.allclose(policy.act(obs), policy.to_env_action(policy(obs)))


def test_sampling_is_reproducible_from_the_generator():
    policy = GaussianPolicy(3, 2, [-1, -1], [1, 1])
    obs = torch.randn(4, 3)
    a = policy.sample(obs, torch.Generator().manual_seed(7))
    b = policy.sample(obs, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and not torch.equal(a, policy(obs))


def test_unbounded_action_dimensions_pass_through():
    policy = GaussianPolicy(2, 2, [-np.inf, -1], [np.inf, 1])
    a = torch.tensor([[5.0, 5.0]])
    assert policy.to_env_action(a).tolist() == [[5.0, 1.0]]


def test_value_function_shape():
    value = ValueFunction(6, (16, 16))
    assert value(torch.randn(10, 6)).shape == (10,)


class OneEnv:
    """A single environment as Gymnasium shows it: the spaces are all the builder reads."""

    observation_space = spaces.Box(-np.inf, np.inf, (3,))
    action_space = spaces.Box(np.array([-0.4, 0.0], dtype=np.float32), np.array([0.4, 2.0], dtype=np.float32))


def test_the_policy_is_built_from_its_config_section():
    cfg = PolicyConfig(hidden_sizes=(8, 4), activation="relu", init_log_std=-1.0, normalize_obs=False, obs_clip=3.0)
    policy = build_policy(cfg, OneEnv())
    assert (policy.obs_dim, policy.act_dim) == (3, 2) and policy.spec is None
    assert [m.out_features for m in policy.mean_net if isinstance(m, torch.nn.Linear)] == [8, 4, 2]
    assert any(isinstance(m, torch.nn.ReLU) for m in policy.mean_net)
    assert torch.equal(policy.log_std.detach(), torch.full((2,), -1.0))
    assert not policy.normalizer.enabled and policy.normalizer.clip == 3.0
    assert torch.allclose(policy.action_center, torch.tensor([0.0, 1.0]))


def test_policies_own_the_policy_section_and_import_nothing_of_app():
    assert app.config.PolicyConfig is PolicyConfig and isinstance(app.config.Config().policy, PolicyConfig)
    code = "import sys, policies.factory, policies.config; print(any(m.split('.')[0] == 'app' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
