"""Conjugate gradient, Fisher-vector products and the TRPO line search."""

import pytest
import torch
from torch.distributions import Normal

from app.algorithms.numerics import (
    GaussianFisher,
    LinearizedMLP,
    backtracking_line_search,
    conjugate_gradient,
    fisher_vector_product,
    flat_params,
    set_flat_params,
)
from policies import GaussianPolicy, mean_kl


def test_conjugate_gradient_solves_a_known_spd_system():
    # A = [[4, 1], [1, 3]], b = [1, 2]  ->  x = A^-1 b = [1/11, 7/11] (by hand: det = 11).
    a = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    b = torch.tensor([1.0, 2.0], dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iters=2)
    torch.testing.assert_close(x, torch.tensor([1 / 11, 7 / 11], dtype=torch.float64))


def test_conjugate_gradient_matches_a_direct_solve():
    g = torch.Generator().manual_seed(1)
    m = torch.randn(30, 30, generator=g, dtype=torch.float64)
    a = m @ m.T + 30 * torch.eye(30, dtype=torch.float64)
    b = torch.randn(30, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iters=30, tol=1e-20)
    torch.testing.assert_close(x, torch.linalg.solve(a, b), rtol=1e-8, atol=1e-10)


def tiny_policy() -> GaussianPolicy:
    torch.manual_seed(0)
    policy = GaussianPolicy(3, 2, [-1, -1], [1, 1], hidden_sizes=(4,), init_log_std=-0.3, ortho_init=False).double()
    policy.normalizer.update(torch.randn(50, 3, dtype=torch.float64) * 2 + 1)
    return policy


def test_fisher_vector_product_equals_explicit_kl_hessian():
    policy = tiny_policy()
    params = list(policy.parameters())
    obs = torch.randn(16, 3, dtype=torch.float64)
    theta0 = flat_params(params)
    with torch.no_grad():
        old = policy.distribution(obs)
        old = Normal(old.loc.clone(), old.scale.clone())

    def kl_of(theta):
        # Rebuild the policy function with parameters given as one vector (for the Hessian).
        offset, tensors = 0, []
        for p in params:
            tensors.append(theta[offset : offset + p.numel()].view_as(p))
            offset += p.numel()
        names = [n for n, _ in policy.named_parameters()]
        out = torch.func.functional_call(policy, dict(zip(names, tensors, strict=True)), (obs,))
        std = tensors[names.index("log_std")].exp().expand_as(out)
        return mean_kl(old, Normal(out, std))

    hessian = torch.autograd.functional.hessian(kl_of, theta0)
    v = torch.randn(theta0.numel(), dtype=torch.float64)
    fvp = fisher_vector_product(lambda: mean_kl(old, policy.distribution(obs)), params, v, damping=0.0)
    torch.testing.assert_close(fvp, hessian @ v, rtol=1e-8, atol=1e-10)
    damped = fisher_vector_product(lambda: mean_kl(old, policy.distribution(obs)), params, v, damping=0.1)
    torch.testing.assert_close(damped, hessian @ v + 0.1 * v, rtol=1e-8, atol=1e-10)
    # the closed form J^T diag(sigma^-2) J / B (+) 2 I gives the same products
    closed_form = GaussianFisher(policy, obs, params, damping=0.1)
    torch.testing.assert_close(closed_form(v), hessian @ v + 0.1 * v, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("activation", ["tanh", "relu", "elu", "silu"])
def test_gaussian_fisher_equals_the_kl_hessian_for_each_activation_and_frozen_parameters(activation):
    torch.manual_seed(1)
    policy = GaussianPolicy(3, 2, [-1, -1], [1, 1], hidden_sizes=(5, 4), activation=activation).double()
    policy.normalizer.update(torch.randn(50, 3, dtype=torch.float64) * 2 + 1)
    policy.mean_net[2].weight.requires_grad_(False)  # a frozen middle layer: no tangent, no gradient
    params = [p for p in policy.parameters() if p.requires_grad]
    obs = torch.randn(32, 3, dtype=torch.float64)
    with torch.no_grad():
        old = policy.distribution(obs)
        old = Normal(old.loc.clone(), old.scale.clone())
    v = torch.randn(sum(p.numel() for p in params), dtype=torch.float64)
    reference = fisher_vector_product(lambda: mean_kl(old, policy.distribution(obs)), params, v, damping=0.1)
    torch.testing.assert_close(GaussianFisher(policy, obs, params, damping=0.1)(v), reference, rtol=1e-8, atol=1e-10)


def test_gaussian_fisher_by_hand_for_a_linear_mean():
    # mu(s) = w s (one weight, no bias, s = 1 and 3, unnormalized), sigma = e^0.5: F_w = mean(s^2) / sigma^2
    # = (1 + 9) / 2 / e, F_log_std = 2. Parameters come log_std first, so F [1, 1] = [2, 5 / e].
    policy = GaussianPolicy(1, 1, [-1], [1], hidden_sizes=(), init_log_std=0.5, normalize_obs=False).double()
    policy.mean_net[0].bias.requires_grad_(False)
    params = [p for p in policy.parameters() if p.requires_grad]
    obs = torch.tensor([[1.0], [3.0]], dtype=torch.float64)
    fv = GaussianFisher(policy, obs, params, damping=0.0)(torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(fv, torch.tensor([2.0, 5.0 / torch.e], dtype=torch.float64))


def _search_setup():
    policy = tiny_policy()
    params = list(policy.parameters())
    obs = torch.randn(64, 3, dtype=torch.float64)
    with torch.no_grad():
        old = policy.distribution(obs)
        old = Normal(old.loc.clone(), old.scale.clone())
    return params, lambda: mean_kl(old, policy.distribution(obs)).item()


def test_line_search_never_accepts_kl_above_delta():
    params, kl_now = _search_setup()
    g = torch.Generator().manual_seed(3)
    max_kl, fractions = 1e-3, []
    for _ in range(20):
        direction = torch.randn(flat_params(params).numel(), generator=g, dtype=torch.float64) * 0.5
        seen: list[float] = []

        def evaluate(seen=seen):
            with torch.no_grad():
                seen.append(kl_now())
            return 1.0, seen[-1]  # the surrogate always improves: only the KL decides

        before = flat_params(params)
        result = backtracking_line_search(params, direction, evaluate, 0.0, max_kl, shrink=0.5, max_tries=10)
        if result.accepted:
            assert result.kl <= max_kl and kl_now() <= max_kl
            assert all(k > max_kl for k in seen[:-1])  # the first acceptable step is taken
            torch.testing.assert_close(flat_params(params), before + result.step_fraction * direction)
            fractions.append(result.step_fraction)
        else:
            torch.testing.assert_close(flat_params(params), before)
        set_flat_params(params, before)
    assert fractions and min(fractions) < 1.0  # it did backtrack, and did accept


def test_line_search_restores_parameters_when_it_fails():
    params, _ = _search_setup()
    before = flat_params(params).clone()
    step = torch.full_like(before, 0.01)

    def evaluate():  # the surrogate never improves
        return -1.0, 0.0

    result = backtracking_line_search(params, step, evaluate, 0.0, max_kl=1.0, shrink=0.8, max_tries=10)
    assert not result.accepted and result.tries == 10 and result.step_fraction == 0.0
    assert torch.equal(flat_params(params), before)


def test_line_search_accepts_the_first_step_that_satisfies_both_conditions():
    params, _ = _search_setup()
    calls = []

    def evaluate():
        calls.append(1)
        return (0.5, 0.2) if len(calls) < 3 else (0.4, 0.01)  # KL too large twice, then fine

    result = backtracking_line_search(params, torch.zeros_like(flat_params(params)), evaluate, 0.0, 0.05, 0.8, 10)
    assert result.accepted and result.tries == 3
    assert abs(result.step_fraction - 0.64) < 1e-12


def test_linearized_mlp_refuses_a_net_that_is_not_linear_activation_linear():
    with pytest.raises(ValueError, match="Sequential of Linear, activation"):
        LinearizedMLP(torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Linear(2, 2)), torch.zeros(1, 2))
