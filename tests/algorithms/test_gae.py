"""GAE: a hand-computed case, a brute-force reference, and the infinite-horizon check."""

import pytest
import torch

from app.algorithms.gae import gae
from app.config import load_config


def brute_force_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """A_t = sum_{l>=0} (gamma lambda)^l delta_{t+l}, summed until the episode (or rollout) ends."""
    steps, n = rewards.shape
    adv = torch.zeros(steps, n, dtype=torch.float64)
    for e in range(n):
        for t in range(steps):
            total, weight = 0.0, 1.0
            for k in range(t, steps):
                nv = 0.0 if terminated[k, e] else float(next_values[k, e])
                delta = float(rewards[k, e]) + gamma * nv - float(values[k, e])
                total += weight * delta
                if terminated[k, e] or truncated[k, e]:
                    break
                weight *= gamma * lam
            adv[t, e] = total
    return adv


def test_hand_computed_case():
    # One environment, three steps; the episode terminates at t = 1 and a new one starts at t = 2.
    # gamma = 0.5, lambda = 0.5, so gamma * lambda = 0.25.
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [2.0]])
    next_values = torch.tensor([[1.0], [9.0], [4.0]])  # 9.0 must be ignored (terminal)
    terminated = torch.tensor([[False], [True], [False]])
    truncated = torch.zeros(3, 1, dtype=torch.bool)
    # delta_0 = 1 + 0.5 * 1 - 0.5 = 1.0
    # delta_1 = 2 + 0 - 1 = 1.0              (terminal: no bootstrap)
    # delta_2 = 3 + 0.5 * 4 - 2 = 3.0        (rollout end: bootstrap with V(last obs) = 4)
    # A_2 = 3.0;  A_1 = 1.0 (episode ends, trace cut);  A_0 = 1.0 + 0.25 * 1.0 = 1.25
    adv, ret = gae(rewards, values, next_values, terminated, truncated, gamma=0.5, lam=0.5)
    assert torch.allclose(adv, torch.tensor([[1.25], [1.0], [3.0]]))
    assert torch.allclose(ret, torch.tensor([[1.75], [2.0], [5.0]]))


def test_truncation_bootstraps_but_cuts_the_trace():
    rewards = torch.tensor([[1.0], [1.0]])
    values = torch.tensor([[0.0], [10.0]])
    next_values = torch.tensor([[7.0], [0.0]])  # V(final_obs) = 7 at the truncated step 0
    terminated = torch.zeros(2, 1, dtype=torch.bool)
    truncated = torch.tensor([[True], [False]])
    adv, _ = gae(rewards, values, next_values, terminated, truncated, gamma=0.9, lam=1.0)
    assert adv[0, 0].item() == pytest.approx(1.0 + 0.9 * 7.0)  # bootstrapped, nothing from the next episode
    assert adv[1, 0].item() == pytest.approx(1.0 - 10.0)


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 0.0), (0.97, 1.0), (1.0, 0.5)])
def test_matches_brute_force_on_random_data(gamma, lam):
    g = torch.Generator().manual_seed(0)
    steps, n = 37, 5
    rewards = torch.randn(steps, n, generator=g, dtype=torch.float64)
    values = torch.randn(steps, n, generator=g, dtype=torch.float64)
    next_values = torch.randn(steps, n, generator=g, dtype=torch.float64)
    ends = torch.rand(steps, n, generator=g)
    terminated = ends < 0.08
    truncated = (ends >= 0.08) & (ends < 0.15)
    adv, ret = gae(rewards, values, next_values, terminated, truncated, gamma, lam)
    expected = brute_force_gae(rewards, values, next_values, terminated, truncated, gamma, lam)
    torch.testing.assert_close(adv, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ret, expected + values, rtol=1e-12, atol=1e-12)


def test_infinite_horizon_value_target_approaches_one_over_one_minus_gamma():
    # Constant reward 1, episodes only ever truncated (never terminated): the true value is
    # 1 / (1 - gamma) everywhere. Fitting a constant V to the lambda-returns and repeating
    # converges there only if truncation bootstraps with V(final_obs).
    gamma, lam, steps, n = 0.9, 0.95, 64, 3
    rewards = torch.ones(steps, n, dtype=torch.float64)
    terminated = torch.zeros(steps, n, dtype=torch.bool)
    truncated = torch.zeros(steps, n, dtype=torch.bool)
    truncated[15::16] = True  # a time limit every 16 steps
    v = 0.0
    for _ in range(300):
        values = torch.full((steps, n), v, dtype=torch.float64)
        _, targets = gae(rewards, values, values.clone(), terminated, truncated, gamma, lam)
        v = targets.mean().item()
    assert v == pytest.approx(1.0 / (1.0 - gamma), rel=1e-6)
    # The same data treated as terminations would bias the target far below 1 / (1 - gamma).
    values = torch.full((steps, n), v, dtype=torch.float64)
    _, wrong = gae(rewards, values, values.clone(), truncated, terminated, gamma, lam)
    assert wrong[truncated].max().item() == pytest.approx(1.0)


@pytest.mark.parametrize("task", ["hopper", "walker2d"])
def test_the_shipped_trpo_discount_values_staying_up_over_a_faster_fall(task):
    """TRPO's late drops on Hopper (README): with gamma 0.99 the policy traded staying up for speed, its
    episodes shortening from ~680 to ~400 steps while each step paid 3.9 instead of 3.6. Discounted returns
    (GAE with lambda = 1 and zero values), hand-computed: sum_t r gamma^t = r (1 - gamma^T) / (1 - gamma):
      gamma 0.99:  stay up 1000 steps at 3.6: 3.6 x 100.0 = 360.0;  fall at 400 steps at 3.9: 3.9 x 98.2 = 383.0
      gamma 0.995: stay up: 3.6 x 198.7 = 715.2;                     fall: 3.9 x 173.1 = 675.0
    so 0.99 prefers the fall and the shipped cpu (TRPO) settings' 0.995 prefers staying up."""

    def discounted(reward: float, steps: int, gamma: float) -> float:
        rewards = torch.full((steps, 1), reward, dtype=torch.float64)
        zeros = torch.zeros(steps, 1, dtype=torch.float64)
        ends = torch.zeros(steps, 1, dtype=torch.bool)
        ends[-1] = True
        fell = steps < 1000  # a fall terminates; the 1000-step limit truncates (no value after it here)
        _, ret = gae(rewards, zeros, zeros, ends & fell, ends & (not fell), gamma=gamma, lam=1.0)
        return float(ret[0, 0])

    assert discounted(3.6, 1000, 0.99) == pytest.approx(360.0, abs=0.1)
    assert discounted(3.9, 400, 0.99) == pytest.approx(383.0, abs=0.1)
    assert discounted(3.6, 1000, 0.99) < discounted(3.9, 400, 0.99)  # the drop's objective
    cfg = load_config(task, settings="cpu")
    assert cfg.algo.name == "trpo"
    gamma = cfg.advantage.gamma
    assert discounted(3.6, 1000, gamma) > discounted(3.9, 400, gamma)
