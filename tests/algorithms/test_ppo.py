"""PPO: the clipped objective branch by branch, the value loss, early stopping and the ratio at the start."""

import math

import pytest
import torch

from app.algorithms.ppo import PPO, PPOConfig, approx_kl, clipped_surrogate, value_loss
from app.config import ValueConfig
from policies import GaussianPolicy, ValueFunction, log_prob
from tests.algorithms.batches import flat_batch


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
    x = (
        old.sample(
            (200_000,),
        ).squeeze(-1)
        if False
        else torch.randn(200_000, generator=torch.Generator().manual_seed(0))
    )
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


def test_kl_adaptive_needs_a_target():
    assert PPOConfig(lr_schedule="kl_adaptive").problems()
