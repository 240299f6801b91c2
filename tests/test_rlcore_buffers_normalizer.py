"""Replay/rollout buffers and the observation normaliser, against hand-computed numbers and numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlcore.buffers import ReplayBuffer, RolloutBuffer
from rlcore.config import ObsNormConfig
from rlcore.normalizer import RunningNormalizer


def _rows(start: int, n: int, obs_dim: int = 2, act_dim: int = 1):
    """n transitions whose every field encodes its id (start..start+n-1)."""
    ids = torch.arange(start, start + n, dtype=torch.float32)
    obs = ids[:, None].repeat(1, obs_dim)
    return obs, ids[:, None].repeat(1, act_dim), ids, obs + 0.5, torch.zeros(n)


def test_replay_never_samples_unwritten_slots() -> None:
    buf = ReplayBuffer(obs_dim=2, act_dim=1, capacity=100, seed=0)
    buf.add(*_rows(1, 7))  # ids 1..7; unwritten rows are all zeros
    batch = buf.sample(1000)
    assert set(batch.rewards.tolist()) <= set(range(1, 8))
    assert set(batch.rewards.tolist()) == set(range(1, 8))  # and every written row is reachable
    assert torch.equal(batch.next_obs, batch.obs + 0.5)  # fields of one row stay together


def test_replay_ring_wraps_and_keeps_newest() -> None:
    buf = ReplayBuffer(obs_dim=2, act_dim=1, capacity=5, seed=0)
    for start in range(1, 13, 3):  # ids 1..12 in chunks of 3
        buf.add(*_rows(start, 3))
    assert len(buf) == 5
    assert set(buf.sample(500).rewards.tolist()) == {8.0, 9.0, 10.0, 11.0, 12.0}


def test_demos_survive_many_wraps_and_take_their_share() -> None:
    buf = ReplayBuffer(obs_dim=2, act_dim=1, capacity=10, demo_capacity=4, demo_fraction=0.25, seed=0)
    buf.add_demos(*_rows(-4, 4))  # demo ids -4..-1
    for start in range(0, 100, 5):  # the ring wraps 10 times
        buf.add(*_rows(start, 5))
    rewards = buf.sample(400).rewards
    demo = rewards[rewards < 0]
    assert set(demo.tolist()) == {-4.0, -3.0, -2.0, -1.0}
    assert len(demo) == 100  # round(400 * 0.25), demos first
    assert set(rewards[rewards >= 0].tolist()) == set(range(90, 100))
    with pytest.raises(ValueError, match="exceed the demo region"):
        buf.add_demos(*_rows(-10, 1))


def test_replay_state_dict_round_trip() -> None:
    buf = ReplayBuffer(obs_dim=2, act_dim=1, capacity=6, demo_capacity=2, demo_fraction=0.5, seed=3)
    buf.add_demos(*_rows(-2, 2))
    buf.add(*_rows(0, 8))
    copy = ReplayBuffer(obs_dim=2, act_dim=1, capacity=6, demo_capacity=2, demo_fraction=0.5)
    copy.load_state_dict(buf.state_dict())
    assert torch.equal(copy.sample(64).rewards, buf.sample(64).rewards)


def test_gae_hand_computed_with_truncation_bootstrap() -> None:
    """One env, 4 steps: a truncation after step 1 (reward already holds gamma*V(final)), a termination at 3."""
    gamma, lam = 0.9, 0.8
    buf = RolloutBuffer(n_steps=4, n_envs=1, obs_dim=1, act_dim=1)
    values = [1.0, 2.0, 3.0, 4.0]
    v_final = 10.0  # V of the true final observation of the truncated episode
    rewards = [1.0, 2.0 + gamma * v_final, 3.0, 4.0]
    ends = [0.0, 1.0, 0.0, 1.0]
    for t in range(4):
        buf.add(torch.zeros(1, 1), torch.zeros(1, 1), torch.tensor([rewards[t]]), torch.tensor([ends[t]]))
    buf.values.copy_(torch.tensor(values)[:, None])
    buf.compute_returns_and_advantages(torch.tensor([100.0]), gamma, lam)
    # literal backward recursion
    d3 = 4.0 - 4.0                      # terminated: no bootstrap from last_values=100
    a3 = d3
    d2 = 3.0 + gamma * 4.0 - 3.0
    a2 = d2 + gamma * lam * a3
    d1 = (2.0 + 9.0) - 2.0              # truncated: the bootstrap is inside the reward, next value masked
    a1 = d1
    d0 = 1.0 + gamma * 2.0 - 1.0
    a0 = d0 + gamma * lam * a1
    expected = torch.tensor([[a0], [a1], [a2], [a3]])
    torch.testing.assert_close(buf.advantages, expected)
    torch.testing.assert_close(buf.returns, expected + torch.tensor(values)[:, None])


def test_rollout_minibatches_cover_everything_once() -> None:
    buf = RolloutBuffer(n_steps=5, n_envs=2, obs_dim=1, act_dim=1, seed=0)
    for t in range(5):
        ids = torch.tensor([[2.0 * t], [2.0 * t + 1]])
        buf.add(ids, ids, torch.zeros(2), torch.zeros(2))
    batches = buf.minibatches(4)
    assert [len(b.obs) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat([b.obs for b in batches]).flatten().tolist()) == list(range(10))


def test_normalizer_chunked_equals_whole_and_numpy() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(loc=3.0, scale=[0.5, 2.0, 7.0], size=(1000, 3))
    norm = RunningNormalizer((3,), ObsNormConfig(enabled=True))
    for chunk in np.array_split(data, 13):
        norm.update(torch.as_tensor(chunk))
    whole = RunningNormalizer((3,), ObsNormConfig(enabled=True))
    whole.update(torch.as_tensor(data))
    # the prior (mean 0, var 1, count 1e-4) is merged in exactly like a batch
    prior = 1e-4
    total = prior + len(data)
    mean = data.mean(0) * len(data) / total
    var = (1.0 * prior + data.var(0) * len(data) + data.mean(0) ** 2 * prior * len(data) / total) / total
    np.testing.assert_allclose(norm.mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(norm.var.numpy(), var, rtol=1e-10)
    np.testing.assert_allclose(whole.var.numpy(), norm.var.numpy(), rtol=1e-10)
    assert float(norm.count) == pytest.approx(total)


def test_normalizer_formula_clip_and_disabled_identity() -> None:
    norm = RunningNormalizer((2,), ObsNormConfig(enabled=True, clip=2.0, epsilon=1e-8))
    norm.mean.copy_(torch.tensor([1.0, -1.0], dtype=torch.float64))
    norm.var.copy_(torch.tensor([4.0, 0.25], dtype=torch.float64))
    out = norm(torch.tensor([[3.0, 0.0], [-100.0, -1.25]]))
    sd = np.sqrt([4 + 1e-8, 0.25 + 1e-8])
    expected = torch.tensor([[2.0 / sd[0], 1.0 / sd[1]], [-2.0, -0.25 / sd[1]]])
    torch.testing.assert_close(out, expected.float().clamp(-2, 2))
    off = RunningNormalizer((2,), ObsNormConfig(enabled=False))
    x = torch.tensor([[5.0, 6.0]])
    off.update(x)
    assert torch.equal(off(x), x) and float(off.count) == pytest.approx(1e-4)


def test_normalizer_state_dict_carries_settings() -> None:
    norm = RunningNormalizer((2,), ObsNormConfig(enabled=True, clip=3.0))
    norm.update(torch.randn(10, 2))
    other = RunningNormalizer((2,), ObsNormConfig(enabled=False))
    other.load_state_dict(norm.state_dict())
    assert other.enabled and other.clip == 3.0
    x = torch.randn(4, 2) * 10
    assert torch.equal(other(x), norm(x))
