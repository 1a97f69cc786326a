"""The glue between environment and learner: collect, truncation bootstrapping, episode
statistics, reward scaling, and the batch the runner builds from them."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from app.algorithms import UpdateResult
from app.algorithms.gae import gae
from app.config import load_config
from app.rollout import EpisodeTracker, RewardScaler, Rollout, bootstrap_values, collect
from app.runner import Trainer
from policies import GaussianPolicy, log_prob
from tests.algorithms.test_gae import brute_force_gae as reference_gae
from tests.devices import DEVICES
from tests.scripted_env import ScriptedVecEnv

T, N = 5, 3
# (t, n) -> how the step ends its episode. Env 0 terminates, then is truncated in its second episode;
# env 1 is truncated, then cut by both flags at once on the last step; env 2 terminates and is
# truncated on the last step, where V(final_obs), not V(last_obs), must be the bootstrap.
EVENTS = {
    (1, 0): "terminated",
    (2, 1): "truncated",
    (2, 2): "terminated",
    (3, 0): "truncated",
    (4, 1): "both",
    (4, 2): "truncated",
}


def scripted_reference(events: dict[tuple[int, int], str], steps: int, n: int, obs_dim: int = 2):
    """What the script implies, worked out step by step without the environment: obs [T, N, D], rewards,
    terminated, truncated, last obs, the final observation of every ended episode, and (return, length)
    of every ended episode in order of ending."""
    obs = torch.zeros(steps, n, obs_dim)
    final = {}
    episodes = []
    episode, k, ret = [0] * n, [0] * n, [0.0] * n
    rewards = torch.zeros(steps, n)
    terminated = torch.zeros(steps, n, dtype=torch.bool)
    truncated = torch.zeros(steps, n, dtype=torch.bool)
    for t in range(steps):
        for i in range(n):
            obs[t, i, 0], obs[t, i, 1] = i + 0.25 * episode[i], k[i]
            rewards[t, i] = 1 + t + 10 * i
            kind = events.get((t, i), "")
            terminated[t, i] = kind in ("terminated", "both")
            truncated[t, i] = kind in ("truncated", "both")
            ret[i] += float(rewards[t, i])
            k[i] += 1
            if kind:
                final[(t, i)] = torch.tensor([i + 0.25 * episode[i], k[i]] + [0.0] * (obs_dim - 2))
                episodes.append((ret[i], k[i]))
                episode[i], k[i], ret[i] = episode[i] + 1, 0, 0.0
    last = torch.zeros(n, obs_dim)
    for i in range(n):
        last[i, 0], last[i, 1] = i + 0.25 * episode[i], k[i]
    return obs, rewards, terminated, truncated, last, final, episodes


def tiny_policy(obs_dim: int = 2, act_dim: int = 1, seed: int = 0) -> GaussianPolicy:
    torch.manual_seed(seed)
    # init_log_std 0.5 and a visible mean: some sampled actions leave [-1, 1] and get clipped.
    return GaussianPolicy(obs_dim, act_dim, [-2.0] * act_dim, [2.0] * act_dim, (8,), init_log_std=0.5, ortho_init=False)


@pytest.mark.parametrize("device", DEVICES)
def test_collect_records_every_field_of_the_rollout(device):
    # The environment on the CPU; the policy, the rollout and the bookkeeping on ``device``.
    env, policy = ScriptedVecEnv(N, EVENTS), tiny_policy().to(device)
    tracker = EpisodeTracker(N, device)
    start = env.reset(seed=0).to(device)
    rollout, obs, episodes = collect(env, policy, start, T, torch.Generator(device).manual_seed(7), tracker)
    assert {t.device.type for t in (rollout.obs, rollout.actions, rollout.log_probs, rollout.final_obs, obs)} == {
        device
    }
    rollout = Rollout(**{k: v.cpu() if torch.is_tensor(v) else v for k, v in dataclasses.asdict(rollout).items()})
    obs, policy = obs.cpu(), policy.cpu()

    ref_obs, rewards, terminated, truncated, last, final, ref_episodes = scripted_reference(EVENTS, T, N)
    assert torch.equal(rollout.obs, ref_obs)
    assert torch.equal(rollout.rewards, rewards)
    assert torch.equal(rollout.terminated, terminated) and torch.equal(rollout.truncated, truncated)
    assert torch.equal(rollout.last_obs, last) and torch.equal(obs, last)
    assert rollout.is_finite()  # the NaN rows of info["final_obs"] (not ended there) were never read

    # Truncations only (a terminated episode needs no bootstrap), ordered by time, then environment.
    assert rollout.final_index.tolist() == [[2, 1], [3, 0], [4, 1], [4, 2]]
    expected_final = torch.stack([final[(t, n)] for t, n in rollout.final_index.tolist()])
    assert torch.equal(rollout.final_obs, expected_final)

    # Actions: a = mu(s) + sigma eps with eps drawn from the generator in order; the environment got
    # them clipped to [-1, 1] and mapped to its actuator range [-2, 2].
    generator = torch.Generator(device).manual_seed(7)
    with torch.no_grad():
        for t in range(T):
            eps = torch.randn((N, 1), generator=generator, device=device).cpu()
            expected = policy(rollout.obs[t]) + policy.log_std.exp() * eps
            torch.testing.assert_close(rollout.actions[t], expected)
            assert torch.equal(env.received[t], policy.to_env_action(rollout.actions[t]))
            assert torch.equal(env.received[t], 2.0 * rollout.actions[t].clamp(-1, 1))
            # the behaviour log-probability is the policy's log-density of the recorded action
            torch.testing.assert_close(
                rollout.log_probs[t], log_prob(policy.distribution(rollout.obs[t]), rollout.actions[t])
            )
    assert (env.received[0].abs() == 2.0).any() or (env.received[1].abs() == 2.0).any()  # clipping was exercised
    assert rollout.actions.shape == (T, N, 1) and rollout.log_probs.shape == (T, N)

    # Episode statistics: (undiscounted return, length) of each episode that ended, as they ended.
    assert episodes == ref_episodes  # integer-valued rewards: exact sums
    assert [length for _, length in episodes] == [2, 3, 3, 2, 2, 2]


def test_collect_continues_where_the_last_rollout_stopped():
    env, policy = ScriptedVecEnv(N, EVENTS), tiny_policy()
    tracker, generator = EpisodeTracker(N), torch.Generator().manual_seed(0)
    first, obs, _ = collect(env, policy, env.reset(seed=0), 3, generator, tracker)
    second, _, episodes = collect(env, policy, obs, 2, generator, tracker)
    whole_env = ScriptedVecEnv(N, EVENTS)
    whole, _, whole_episodes = collect(
        whole_env, policy, whole_env.reset(seed=0), 5, torch.Generator().manual_seed(0), EpisodeTracker(N)
    )
    assert torch.equal(torch.cat([first.obs, second.obs]), whole.obs)
    assert torch.equal(torch.cat([first.actions, second.actions]), whole.actions)
    assert torch.equal(second.last_obs, whole.last_obs)
    # the second rollout's indices are its own time axis
    assert second.final_index.tolist() == [[0, 0], [1, 1], [1, 2]]
    # episodes that started in the first rollout and ended in the second keep their whole return
    assert episodes == whole_episodes[-len(episodes) :]


def linear_value(x: torch.Tensor) -> torch.Tensor:
    """A stand-in critic, V(o) = 3 o_0 + o_1 + 1: [..., D] -> [...]."""
    return 3 * x[..., 0] + x[..., 1] + 1


def test_bootstrap_values_feed_v_of_final_obs_into_gae_at_truncations():
    env = ScriptedVecEnv(N, EVENTS)
    rollout, _, _ = collect(
        env, tiny_policy(), env.reset(seed=0), T, torch.Generator().manual_seed(1), EpisodeTracker(N)
    )
    _, _, _, _, _, final, _ = scripted_reference(EVENTS, T, N)
    values, last_values = linear_value(rollout.obs), linear_value(rollout.last_obs)
    next_values = bootstrap_values(values, last_values, rollout.final_index, linear_value(rollout.final_obs))

    for t in range(T):
        for n in range(N):
            if rollout.truncated[t, n]:
                expected = linear_value(final[(t, n)])  # V(final_obs): the state the episode was cut in
                successor = rollout.obs[t + 1, n] if t + 1 < T else rollout.last_obs[n]
                assert expected != linear_value(successor)  # which is not the next episode's first state
            elif t + 1 < T:
                expected = values[t + 1, n]
            else:
                expected = last_values[n]
            assert next_values[t, n] == expected, (t, n)
    assert next_values[4, 2] == linear_value(torch.tensor([2.25, 2.0]))  # truncated on the last step

    gamma, lam = 0.9, 0.8
    advantages, returns = gae(rollout.rewards, values, next_values, rollout.terminated, rollout.truncated, gamma, lam)
    expected = reference_gae(rollout.rewards, values, next_values, rollout.terminated, rollout.truncated, gamma, lam)
    torch.testing.assert_close(advantages.double(), expected)
    torch.testing.assert_close(returns, advantages + values)
    # at the truncation the one-step target bootstraps from the cut episode, not from the reset state
    assert advantages[4, 2] == pytest.approx(float(rollout.rewards[4, 2] + gamma * next_values[4, 2] - values[4, 2]))
    # where both flags are set the episode is over: no bootstrap at all
    assert advantages[4, 1] == pytest.approx(float(rollout.rewards[4, 1] - values[4, 1]))


def test_bootstrap_values_without_truncations_is_the_shifted_values():
    values = torch.arange(6.0).view(3, 2)
    last = torch.tensor([10.0, 11.0])
    empty = torch.empty((0, 2), dtype=torch.long)
    out = bootstrap_values(values, last, empty, torch.empty(0))
    assert out.tolist() == [[2.0, 3.0], [4.0, 5.0], [10.0, 11.0]]
    assert values.tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]  # the input is left alone


# -- the runner's batch ------------------------------------------------------


def small_trainer(tmp_path, fast, *extra: str, algo: str | None = None) -> Trainer:
    """A Trainer on InvertedPendulum (obs 4, act 1) with N environments; its networks are what matters here."""
    cfg = load_config(
        "inverted_pendulum",
        [*fast, f"task.num_envs={N}", "advantage.gamma=0.9", "advantage.gae_lambda=0.8", *extra],
        algo=algo,
    )
    return Trainer(cfg, tmp_path / "run")


def scripted_rollout(policy: GaussianPolicy, seed: int = 0, env: ScriptedVecEnv | None = None, obs=None):
    """T steps of the scripted environments (obs 4, on the CPU) with ``policy`` on its own device."""
    device = next(policy.parameters()).device
    env = env or ScriptedVecEnv(N, EVENTS, obs_dim=4)
    obs = env.reset(seed=0).to(device) if obs is None else obs
    generator = torch.Generator(device).manual_seed(seed)
    rollout, obs, _ = collect(env, policy, obs, T, generator, EpisodeTracker(N, device))
    return rollout, env, obs


@pytest.mark.parametrize("device", DEVICES)
def test_build_batch_bootstraps_truncations_end_to_end(tmp_path, fast, device):
    trainer = small_trainer(tmp_path, fast, "advantage.normalize_advantages=false", f"train.device={device}")
    assert trainer.device.type == device
    try:
        rollout, _, _ = scripted_rollout(trainer.policy)
        assert rollout.obs.device.type == device
        # statistics that are not the identity: the critic must see normalized observations
        trainer.policy.normalizer.update(rollout.obs.reshape(-1, 4) * 2 + 1)
        _, _, _, _, _, final, _ = scripted_reference(EVENTS, T, N, obs_dim=4)
        rewards = rollout.rewards * 0.5
        batch = trainer.build_batch([(rollout, rewards)])
    finally:
        trainer.close()

    def v(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return trainer.value(trainer.policy.normalizer(x))

    values = v(rollout.obs)
    expected_next = torch.cat([values[1:], v(rollout.last_obs)[None]])
    for (t, n), final_obs in final.items():
        if rollout.truncated[t, n]:
            expected_next[t, n] = v(final_obs.to(device))
    assert batch.time_shape == (T, N) and batch.size == T * N and batch.gamma == 0.9
    view = lambda x: x.view(T, N)  # noqa: E731  row t * N + n
    torch.testing.assert_close(view(batch.values), values)
    torch.testing.assert_close(view(batch.next_values), expected_next)
    expected_adv = reference_gae(rewards, values, expected_next, rollout.terminated, rollout.truncated, 0.9, 0.8)
    torch.testing.assert_close(view(batch.advantages).double().cpu(), expected_adv, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(view(batch.returns), view(batch.advantages) + values)
    assert torch.equal(batch.obs.view(T, N, 4), rollout.obs)
    assert torch.equal(batch.actions.view(T, N, 1), rollout.actions)
    assert torch.equal(view(batch.log_probs), rollout.log_probs)
    assert torch.equal(view(batch.rewards), rewards)
    assert torch.equal(view(batch.terminated), rollout.terminated)
    assert torch.equal(view(batch.truncated), rollout.truncated)
    assert not batch.age.any() and batch.age.dtype == torch.long


def test_build_batch_standardizes_advantages_over_the_whole_batch(tmp_path, fast):
    trainer = small_trainer(tmp_path, fast)
    try:
        rollout, _, _ = scripted_rollout(trainer.policy)
        batch = trainer.build_batch([(rollout, rollout.rewards)])
    finally:
        trainer.close()
    assert batch.advantages.mean().abs().item() < 1e-5
    assert batch.advantages.std().item() == pytest.approx(1.0, abs=1e-4)
    torch.testing.assert_close(batch.returns, batch.values + _raw_advantages(trainer, rollout))


def _raw_advantages(trainer: Trainer, rollout) -> torch.Tensor:
    with torch.no_grad():
        norm = trainer.policy.normalizer
        values = trainer.value(norm(rollout.obs))
        next_values = bootstrap_values(
            values, trainer.value(norm(rollout.last_obs)), rollout.final_index, trainer.value(norm(rollout.final_obs))
        )
    return gae(rollout.rewards, values, next_values, rollout.terminated, rollout.truncated, 0.9, 0.8)[0].reshape(-1)


def test_build_batch_with_reused_rollouts_puts_each_beside_the_fresh_one(tmp_path, fast):
    trainer = small_trainer(tmp_path, fast, "advantage.normalize_advantages=false", "algo.reuse_rollouts=2", algo="a2c")
    try:
        assert trainer.algo.reuse_rollouts == 2
        old, env, obs = scripted_rollout(trainer.policy, seed=0)
        new, _, _ = scripted_rollout(trainer.policy, seed=1, env=env, obs=obs)  # the script continues: no ends
        batch = trainer.build_batch([(new, new.rewards), (old, old.rewards * 2)])
        alone_new = trainer.build_batch([(new, new.rewards)])
        alone_old = trainer.build_batch([(old, old.rewards * 2)])
    finally:
        trainer.close()
    assert batch.time_shape == (T, 2 * N) and batch.size == T * 2 * N
    cols = lambda x: x.view(T, 2 * N, *x.shape[1:])  # noqa: E731
    assert cols(batch.age)[:, :N].eq(0).all() and cols(batch.age)[:, N:].eq(1).all()
    for name in ("obs", "actions", "log_probs", "advantages", "returns", "values", "next_values", "rewards"):
        both = cols(getattr(batch, name))
        fresh = getattr(alone_new, name).view(T, N, *both.shape[2:])
        past = getattr(alone_old, name).view(T, N, *both.shape[2:])
        assert torch.equal(both[:, :N], fresh), name
        assert torch.equal(both[:, N:], past), name  # each block bootstrapped at its own end
    assert torch.equal(cols(batch.obs)[:, N:], old.obs)
    assert torch.equal(cols(batch.rewards)[:, N:], old.rewards * 2)
    assert torch.equal(cols(batch.truncated)[:, N:], old.truncated)
    assert not new.truncated.any() and old.truncated.any()


def test_update_hands_the_algorithm_the_past_rollouts_newest_first_under_frozen_statistics(tmp_path, fast):
    trainer = small_trainer(tmp_path, fast, "algo.reuse_rollouts=2", algo="a2c")
    seen = []

    def fake_update(batch, generator=None):
        seen.append((batch, trainer.policy.normalizer.count.item()))
        return UpdateResult({"custom": 1.0})

    trainer.algo.update = fake_update
    try:
        env, obs, rollouts = None, None, []
        for seed in range(4):
            rollout, env, obs = scripted_rollout(trainer.policy, seed=seed, env=env, obs=obs)
            rollouts.append(rollout)
            metrics = trainer.update(rollout)
            assert metrics == {"custom": 1.0, "update_rejected": 0.0}
    finally:
        trainer.close()
    assert [b.time_shape for b, _ in seen] == [(T, N), (T, 2 * N), (T, 3 * N), (T, 3 * N)]
    # the normalizer still had the statistics of before the rollout while the algorithm updated
    assert [count for _, count in seen] == [0.0, T * N, 2 * T * N, 3 * T * N]
    last = seen[-1][0]
    blocks = last.obs.view(T, 3, N, 4)
    for age, rollout in enumerate([rollouts[3], rollouts[2], rollouts[1]]):
        assert torch.equal(blocks[:, age], rollout.obs)
        assert last.age.view(T, 3, N)[:, age].eq(age).all()
    # rewards of a past rollout are those scaled when it was collected, not rescaled now
    assert torch.equal(last.rewards.view(T, 3, N)[:, 1], seen[2][0].rewards.view(T, 3, N)[:, 0])


# -- episode statistics and reward scaling ----------------------------------


def test_episode_tracker_over_episodes_ending_in_different_environments():
    tracker = EpisodeTracker(3)
    rewards = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])
    done = torch.tensor([[False, True, False], [True, False, False], [False, True, True], [True, False, False]])
    ended = [tracker.step(rewards[t], done[t]) for t in range(4)]
    assert ended == [[(2.0, 1)], [(2.0, 2)], [(4.0, 2), (9.0, 3)], [(1.5, 2)]]
    assert tracker.returns.tolist() == [0.0, 0.5, 0.5] and tracker.lengths.tolist() == [0, 1, 1]
    state = tracker.state_dict()
    other = EpisodeTracker(3)
    other.load_state_dict(state)
    assert other.step(torch.ones(3), torch.tensor([True, True, False])) == [(1.0, 1), (1.5, 2)]
    assert tracker.returns.tolist() == [0.0, 0.5, 0.5]  # the saved state was a copy


def test_reward_scaler_against_a_hand_computed_case():
    gamma, eps = 0.5, 1e-8
    scaler = RewardScaler(2, gamma, eps)
    rewards = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    done = torch.tensor([[False, True], [False, False], [True, False]])
    # R_t = gamma R_{t-1} (1 - done_{t-1}) + r_t, per environment:
    #   env 0: 1, 0.5 + 3 = 3.5, 1.75 + 5 = 6.75 (then its episode ends)
    #   env 1: 2 (ends), 4, 2 + 6 = 8
    first = [1.0, 2.0, 3.5, 4.0, 6.75, 8.0]
    mean = sum(first) / 6
    var = sum((x - mean) ** 2 for x in first) / 6  # of the discounted returns, not the rewards
    scaled = scaler(rewards, done)
    torch.testing.assert_close(scaled, rewards / math.sqrt(var + eps))
    assert scaled.dtype == rewards.dtype
    assert scaler.discounted.tolist() == [0.0, 8.0] and scaler.count.item() == 6
    assert scaler.var.item() == pytest.approx(var) and scaler.mean.item() == pytest.approx(mean)

    # Next call: env 0 starts over (R = 1), env 1 continues (0.5 * 8 + 1 = 5); the variance is over
    # all eight returns seen so far, not this call's two.
    scaled = scaler(torch.tensor([[1.0, 1.0]]), torch.tensor([[False, False]]))
    both = [*first, 1.0, 5.0]
    mean = sum(both) / 8
    var = sum((x - mean) ** 2 for x in both) / 8
    torch.testing.assert_close(scaled, torch.tensor([[1.0, 1.0]]) / math.sqrt(var + eps))
    assert scaler.var.item() == pytest.approx(var) and scaler.count.item() == 8
    assert scaler.discounted.tolist() == [1.0, 5.0]

    restored = RewardScaler(2, gamma, eps)
    restored.load_state_dict(scaler.state_dict())
    x, d = torch.tensor([[2.0, -1.0]]), torch.tensor([[True, False]])
    torch.testing.assert_close(restored(x, d), scaler(x, d))


class ReportingEnv(ScriptedVecEnv):
    """The scripted env that also reports two reward terms per step and a success flag per ended episode."""

    def step(self, action: torch.Tensor):
        t = self.t
        obs, reward, terminated, truncated, info = super().step(action)
        n = self.num_envs
        info["reward_terms"] = {"near": torch.full((n,), float(t)), "far": -torch.arange(n, dtype=torch.float64)}
        done = terminated | truncated
        if done.any():
            info["episode_stats"] = {"success": torch.arange(n, dtype=torch.float64) % 2}  # env 1 succeeds
        return obs, reward, terminated, truncated, info


def test_collect_averages_the_reward_terms_per_step_and_the_statistics_of_ended_episodes():
    env, policy = ReportingEnv(N, EVENTS), tiny_policy()
    start = env.reset(seed=0)
    rollout, _, _ = collect(env, policy, start, T, torch.Generator().manual_seed(0), EpisodeTracker(N))
    stats = rollout.env_stats
    assert stats["reward_near"] == pytest.approx(sum(range(T)) / T)  # term t at step t, averaged over steps
    assert stats["reward_far"] == pytest.approx(-(N - 1) / 2)
    ended = [i for (t, i) in EVENTS if t < T]
    assert stats["train_success"] == pytest.approx(sum(i % 2 for i in ended) / len(ended))
