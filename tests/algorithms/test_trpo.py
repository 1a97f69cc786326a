"""A whole TRPO / NPG policy step on synthetic data."""

import pytest
import torch
from torch.distributions import Normal

from app.algorithms.npg import NPG, NPGConfig
from app.algorithms.numerics import flat_params
from app.algorithms.trpo import TRPO, TRPOConfig, surrogate
from app.algorithms.value_fit import fit_value
from app.config import ValueConfig
from policies import GaussianPolicy, ValueFunction, mean_kl
from tests.algorithms.batches import flat_batch


def make(name="trpo", max_kl=0.01, full_step_signal=0.0):
    torch.manual_seed(0)
    policy = GaussianPolicy(4, 2, [-1, -1], [1, 1], hidden_sizes=(16,))
    value = ValueFunction(4, (16,))
    cls, cfg_cls = (TRPO, TRPOConfig) if name == "trpo" else (NPG, NPGConfig)
    cfg = cfg_cls(max_kl=max_kl, full_step_signal=full_step_signal)
    algo = cls(policy, value, cfg, ValueConfig(epochs=3, minibatch_size=32))
    g = torch.Generator().manual_seed(1)
    obs = torch.randn(256, 4, generator=g)
    actions = torch.randn(256, 2, generator=g)
    advantages = actions[:, 0] - obs[:, 1]  # a learnable signal: push the mean of dimension 0 up
    returns = torch.randn(256, generator=g)
    batch = flat_batch(obs, actions, advantages, returns, time_shape=(32, 8))
    return policy, algo, batch


@pytest.mark.parametrize("max_kl", [0.001, 0.01, 0.05])
def test_trpo_step_stays_in_the_trust_region_and_improves_the_surrogate(max_kl):
    policy, algo, batch = make(max_kl=max_kl)
    with torch.no_grad():
        old = policy.distribution(batch.obs)
        old = Normal(old.loc.clone(), old.scale.clone())
    result = algo.update(batch, torch.Generator().manual_seed(0))
    metrics = result.metrics
    assert metrics["line_search_accepted"] == 1.0 and result.rejected is None
    with torch.no_grad():
        kl = mean_kl(old, policy.distribution(batch.obs)).item()
    assert 0 < kl <= max_kl
    assert kl == pytest.approx(metrics["kl"], rel=1e-5)
    assert metrics["surrogate_improvement"] > 0


def dense_natural_step(policy, batch, damping, max_kl):
    """Brute force: F from double backpropagation on every basis vector, s = (F + damping I)^-1 g by a dense
    solve, and the step sqrt(2 delta / s^T (F + damping I) s) s, all in float64: [P]."""
    from app.algorithms.numerics import fisher_vector_product, flat_grad

    params = [p for p in policy.parameters() if p.requires_grad]
    with torch.no_grad():
        fixed = policy.distribution(batch.obs)
        fixed = Normal(fixed.loc.clone(), fixed.scale.clone())
    size = sum(p.numel() for p in params)
    eye = torch.eye(size)
    fisher = torch.stack(
        [fisher_vector_product(lambda: mean_kl(fixed, policy.distribution(batch.obs)), params, e, damping) for e in eye]
    ).double()
    logp = policy.distribution(batch.obs).log_prob(batch.actions).sum(-1)
    g = flat_grad((torch.exp(logp - logp.detach()) * batch.advantages).mean(), params).double()  # grad of L at theta_k
    s = torch.linalg.solve(fisher, g)
    return torch.sqrt(2.0 * max_kl / (s @ fisher @ s)) * s, fisher


@pytest.mark.parametrize("name", ["npg", "trpo"])
def test_the_step_is_sqrt_2_delta_over_sFs_times_s_against_a_dense_solve(name):
    # NPG takes the full step; TRPO the full step times the accepted line-search fraction 0.8^(tries - 1).
    # Both: the full step's quadratic-model KL, 1/2 step^T (F + damping I) step, is exactly max_kl.
    policy, _, batch = make(name=name, max_kl=0.05)
    cls, cfg_cls = (TRPO, TRPOConfig) if name == "trpo" else (NPG, NPGConfig)
    algo = cls(policy, ValueFunction(4, (16,)), cfg_cls(max_kl=0.05, cg_iters=300, cg_tol=1e-14), ValueConfig())
    expected, fisher = dense_natural_step(policy, batch, 0.1, 0.05)
    before = flat_params(algo.params).double()
    metrics = algo.policy_step(batch, torch.Generator().manual_seed(0)).metrics
    taken = flat_params(algo.params).double() - before
    fraction = metrics["line_search_fraction"]
    if name == "trpo":
        assert metrics["line_search_accepted"] == 1.0
        assert fraction == pytest.approx(0.8 ** (metrics["line_search_tries"] - 1))
    else:
        assert fraction == 1.0 and metrics["line_search_tries"] == 0
    assert 0.5 * expected @ fisher @ expected == pytest.approx(0.05, rel=1e-9)  # the reference itself
    torch.testing.assert_close(taken / fraction, expected, rtol=2e-3, atol=2e-3 * expected.abs().max().item())
    assert 0.5 * (taken / fraction) @ fisher @ (taken / fraction) == pytest.approx(0.05, rel=5e-3)


def test_non_finite_gradients_are_rejected_and_parameters_kept():
    policy, algo, batch = make()
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    bad = flat_batch(batch.obs, batch.actions, batch.advantages * float("nan"), batch.returns)
    result = algo.policy_step(bad)
    assert result.rejected == "non-finite policy gradient"
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
    value = surrogate(dist, actions, adv, old_logp)
    assert value.item() == pytest.approx(adv.mean().item())


def signal_of(algo, batch, seed):
    from app.algorithms.trpo import fisher_product

    params = algo.params
    with torch.no_grad():
        old = algo.policy.distribution(batch.obs)
        old_logp = (old.log_prob(batch.actions)).sum(-1)

    def objective(dist, rows):
        return surrogate(dist, batch.actions[rows], batch.advantages[rows], old_logp[rows])

    fvp = fisher_product(algo.policy, batch.obs, params, 0.1)
    return algo.signal_fraction(batch, objective, fvp, torch.Generator().manual_seed(seed))[0]


def test_the_signal_fraction_is_near_zero_for_noise_advantages_and_near_one_for_a_clear_signal():
    # Advantages independent of the actions: the true gradient is 0, the sample gradient pure noise;
    # two halves' natural gradients are then independent, and their F^-1-cosine has mean 0.
    _, algo, batch = make(full_step_signal=0.5)
    noise = []
    for seed in range(40):
        adv = torch.randn(256, generator=torch.Generator().manual_seed(100 + seed))
        noise.append(signal_of(algo, flat_batch(batch.obs, batch.actions, adv, time_shape=(32, 8)), seed))
    noise = torch.tensor(noise)
    assert abs(noise.mean().item()) < 3 * noise.std().item() / len(noise) ** 0.5 + 0.02
    assert noise.abs().max().item() <= 1.0 + 1e-6  # a cosine (Cauchy-Schwarz)
    # A strong signal (advantage = the first action dimension): the halves agree.
    signal = flat_batch(batch.obs, batch.actions, batch.actions[:, 0] * 3.0, time_shape=(32, 8))
    assert signal_of(algo, signal, 0) > 0.8


def test_the_step_is_scaled_by_signal_over_full_step_signal():
    _, algo, batch = make(max_kl=0.01, full_step_signal=0.5)
    signal = flat_batch(batch.obs, batch.actions, batch.actions[:, 0] * 3.0, batch.returns, time_shape=(32, 8))
    metrics = algo.policy_step(signal, torch.Generator().manual_seed(0)).metrics
    assert metrics["signal_fraction"] > 0.5 and metrics["step_scale"] == 1.0
    real = algo.signal_fraction
    algo.signal_fraction = lambda *args: (0.1, real(*args)[1])  # mostly noise: one fifth of the full step
    metrics = algo.policy_step(signal, torch.Generator().manual_seed(0)).metrics
    assert metrics["step_scale"] == pytest.approx(0.2)
    assert metrics["kl"] <= 0.01 * 0.2**2 * 1.5  # KL scales with the square of the step
    algo.signal_fraction = lambda *args: (-0.3, real(*args)[1])  # the halves disagree: no step at all
    before = [p.detach().clone() for p in algo.params]
    metrics = algo.policy_step(signal, torch.Generator().manual_seed(0)).metrics
    assert metrics["step_scale"] == 0.0 and metrics["kl"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, algo.params, strict=True))


def test_split_halves_takes_whole_environment_columns():
    from app.algorithms.trpo import split_halves

    _, _, batch = make()
    mask = split_halves(batch, torch.Generator().manual_seed(0)).view(32, 8)
    assert int(mask[0].sum()) == 4 and bool((mask == mask[0]).all())  # the same columns at every step


def test_a_policy_that_is_not_a_plain_mlp_gets_the_generic_fisher_product():
    from app.algorithms.numerics import GaussianFisher, fisher_vector_product
    from app.algorithms.trpo import fisher_product

    torch.manual_seed(0)
    policy = GaussianPolicy(4, 2, [-1, -1], [1, 1], hidden_sizes=(8,))
    policy.mean_net = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Tanh(), torch.nn.Linear(8, 2)
    )
    params = [p for p in policy.parameters() if p.requires_grad]
    obs = torch.randn(64, 4)
    fvp = fisher_product(policy, obs, params, 0.1)
    assert not isinstance(fvp, GaussianFisher)
    v = torch.randn(sum(p.numel() for p in params))
    with torch.no_grad():
        fixed = policy.distribution(obs)
        fixed = Normal(fixed.loc.clone(), fixed.scale.clone())
    expected = fisher_vector_product(lambda: mean_kl(fixed, policy.distribution(obs)), params, v, 0.1)
    torch.testing.assert_close(fvp(v), expected)
    # and a plain MLP gets the closed form
    plain = GaussianPolicy(4, 2, [-1, -1], [1, 1], hidden_sizes=(8,))
    assert isinstance(fisher_product(plain, obs, list(plain.parameters()), 0.1), GaussianFisher)


def test_entropy_bonus_pushes_the_log_std_up():
    policy, _, batch = make()
    cfg = TRPOConfig(max_kl=0.01, full_step_signal=0.0, ent_coef=1.0)
    algo = TRPO(policy, ValueFunction(4, (16,)), cfg, ValueConfig(epochs=1))
    before = policy.log_std.detach().clone()
    zero_adv = flat_batch(batch.obs, batch.actions, torch.zeros(256), batch.returns, time_shape=(32, 8))
    algo.policy_step(zero_adv, torch.Generator().manual_seed(0))
    assert bool((policy.log_std.detach() > before).all())


def test_the_halves_natural_gradients_combine_to_the_whole_batch_one():
    from app.algorithms.numerics import conjugate_gradient, flat_grad
    from app.algorithms.trpo import fisher_product

    _, algo, batch = make(full_step_signal=0.5)
    with torch.no_grad():
        old_logp = algo.policy.distribution(batch.obs).log_prob(batch.actions).sum(-1)

    def objective(dist, rows=slice(None)):
        return surrogate(dist, batch.actions[rows], batch.advantages[rows], old_logp[rows])

    fvp = fisher_product(algo.policy, batch.obs, algo.params, 0.1)
    _, step_dir = algo.signal_fraction(batch, objective, fvp, torch.Generator().manual_seed(0))
    g = flat_grad(objective(algo.policy.distribution(batch.obs)), algo.params)
    direct = conjugate_gradient(fvp, g, 200, 1e-20)
    torch.testing.assert_close(step_dir, direct, rtol=0.05, atol=1e-3 * direct.abs().max())


def test_a_zero_gradient_is_no_step_not_a_rejection():
    # every advantage 0 (e.g. a solved task without advantage normalization): g = 0, CG returns 0
    _, algo, batch = make()
    before = [p.detach().clone() for p in algo.params]
    zero = flat_batch(batch.obs, batch.actions, torch.zeros(256), batch.returns, time_shape=(32, 8))
    result = algo.policy_step(zero, torch.Generator().manual_seed(0))
    assert result.rejected is None and result.metrics["step_scale"] == 0.0 and result.metrics["kl"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, algo.params, strict=True))


@pytest.mark.parametrize("schedule", ["linear", "constant"])
def test_the_trust_region_shrinks_linearly_over_the_run(schedule):
    # delta_k = delta (1 - k / K) after k of K updates (never below delta / K); NPG's full step has the
    # quadratic-model KL 1/2 step^T (F + damping I) step = delta_k exactly, checked against a dense solve.
    policy, _, batch = make(name="npg")
    cfg = NPGConfig(max_kl=0.04, cg_iters=300, cg_tol=1e-14, kl_schedule=schedule)
    algo = NPG(policy, ValueFunction(4, (16,)), cfg, ValueConfig(epochs=1), total_updates=4)
    expected = [0.04, 0.03, 0.02, 0.01, 0.01] if schedule == "linear" else [0.04] * 5
    for k, delta in enumerate(expected):
        _, fisher = dense_natural_step(policy, batch, 0.1, delta)
        before = flat_params(algo.params).double()
        metrics = algo.update(batch, torch.Generator().manual_seed(k)).metrics
        taken = flat_params(algo.params).double() - before
        assert metrics["max_kl"] == pytest.approx(delta, rel=1e-12)
        assert 0.5 * taken @ fisher @ taken == pytest.approx(delta, rel=5e-3)
    resumed = NPG(policy, ValueFunction(4, (16,)), cfg, ValueConfig(epochs=1), total_updates=4)
    resumed.load_state_dict(algo.state_dict())  # a resumed run continues the schedule where it was
    assert resumed.updates == 5 and resumed.max_kl == pytest.approx(expected[-1])
    old = algo.state_dict()
    del old["updates"]  # a checkpoint written before the schedule existed starts it again
    resumed.load_state_dict(old)
    assert resumed.updates == 0
