"""PPO: the clipped objective branch by branch, the value loss, early stopping and the ratio at the start."""

import dataclasses
import math

import pytest
import torch

from app.algorithms.ppo import PPO, PPOConfig, approx_kl, clipped_surrogate, value_loss
from app.config import ValueConfig
from policies import GaussianPolicy, ValueFunction, log_prob
from tests.algorithms.batches import entropy_gradient, flat_batch, flat_grads, per_sample_grads


@pytest.mark.parametrize(
    ("ratio", "advantage", "expected", "clipped"),
    [
        (1.1, 2.0, 2.2, 0.0),  # A > 0, ratio inside [1 - eps, 1 + eps]: r A
        (1.5, 2.0, 2.4, 1.0),  # A > 0, ratio above 1 + eps: (1 + eps) A, no gradient
        (0.5, 2.0, 1.0, 0.0),  # A > 0, ratio below 1 - eps: min takes r A (the unclipped, smaller)
        (0.9, -1.0, -0.9, 0.0),  # A < 0 inside: r A
        (0.5, -1.0, -0.8, 1.0),  # A < 0, ratio below 1 - eps: (1 - eps) A, no gradient
        (1.5, -1.0, -1.5, 0.0),  # A < 0, ratio above 1 + eps: min takes r A (pessimistic)
    ],
)
def test_each_branch_of_the_clipped_objective(ratio, advantage, expected, clipped):
    r = torch.tensor([ratio], requires_grad=True)
    objective, fraction = clipped_surrogate(r, torch.tensor([advantage]), clip=0.2)
    assert objective.item() == pytest.approx(expected)
    assert fraction.item() == clipped
    objective.backward()
    assert r.grad.item() == pytest.approx(0.0 if clipped else advantage)


def test_value_loss_clipping_by_hand():
    new, old, ret = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0]), torch.tensor([2.0, 2.0])
    assert value_loss(new, old, ret, None).item() == pytest.approx(0.5 * (1.0 + 1.0) / 2)
    # clip 0.5: V_clip = [0.5, 0.5]; max((V-R)^2, (V_clip-R)^2) = [max(1, 2.25), max(1, 2.25)]
    assert value_loss(new, old, ret, 0.5).item() == pytest.approx(0.5 * 2.25)


def test_approximate_kl_is_zero_at_ratio_one_and_close_to_the_true_kl():
    assert approx_kl(torch.zeros(10)).item() == 0.0
    old = torch.distributions.Normal(torch.zeros(1), torch.ones(1))
    new = torch.distributions.Normal(torch.full((1,), 0.1), torch.ones(1))
    x = torch.randn(200_000, generator=torch.Generator().manual_seed(0))  # samples of the old N(0, 1)
    log_ratio = new.log_prob(x[:, None]).squeeze(-1) - old.log_prob(x[:, None]).squeeze(-1)
    assert approx_kl(log_ratio).item() == pytest.approx(0.005, rel=0.05)  # KL = 0.1^2 / 2


def make(cfg: PPOConfig, n=512):
    torch.manual_seed(0)
    policy = GaussianPolicy(3, 2, [-1, -1], [1, 1], hidden_sizes=(16,))
    value = ValueFunction(3, (16,))
    algo = PPO(policy, value, cfg, ValueConfig(), total_updates=10)
    g = torch.Generator().manual_seed(1)
    obs = torch.randn(n, 3, generator=g)
    with torch.no_grad():
        actions, logp = policy.sample_with_log_prob(obs, g)  # recorded as during collection
    advantages = actions[:, 0] - actions[:, 1]
    return policy, algo, flat_batch(obs, actions, advantages, torch.randn(n, generator=g), log_probs=logp)


def test_the_first_minibatch_sees_ratio_one_with_the_recorded_log_probs():
    _, algo, batch = make(PPOConfig(minibatch_size=64))
    metrics = algo.update(batch, torch.Generator().manual_seed(0)).metrics
    # largest |ratio - 1| of the first minibatch: the recorded and the recomputed log-probabilities
    # are the same function of the same numbers, up to float32 rounding of a differently batched matmul
    assert metrics["first_ratio_error"] < 1e-6


def test_early_stop_fires_when_the_approximate_kl_passes_its_threshold():
    _, algo, batch = make(PPOConfig(lr=1e-2, epochs=10, target_kl=1e-4, lr_schedule="constant"))
    metrics = algo.update(batch, torch.Generator().manual_seed(0)).metrics
    assert metrics["early_stop"] == 1.0 and metrics["epochs"] < 10
    _, algo, batch = make(PPOConfig(lr=1e-2, epochs=3, target_kl=None, lr_schedule="constant"))
    metrics = algo.update(batch, torch.Generator().manual_seed(0)).metrics
    assert metrics["early_stop"] == 0.0 and metrics["epochs"] == 3


def test_ppo_improves_the_objective_and_keeps_the_policy_close():
    policy, algo, batch = make(PPOConfig(lr=3e-3, epochs=4, lr_schedule="constant"))
    algo.update(batch, torch.Generator().manual_seed(0))
    with torch.no_grad():
        ratio = torch.exp(log_prob(policy.distribution(batch.obs), batch.actions) - batch.log_probs)
    assert (ratio * batch.advantages).mean().item() > batch.advantages.mean().item()
    assert ratio.max().item() < 2.0


def test_learning_rate_schedules():
    _, algo, batch = make(PPOConfig(lr=1e-3, lr_schedule="linear", epochs=1))
    lrs = []
    for _ in range(3):
        lrs.append(algo.update(batch, torch.Generator().manual_seed(0)).metrics["lr"])
    assert lrs == pytest.approx([1e-3, 0.9e-3, 0.8e-3])  # lr_0 (1 - k / K), K = 10
    _, algo, batch = make(PPOConfig(lr=1e-3, lr_schedule="kl_adaptive", target_kl=1e-9, epochs=1))
    algo.update(batch, torch.Generator().manual_seed(0))
    assert algo.lr == pytest.approx(1e-3 / 1.5)  # KL far above target: lr / 1.5


def test_non_finite_update_is_rejected_and_everything_restored():
    policy, algo, batch = make(PPOConfig())
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    bad = flat_batch(batch.obs, batch.actions, batch.advantages * math.nan, batch.returns, log_probs=batch.log_probs)
    result = algo.update(bad, torch.Generator().manual_seed(0))
    assert result.rejected is not None
    assert all(torch.equal(before[k], v) for k, v in policy.state_dict().items())


@pytest.mark.parametrize("normalize", [False, True], ids=["raw-advantages", "minibatch-normalized"])
@pytest.mark.parametrize(("vf_coef", "ent_coef"), [(0.5, 0.0), (2.0, 0.3)])
def test_the_joint_loss_gradient_is_the_brute_force_one(vf_coef, ent_coef, normalize):
    # One minibatch of the whole batch, one epoch: the ratio is 1, so grad(-L^CLIP) = -(1/B) sum A_i grad log pi_i
    # (no sample clipped); + vf_coef (1/B) sum (V_i - R_i) grad V_i; - ent_coef grad H (d H / d log sigma_j = 1).
    # With normalize_minibatch_advantages, A is first standardized over the minibatch: (A - mean) / std.
    n = 96
    cfg = PPOConfig(
        epochs=1,
        minibatch_size=n,
        vf_coef=vf_coef,
        ent_coef=ent_coef,
        max_grad_norm=None,
        normalize_minibatch_advantages=normalize,
        lr_schedule="constant",
    )
    policy, algo, batch = make(cfg, n=n)
    batch = flat_batch(batch.obs, batch.actions, 3.0 * batch.advantages + 5.0, batch.returns, log_probs=batch.log_probs)
    value = algo.value
    adv = batch.advantages.double()
    if normalize:
        adv = (adv - adv.mean()) / adv.std()
    assert adv.mean().abs() > 1.0 or normalize  # a shift that normalization removes
    norm_obs = policy.normalizer(batch.obs).detach()
    with torch.no_grad():
        v = value(norm_obs).double()
    per = per_sample_grads(policy, (batch.obs, batch.actions), lambda o, a: log_prob(policy.distribution(o), a).sum())
    expected_policy = -(per * adv[:, None]).mean(0) - ent_coef * entropy_gradient(policy)
    per_v = per_sample_grads(value, (norm_obs,), lambda o: value(o).sum())
    expected_value = vf_coef * (per_v * (v - batch.returns.double())[:, None]).mean(0)
    metrics = algo.update(batch, torch.Generator().manual_seed(0)).metrics
    assert metrics["clip_fraction"] == 0.0 and metrics["epochs"] == 1.0
    assert metrics["value_loss"] == pytest.approx(0.5 * (v - batch.returns.double()).square().mean().item(), rel=1e-5)
    torch.testing.assert_close(flat_grads(policy), expected_policy, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(flat_grads(value), expected_value, rtol=1e-4, atol=1e-7)


def test_minibatch_normalization_standardizes_each_minibatch_not_the_batch():
    # two minibatches of 4 with advantages whose halves have different means: per minibatch they are
    # standardized to the same [-1.16, -0.39, 0.39, 1.16] (x - mean) / std, std with Bessel's correction
    from app.algorithms.base import standardize

    torch.testing.assert_close(
        standardize(torch.tensor([10.0, 11.0, 12.0, 13.0])), torch.tensor([-1.5, -0.5, 0.5, 1.5]) / (5 / 3) ** 0.5
    )
    cfg = PPOConfig(epochs=1, minibatch_size=4, max_grad_norm=None, normalize_minibatch_advantages=True, lr=1e-9)
    policy, algo, batch = make(cfg, n=8)
    per = per_sample_grads(policy, (batch.obs, batch.actions), lambda o, a: log_prob(policy.distribution(o), a).sum())
    adv = torch.tensor([0.0, 1.0, 2.0, 3.0, 100.0, 102.0, 104.0, 106.0])
    batch = flat_batch(batch.obs, batch.actions, adv, batch.returns, log_probs=batch.log_probs)
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    last = order[4:]  # the second minibatch: its gradient is the one left in .grad
    algo.update(batch, generator)
    a = adv[last].double()
    expected = -(per[last] * ((a - a.mean()) / a.std())[:, None]).mean(0)
    torch.testing.assert_close(flat_grads(policy), expected, rtol=1e-3, atol=1e-6)


def test_kl_adaptive_needs_a_target():
    assert PPOConfig(lr_schedule="kl_adaptive").problems()


@pytest.mark.parametrize("recompute", [False, True])
def test_recomputed_advantages_drive_the_later_epochs(recompute):
    # Two epochs of one whole-batch minibatch with a tiny step (ratio ~ 1, nothing clipped). The batch's refresh
    # hands back other advantages A' and returns R'; with recompute_advantages the second epoch's gradient (the one
    # left in .grad) is -(1/B) sum A'_i grad log pi_i + c_V (1/B) sum (V_i - R'_i) grad V_i, else the first's A, R.
    n = 64
    cfg = PPOConfig(
        epochs=2, minibatch_size=n, max_grad_norm=None, lr=1e-9, lr_schedule="constant", recompute_advantages=recompute
    )
    policy, algo, batch = make(cfg, n=n)
    g = torch.Generator().manual_seed(2)
    fresh = flat_batch(batch.obs, batch.actions, torch.randn(n, generator=g), torch.randn(n, generator=g))
    calls: list[int] = []

    def refresh():
        calls.append(1)
        return fresh

    batch = dataclasses.replace(batch, refresh=refresh)
    value = algo.value
    norm_obs = policy.normalizer(batch.obs).detach()
    with torch.no_grad():
        v = value(norm_obs).double()
    per = per_sample_grads(policy, (batch.obs, batch.actions), lambda o, a: log_prob(policy.distribution(o), a).sum())
    per_v = per_sample_grads(value, (norm_obs,), lambda o: value(o).sum())
    used = fresh if recompute else batch
    expected_policy = -(per * used.advantages.double()[:, None]).mean(0)
    expected_value = cfg.vf_coef * (per_v * (v - used.returns.double())[:, None]).mean(0)
    assert not torch.allclose(fresh.advantages, batch.advantages)
    algo.update(batch, torch.Generator().manual_seed(0))
    assert len(calls) == (1 if recompute else 0)  # before the second epoch only
    torch.testing.assert_close(flat_grads(policy), expected_policy, rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(flat_grads(value), expected_value, rtol=1e-3, atol=1e-6)
