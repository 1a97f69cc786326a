"""A whole TRPO / NPG policy step on synthetic data."""

import pytest
import torch
from torch.distributions import Normal

from app.algorithms.trpo import TRPO, Batch, surrogate
from app.algorithms.value_fit import fit_value
from app.config import TRPOConfig, ValueConfig
from policies import GaussianPolicy, ValueFunction, mean_kl


def make(name="trpo", max_kl=0.01):
    torch.manual_seed(0)
    policy = GaussianPolicy(4, 2, [-1, -1], [1, 1], hidden_sizes=(16,))
    value = ValueFunction(4, (16,))
    algo = TRPO(policy, value, TRPOConfig(name=name, max_kl=max_kl), ValueConfig(epochs=3, minibatch_size=32))
    g = torch.Generator().manual_seed(1)
    obs = torch.randn(256, 4, generator=g)
    actions = torch.randn(256, 2, generator=g)
    advantages = actions[:, 0] - obs[:, 1]  # a learnable signal: push the mean of dimension 0 up
    returns = torch.randn(256, generator=g)
    batch = Batch(obs, actions, advantages, returns, torch.zeros(256))
    return policy, algo, batch


@pytest.mark.parametrize("max_kl", [0.001, 0.01, 0.05])
def test_trpo_step_stays_in_the_trust_region_and_improves_the_surrogate(max_kl):
    policy, algo, batch = make(max_kl=max_kl)
    with torch.no_grad():
        old = policy.distribution(batch.obs)
        old = Normal(old.loc.clone(), old.scale.clone())
    metrics = algo.update(batch, torch.Generator().manual_seed(0))
    assert metrics["line_search_accepted"] == 1.0 and metrics["policy_rejected"] == 0.0
    with torch.no_grad():
        kl = mean_kl(old, policy.distribution(batch.obs)).item()
    assert 0 < kl <= max_kl
    assert kl == pytest.approx(metrics["kl"], rel=1e-5)
    assert metrics["surrogate_improvement"] > 0


def test_npg_takes_the_full_natural_step():
    _, algo, batch = make(name="npg", max_kl=0.01)
    metrics = algo.update(batch)
    assert metrics["line_search_fraction"] == 1.0
    # The quadratic model puts the full step at KL = max_kl; the true KL is close to it.
    assert metrics["kl"] == pytest.approx(0.01, rel=0.3)


def test_non_finite_gradients_are_rejected_and_parameters_kept():
    policy, algo, batch = make()
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    bad = Batch(batch.obs, batch.actions, batch.advantages * float("nan"), batch.returns, batch.values)
    metrics = algo.policy_step(bad)
    assert metrics["policy_rejected"] == 1.0
    assert all(torch.equal(before[k], v) for k, v in policy.state_dict().items())


def test_value_fit_rejects_non_finite_targets_and_restores_the_network():
    value = ValueFunction(3, (8,))
    opt = torch.optim.Adam(value.parameters(), lr=1e-2)
    obs, targets = torch.randn(64, 3), torch.randn(64)
    fit_value(value, opt, obs, targets, epochs=1, minibatch_size=16)
    before_params = {k: v.clone() for k, v in value.state_dict().items()}
    before_step = opt.state_dict()["state"][0]["step"].clone()
    targets[5] = float("inf")
    metrics = fit_value(value, opt, obs, targets, epochs=2, minibatch_size=16)
    assert metrics["value_rejected"] == 1.0
    assert all(torch.equal(before_params[k], v) for k, v in value.state_dict().items())
    assert torch.equal(opt.state_dict()["state"][0]["step"], before_step)


def test_value_fit_reduces_the_regression_loss():
    torch.manual_seed(0)
    value = ValueFunction(3, (32,))
    opt = torch.optim.Adam(value.parameters(), lr=1e-2)
    obs = torch.randn(512, 3)
    targets = obs[:, 0] * 2 + obs[:, 1].sin()
    first = (value(obs) - targets).square().mean().item()
    fit_value(value, opt, obs, targets, epochs=30, minibatch_size=64, generator=torch.Generator().manual_seed(0))
    assert (value(obs) - targets).square().mean().item() < 0.1 * first


def test_surrogate_is_the_mean_advantage_at_the_old_policy():
    dist = Normal(torch.zeros(5, 2), torch.ones(5, 2))
    actions, adv = torch.randn(5, 2), torch.randn(5)
    old_logp = dist.log_prob(actions).sum(-1)
    value, _ = surrogate(dist, actions, adv, old_logp)
    assert value.item() == pytest.approx(adv.mean().item())
