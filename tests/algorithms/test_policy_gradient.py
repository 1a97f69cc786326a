"""REINFORCE / VPG and A2C: return estimates against brute force, causality, baselines (the optimal one
against a brute-force variance minimization; all unbiased on a bandit), importance weights."""

import dataclasses
import itertools

import pytest
import torch

from app.algorithms.a2c import A2C, A2CConfig
from app.algorithms.base import importance_weights, policy_gradient_loss
from app.algorithms.vpg import VPG, VPGConfig, optimal_baseline, reward_to_go, segment_ids, trajectory_returns
from app.config import ValueConfig
from policies import GaussianPolicy, ValueFunction, log_prob
from tests.algorithms.batches import entropy_gradient, flat_batch, flat_grads, per_sample_grads


def brute_reward_to_go(rewards, next_values, terminated, truncated, gamma):
    """Per column, per t: walk forward to the episode's end within the rollout, then bootstrap."""
    steps, cols = rewards.shape
    out = torch.zeros(steps, cols, dtype=torch.float64)
    for m, t in itertools.product(range(cols), range(steps)):
        total, k = 0.0, t
        while True:
            total += gamma ** (k - t) * rewards[k, m].item()
            if terminated[k, m]:
                break
            if truncated[k, m] or k == steps - 1:
                total += gamma ** (k + 1 - t) * next_values[k, m].item()
                break
            k += 1
        out[t, m] = total
    return out


def random_rollout(seed, steps=9, cols=3):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(steps, cols, generator=g, dtype=torch.float64)
    next_values = torch.randn(steps, cols, generator=g, dtype=torch.float64)
    terminated = torch.rand(steps, cols, generator=g) < 0.15
    truncated = (torch.rand(steps, cols, generator=g) < 0.15) & ~terminated
    return rewards, next_values, terminated, truncated


@pytest.mark.parametrize("seed", range(5))
def test_reward_to_go_equals_the_brute_force_sum(seed):
    r, v, term, trunc = random_rollout(seed)
    torch.testing.assert_close(reward_to_go(r, v, term, trunc, 0.9), brute_reward_to_go(r, v, term, trunc, 0.9))


def test_reward_to_go_by_hand():
    # one column: r = 1, 2, 3 with the episode terminating at t = 1; after it, V(s_3) = 10 bootstraps t = 2
    r = torch.tensor([[1.0], [2.0], [3.0]])
    term = torch.tensor([[False], [True], [False]])
    trunc = torch.zeros(3, 1, dtype=torch.bool)
    v = torch.tensor([[0.0], [0.0], [10.0]])
    assert reward_to_go(r, v, term, trunc, 0.5).squeeze(-1).tolist() == [1 + 0.5 * 2, 2.0, 3 + 0.5 * 10]


def test_causality_a_reward_before_t_never_enters_the_term_at_t():
    r, v, term, trunc = random_rollout(0)
    base = reward_to_go(r, v, term, trunc, 0.95)
    for t in range(1, r.shape[0]):
        bumped = r.clone()
        bumped[t - 1] += 100.0  # a reward strictly before t
        changed = reward_to_go(bumped, v, term, trunc, 0.95)
        torch.testing.assert_close(changed[t:], base[t:])


def test_trajectory_returns_are_the_segment_return_from_its_first_step():
    r, v, term, trunc = random_rollout(1)
    rtg = reward_to_go(r, v, term, trunc, 0.9)
    traj = trajectory_returns(r, v, term, trunc, 0.9)
    seg = segment_ids(term, trunc).view(r.shape)
    for m in range(r.shape[1]):
        for t in range(r.shape[0]):
            first = min(k for k in range(r.shape[0]) if seg[k, m] == seg[t, m])
            assert traj[t, m] == rtg[first, m]


def test_the_optimal_baseline_minimizes_the_gradient_variance_by_brute_force():
    g = torch.Generator().manual_seed(0)
    grads = torch.randn(400, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 3.0, 0.2], dtype=torch.float64)
    psi = 5.0 + grads[:, 0].abs() * 4.0 + torch.randn(400, generator=g, dtype=torch.float64)
    b = optimal_baseline(grads, psi)
    candidates = torch.linspace(-20, 40, 60001, dtype=torch.float64)
    for k in range(3):
        # sample second moment of g_k (psi - b) over a fine grid of b; its minimizer is the sample b*_k
        second_moment = ((grads[:, k : k + 1] * (psi[:, None] - candidates[None])) ** 2).mean(0)
        assert b[k].item() == pytest.approx(candidates[second_moment.argmin()].item(), abs=2e-3)
    assert not torch.allclose(b, psi.mean().expand(3))  # weighted by g^2, not the plain mean


def bandit_gradients(baseline: str, samples: int, seed: int) -> torch.Tensor:
    """Mean over ``samples`` one-step episodes of the VPG gradient w.r.t. the mean mu of N(mu, 1) on r(a) = -(a - 2)^2.

    True gradient at mu = 0: d/dmu E[-(a - 2)^2] = -2 (mu - 2) = 4.
    """
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(samples, generator=g, dtype=torch.float64)  # mu = 0, sigma = 1
    r = -((a - 2.0) ** 2)
    score = a  # d/dmu log N(a; mu, 1) at mu = 0
    if baseline == "none":
        b = torch.zeros(())
    elif baseline == "mean":
        b = r.mean()
    elif baseline == "optimal":
        b = optimal_baseline(score[:, None], r)[0]
    else:
        b = torch.tensor(-5.0)  # any constant
    return (score * (r - b)).mean()


@pytest.mark.parametrize("baseline", ["none", "mean", "optimal", "constant"])
def test_every_baseline_leaves_the_expected_gradient_unchanged(baseline):
    estimates = torch.stack([bandit_gradients(baseline, 200, seed) for seed in range(2000)])
    stderr = estimates.std() / len(estimates) ** 0.5
    assert abs(estimates.mean().item() - 4.0) < 4 * stderr.item() + 0.02  # 0.02: the O(1/n) bias of sample b


def test_the_optimal_baseline_has_the_lowest_variance_on_the_bandit():
    var = {
        b: torch.stack([bandit_gradients(b, 200, s) for s in range(500)]).var().item()
        for b in ("none", "mean", "optimal")
    }
    assert var["optimal"] <= var["mean"] * 1.02 < var["none"]


def make_policy_batch(seed=0, n=256):
    torch.manual_seed(seed)
    policy = GaussianPolicy(3, 2, [-1, -1], [1, 1], hidden_sizes=(8,))
    value = ValueFunction(3, (8,))
    g = torch.Generator().manual_seed(seed + 1)
    obs = torch.randn(n, 3, generator=g, dtype=torch.float32)
    with torch.no_grad():
        actions, logp = policy.sample_with_log_prob(obs, g)
    steps, cols = n // 4, 4
    rewards = actions[:, 0] - 0.5 * actions[:, 1] ** 2
    terminated = torch.rand(n, generator=g) < 0.05
    batch = flat_batch(
        obs,
        actions,
        rewards,
        returns=rewards,
        log_probs=logp,
        time_shape=(steps, cols),
        rewards=rewards,
        terminated=terminated,
        next_values=torch.zeros(n),
    )
    return policy, value, batch


def log_prob_grads(policy, obs, actions) -> torch.Tensor:
    """grad_theta log pi(a_i|s_i) per sample: [B, P]."""
    return per_sample_grads(policy, (obs, actions), lambda o, a: log_prob(policy.distribution(o), a).sum())


def test_importance_weights_are_one_under_the_behaviour_policy():
    policy, _, batch = make_policy_batch()
    new_logp = log_prob(policy.distribution(batch.obs), batch.actions)
    for cumulative in (False, True):
        w = importance_weights(new_logp, batch, cap=1.0, cumulative=cumulative)
        torch.testing.assert_close(w, torch.ones_like(w))


def test_the_importance_weighted_gradient_is_the_brute_force_weighted_sum():
    # behaviour log-probabilities away from the current policy's: weights between 0.37 and the cap 1.5
    policy, _, batch = make_policy_batch(n=64)
    shift = torch.linspace(-1.0, 1.0, 64)
    batch = flat_batch(
        batch.obs, batch.actions, batch.advantages, log_probs=batch.log_probs + shift, time_shape=batch.time_shape
    )
    new_logp = log_prob(policy.distribution(batch.obs), batch.actions)
    w = importance_weights(new_logp, batch, cap=1.5, cumulative=False)
    torch.testing.assert_close(w, torch.exp(-shift).clamp(max=1.5), rtol=1e-5, atol=1e-6)  # exp(new - behaviour)
    assert w.min() < 0.4 and (w == 1.5).sum() > 10
    params = [p for p in policy.parameters() if p.requires_grad]
    loss = policy_gradient_loss(new_logp, batch.advantages, w)
    got = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])
    per = log_prob_grads(policy, batch.obs, batch.actions)
    expected = -(per * (w * batch.advantages).double()[:, None]).mean(0)  # -(1/B) sum_i w_i A_i grad log pi_i
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-6)
    on_policy = -(per * batch.advantages.double()[:, None]).mean(0)
    assert (expected - on_policy).norm() > 0.1 * on_policy.norm()  # the weights matter here


def test_importance_weights_by_hand_truncated_and_cumulative():
    obs = torch.zeros(4, 1)
    batch = flat_batch(
        obs,
        torch.zeros(4, 1),
        torch.zeros(4),
        log_probs=torch.zeros(4),
        time_shape=(4, 1),
        terminated=torch.tensor([False, True, False, False]),
    )
    new = torch.log(torch.tensor([2.0, 0.5, 0.25, 3.0]))  # rho_t
    torch.testing.assert_close(
        importance_weights(new, batch, cap=1.5, cumulative=False), torch.tensor([1.5, 0.5, 0.25, 1.5])
    )
    # cumulative: prod over the episode so far (it ends at t = 1, a new one starts at t = 2)
    torch.testing.assert_close(
        importance_weights(new, batch, cap=10.0, cumulative=True), torch.tensor([2.0, 1.0, 0.25, 0.75])
    )


@pytest.mark.parametrize("weighted", [False, True], ids=["on-policy", "importance-weighted"])
@pytest.mark.parametrize("returns", ["trajectory", "reward_to_go"])
def test_vpg_optimal_baseline_gradient_matches_the_autograd_gradient_with_b_star(returns, weighted):
    policy, value, batch = make_policy_batch()
    algo = VPG(policy, value, VPGConfig(returns=returns, baseline="optimal", normalize_psi=False), ValueConfig())
    psi = algo.psi(batch)
    g = torch.Generator().manual_seed(5)
    weights = torch.rand(batch.size, generator=g) * 1.5 + 0.05 if weighted else torch.ones(batch.size)
    grads, _ = algo.optimal_baseline_gradient(batch, psi, weights)
    # brute force: per-sample gradients by a loop, b* per parameter, then (1/B) sum g (psi - b*)
    params = [p for p in policy.parameters() if p.requires_grad]
    per = []
    for i in range(batch.size):
        lp = log_prob(policy.distribution(batch.obs[i : i + 1]), batch.actions[i : i + 1]).sum()
        per.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(lp, params)]))
    per = torch.stack(per).double() * weights.double()[:, None]  # g_i = w_i grad log pi_i
    if returns == "trajectory":
        steps, cols = batch.time_shape
        seg = segment_ids(batch.terminated.view(steps, cols), batch.truncated.view(steps, cols))
        per = torch.zeros(int(seg.max()) + 1, per.shape[1], dtype=torch.float64).index_add_(0, seg, per)
        seg_psi = torch.zeros(per.shape[0], dtype=torch.float64).scatter_(0, seg, psi.double())
        b = optimal_baseline(per, seg_psi)
        expected = (per * (seg_psi[:, None] - b)).sum(0) / batch.size
    else:
        b = optimal_baseline(per, psi.double())
        expected = (per * (psi.double()[:, None] - b)).mean(0)
    got = torch.cat([g.reshape(-1) for g in grads]).double()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


def brute_psi(batch, returns):
    """Psi_t [B] float64 by brute force: the GAE advantage, the return from t on, or the whole segment's return."""
    if returns == "gae":
        return batch.advantages.double()
    steps, cols = batch.time_shape
    fields = [getattr(batch, k).view(steps, cols) for k in ("rewards", "next_values", "terminated", "truncated")]
    rtg = brute_reward_to_go(*fields, batch.gamma)
    if returns == "reward_to_go":
        return rtg.reshape(-1)
    done = fields[2] | fields[3]
    out = torch.empty_like(rtg)
    for m, t in itertools.product(range(cols), range(steps)):
        start = max([k + 1 for k in range(t) if done[k, m]], default=0)  # the segment's first step
        out[t, m] = rtg[start, m]
    return out.reshape(-1)


@pytest.mark.parametrize("baseline", ["none", "mean", "value", "optimal"])
@pytest.mark.parametrize("returns", ["trajectory", "reward_to_go", "gae"])
def test_vpg_gradient_for_every_switch_is_the_brute_force_one(returns, baseline):
    # grad of the loss = -(1/B) sum_i g_i ((Psi_i - b) / rms), rms over the batch; with returns: gae the
    # baseline is ignored (GAE already subtracts V), so its four cases must all give the same number
    policy, value, batch = make_policy_batch(n=64)
    g = torch.Generator().manual_seed(3)
    batch = dataclasses.replace(batch, values=torch.randn(64, generator=g), next_values=torch.randn(64, generator=g))
    algo = VPG(policy, value, VPGConfig(returns=returns, baseline=baseline, lr=1e-2), ValueConfig(epochs=1))
    per = log_prob_grads(policy, batch.obs, batch.actions)
    psi = brute_psi(batch, returns)
    used = "none" if returns == "gae" else baseline
    if used == "mean":
        psi = psi - psi.mean()
    elif used == "value":
        psi = psi - batch.values.double()
    psi = psi / psi.square().mean().sqrt()
    if used != "optimal":
        expected = -(per * psi[:, None]).mean(0)
    elif returns == "trajectory":  # a sample is a segment: g(tau) = sum of its steps' g, Psi its return
        steps, cols = batch.time_shape
        seg = segment_ids(batch.terminated.view(steps, cols), batch.truncated.view(steps, cols))
        per = torch.zeros(int(seg.max()) + 1, per.shape[1], dtype=torch.float64).index_add_(0, seg, per)
        seg_psi = torch.zeros(per.shape[0], dtype=torch.float64).scatter_(0, seg, psi)
        b = (per.square() * seg_psi[:, None]).sum(0) / per.square().sum(0)  # b*_k = sum g^2 Psi / sum g^2
        expected = -(per * (seg_psi[:, None] - b)).sum(0) / batch.size
    else:
        b = (per.square() * psi[:, None]).sum(0) / per.square().sum(0)
        expected = -(per * (psi[:, None] - b)).mean(0)
    result = algo.update(batch, torch.Generator().manual_seed(0))
    assert result.rejected is None and result.metrics["kl"] > 0
    torch.testing.assert_close(flat_grads(policy), expected, rtol=1e-4, atol=1e-6)


def test_vpg_switches_change_the_gradient():
    # the three return estimates are different numbers on the batch above, so each switch's case tells them apart
    _, _, batch = make_policy_batch(n=64)
    psis = [brute_psi(batch, r) for r in ("trajectory", "reward_to_go", "gae")]
    assert all((a - b).abs().max() > 0.1 for a, b in itertools.combinations(psis, 2))


@pytest.mark.parametrize("optimizer", ["rmsprop", "adam"])
def test_a2c_takes_one_step_that_raises_the_advantage_weighted_likelihood(optimizer):
    policy, value, batch = make_policy_batch()
    algo = A2C(policy, value, A2CConfig(optimizer=optimizer, lr=1e-3), ValueConfig())
    with torch.no_grad():
        before = (log_prob(policy.distribution(batch.obs), batch.actions) * batch.advantages).mean()
    result = algo.update(batch, torch.Generator().manual_seed(0))
    with torch.no_grad():
        after = (log_prob(policy.distribution(batch.obs), batch.actions) * batch.advantages).mean()
    assert result.rejected is None and after > before and algo.updates == 1
    assert result.metrics["importance_weight_mean"] == pytest.approx(1.0)


@pytest.mark.parametrize(("vf_coef", "ent_coef"), [(0.5, 0.0), (2.0, 0.3), (0.0, 0.01)])
def test_a2c_gradient_is_the_brute_force_gradient_of_its_three_loss_terms(vf_coef, ent_coef):
    # loss = -(1/B) sum w_i A_i log pi_i + vf_coef 0.5 (1/B) sum w_i (V_i - R_i)^2 - ent_coef H, with importance
    # weights w other than 1 (behaviour log-probs shifted, cap 2): each term's gradient against brute force.
    policy, value, batch = make_policy_batch(n=64)
    g = torch.Generator().manual_seed(4)
    shift = torch.linspace(-1.0, 1.0, 64)
    batch = dataclasses.replace(batch, log_probs=batch.log_probs + shift, returns=torch.randn(64, generator=g))
    cfg = A2CConfig(vf_coef=vf_coef, ent_coef=ent_coef, importance_cap=2.0, max_grad_norm=None, lr=1e-4)
    algo = A2C(policy, value, cfg, ValueConfig())
    w = torch.exp(-shift).clamp(max=2.0).double()  # pi / pi_behaviour = exp(-shift) before the step
    norm_obs = policy.normalizer(batch.obs).detach()
    with torch.no_grad():
        v = value(norm_obs).double()
    expected_policy = -(log_prob_grads(policy, batch.obs, batch.actions) * (w * batch.advantages.double())[:, None])
    expected_policy = expected_policy.mean(0) - ent_coef * entropy_gradient(policy)
    value_grads = per_sample_grads(value, (norm_obs,), lambda o: value(o).sum())
    expected_value = vf_coef * (value_grads * (w * (v - batch.returns.double()))[:, None]).mean(0)
    result = algo.update(batch, torch.Generator().manual_seed(0))
    assert result.rejected is None
    assert result.metrics["importance_weight_mean"] == pytest.approx(w.mean().item(), rel=1e-5)
    assert result.metrics["value_loss"] == pytest.approx(0.5 * (w * (v - batch.returns.double()) ** 2).mean().item())
    torch.testing.assert_close(flat_grads(policy), expected_policy, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(flat_grads(value), expected_value, rtol=1e-4, atol=1e-7)


def test_a2c_nstep_asks_the_runner_for_lambda_one():
    policy, value, _ = make_policy_batch()
    assert A2C(policy, value, A2CConfig(advantage="nstep"), ValueConfig()).gae_lambda == 1.0
    assert A2C(policy, value, A2CConfig(advantage="gae"), ValueConfig()).gae_lambda is None


@pytest.mark.parametrize("algo_name", ["a2c", "vpg"])
def test_a_non_finite_gradient_is_rejected_before_it_reaches_the_parameters(algo_name):
    policy, value, batch = make_policy_batch()
    if algo_name == "a2c":
        algo = A2C(policy, value, A2CConfig(), ValueConfig())
    else:
        algo = VPG(policy, value, VPGConfig(returns="gae"), ValueConfig())
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    bad = flat_batch(
        batch.obs,
        batch.actions,
        batch.advantages * float("nan"),
        returns=batch.returns,
        log_probs=batch.log_probs,
        time_shape=batch.time_shape,
    )
    result = algo.update(bad, torch.Generator().manual_seed(0))
    assert result.rejected is not None and "non-finite" in result.rejected
    assert all(torch.equal(before[k], v) for k, v in policy.state_dict().items())
    assert algo.update(batch, torch.Generator().manual_seed(0)).rejected is None  # the optimizer is unharmed


def test_standardize_only_centres_values_that_do_not_spread():
    from app.algorithms.base import standardize

    for value in (1.7, 123.4, -0.3):
        out = standardize(torch.full((1000,), value))
        assert out.abs().max().item() < 1e-4  # not +-1 from dividing rounding noise by itself
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    torch.testing.assert_close(standardize(x), (x - 2.5) / x.std())
    assert standardize(torch.tensor([5.0])).item() == 0.0


@pytest.mark.parametrize("baseline", ["none", "mean"])
def test_vpg_does_not_blow_up_a_psi_that_is_the_same_everywhere(baseline):
    # one column, one episode, reward 1 at every step: trajectory returns are all equal
    policy, value, batch = make_policy_batch(n=16)
    ones = torch.ones(16)
    same = flat_batch(
        batch.obs,
        batch.actions,
        ones,
        returns=ones,
        log_probs=batch.log_probs,
        time_shape=(16, 1),
        rewards=ones,
        next_values=torch.zeros(16),
    )
    algo = VPG(policy, value, VPGConfig(returns="trajectory", baseline=baseline), ValueConfig(epochs=1))
    with torch.no_grad():
        psi = algo.psi(same)
    assert torch.equal(psi, psi[0].expand(16)) and psi[0] > 1.0
    # none: Psi / rms(Psi) = 1 exactly, the gradient of -mean log pi; mean: Psi - mean is rounding noise
    # only, left undivided, so (nearly) no gradient. Dividing by a std instead would give ~1 (mean) or inf (none).
    expected = -log_prob_grads(policy, same.obs, same.actions).mean(0) if baseline == "none" else None
    result = algo.update(same, torch.Generator().manual_seed(0))
    assert result.rejected is None
    if baseline == "none":
        torch.testing.assert_close(flat_grads(policy), expected, rtol=1e-4, atol=1e-6)
        assert result.metrics["grad_norm"] == pytest.approx(expected.norm().item(), rel=1e-4)
    else:
        assert result.metrics["grad_norm"] < 1e-5


def test_cumulative_importance_weights_by_hand_with_two_columns_and_a_truncation():
    # time-major [T=3, M=2]: column 0 is truncated at t = 0 (a new episode from t = 1), column 1 never ends
    rho = torch.tensor([[2.0, 0.5], [3.0, 0.5], [0.5, 4.0]])
    truncated = torch.tensor([[True, False], [False, False], [False, False]])
    batch = flat_batch(
        torch.zeros(6, 1),
        torch.zeros(6, 1),
        torch.zeros(6),
        log_probs=torch.zeros(6),
        time_shape=(3, 2),
        truncated=truncated.reshape(-1),
    )
    w = importance_weights(torch.log(rho).reshape(-1), batch, cap=100.0, cumulative=True).view(3, 2)
    expected = torch.tensor([[2.0, 0.5], [3.0, 0.25], [1.5, 1.0]])
    torch.testing.assert_close(w, expected)
