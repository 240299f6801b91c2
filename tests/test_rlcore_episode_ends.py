"""What the training loop stores at an episode's end, on a scripted env (tests/scripted_env.py), both loop shapes.

Off-policy: the replay holds terminated = 1 exactly on terminations (also when the same step truncates) and
the TRUE final observation as next_obs; the TD3/SAC targets of those rows bootstrap only where the episode
was not terminated; batches reach `update` with obs and next_obs normalised by the same statistics.
On-policy: a truncated step's reward gains gamma * V(final obs), a terminated one's does not, and GAE treats
both as episode ends.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rlcore.algos import build_algorithm
from rlcore.buffers import Batch
from rlcore.config import BufferConfig, NetConfig, ObsNormConfig, PPOConfig, SACConfig, TD3Config
from rlcore.normalizer import RunningNormalizer
from rlcore.runner import RunConfig, Runner
from tests.scripted_env import expected_transition, script, scripted_vec

SMALL = NetConfig(net_arch=(8,))
LOW, HIGH = np.array([-1.0], np.float32), np.array([1.0], np.float32)
SCRIPTS = (
    script((3, "terminated"), (2, "truncated"), (4, "both")),
    script((2, "truncated"), (3, "terminated")),
)
"""Over 12 vector steps: env 0 ends at steps 3 (term), 5 (trunc), 9 (both), 12 (term); env 1 at 2 (trunc),
5 (term), 7 (trunc), 10 (term), 12 (trunc)."""
STEPS = 12
GAMMA = 0.5


def _expected(obs: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(next_obs, rewards, terminated, truncated) per row of raw observations, from the script."""
    rows = [expected_transition(SCRIPTS, row) for row in obs.cpu().numpy()]
    return (np.stack([r[0] for r in rows]), np.array([r[1] for r in rows], np.float32),
            np.array([r[2] for r in rows]), np.array([r[3] for r in rows]))


def _offpolicy_replay(algo_name: str, obs_norm: bool = False):
    """(algo, replay) after STEPS vector steps of random warm-up on the scripted env (no updates)."""
    cfg_cls = TD3Config if algo_name == "td3" else SACConfig
    algo = build_algorithm(algo_name, 3, LOW, HIGH, cfg_cls(
        net=SMALL, gamma=GAMMA, obs_norm=ObsNormConfig(enabled=obs_norm),
        buffer=BufferConfig(buffer_size=100, batch_size=4, learning_starts=1000)))
    env = scripted_vec(*SCRIPTS)
    torch.manual_seed(0)
    runner = Runner(algo, env, RunConfig(total_timesteps=STEPS * len(SCRIPTS), log_interval=10_000))
    runner.train()
    env.close()
    return algo, runner.replay


def _all_rows(replay) -> Batch:
    rows = slice(0, replay.size)
    return Batch(replay.obs[rows], replay.actions[rows], replay.rewards[rows], replay.next_obs[rows],
                 replay.terminated[rows])


def test_replay_holds_true_final_obs_and_terminated_only_on_terminations() -> None:
    _, replay = _offpolicy_replay("td3")
    batch = _all_rows(replay)
    assert len(batch.obs) == STEPS * len(SCRIPTS)
    next_obs, rewards, terminated, truncated = _expected(batch.obs)
    np.testing.assert_array_equal(batch.next_obs.numpy(), next_obs)  # never the reset obs of the next episode
    np.testing.assert_array_equal(batch.rewards.numpy(), rewards)
    np.testing.assert_array_equal(batch.terminated.numpy(), terminated.astype(np.float32))
    # the script exercises every case: 5 terminations (one also truncated), 4 pure truncations
    assert terminated.sum() == 5 and (truncated & ~terminated).sum() == 4 and (terminated & truncated).sum() == 1


class _ConstQ(nn.Module):
    """A target critic giving min(Q1', Q2') = 3 everywhere."""

    def forward(self, obs: torch.Tensor, actions: torch.Tensor, dtype: torch.dtype = torch.float32
                ) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.full((len(obs),), 3.0), torch.full((len(obs),), 5.0)


def test_td3_target_on_the_scripted_replay_bootstraps_only_where_not_terminated() -> None:
    td3, replay = _offpolicy_replay("td3")
    td3.critic_target = _ConstQ()
    batch = _all_rows(replay)
    _, rewards, terminated, _ = _expected(batch.obs)
    expected = rewards + GAMMA * (1.0 - terminated) * 3.0  # truncated rows bootstrap, terminated rows do not
    torch.testing.assert_close(td3._q_target(batch), torch.as_tensor(expected, dtype=torch.float32))


def test_sac_target_on_the_scripted_replay_bootstraps_only_where_not_terminated() -> None:
    sac, replay = _offpolicy_replay("sac")
    sac.critic_target = _ConstQ()
    batch = _all_rows(replay)
    _, rewards, terminated, _ = _expected(batch.obs)
    alpha = torch.tensor(0.2)
    torch.manual_seed(1)
    y = sac._q_target(batch, alpha)
    torch.manual_seed(1)
    _, next_log_prob = sac.actor.sample(batch.next_obs)
    expected = torch.as_tensor(rewards) + GAMMA * torch.as_tensor(1.0 - terminated, dtype=torch.float32) * (
        3.0 - alpha * next_log_prob)
    torch.testing.assert_close(y, expected)


def _hand_set_normalizer() -> RunningNormalizer:
    norm = RunningNormalizer((3,), ObsNormConfig(enabled=True, clip=3.0))
    norm.mean.copy_(torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64))
    norm.var.copy_(torch.tensor([4.0, 0.25, 1.0], dtype=torch.float64))
    return norm


def test_normalized_batch_uses_the_same_statistics_for_obs_and_next_obs() -> None:
    obs = torch.tensor([[3.0, 2.5, 0.0], [1.0, 0.0, -1.0]])
    next_obs = torch.tensor([[5.0, 3.0, 1.0], [-1.0, 2.0, -3.0]])
    batch = Batch(obs, torch.zeros(2, 1), torch.tensor([1.0, 2.0]), next_obs, torch.tensor([0.0, 1.0]),
                  torch.zeros(2)).normalized(_hand_set_normalizer())
    # clip((x - [1, 2, -1]) / [2, 0.5, 1], -3, 3), by hand
    torch.testing.assert_close(batch.obs, torch.tensor([[1.0, 1.0, 1.0], [0.0, -3.0, 0.0]]))
    torch.testing.assert_close(batch.next_obs, torch.tensor([[2.0, 2.0, 2.0], [-1.0, 0.0, -2.0]]))
    torch.testing.assert_close(batch.rewards, torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(batch.terminated, torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("algo_name", ["td3", "sac"])
def test_runner_updates_on_batches_normalised_at_sample_time(algo_name: str) -> None:
    """With the normaliser on, every batch `update` gets is the raw replay rows normalised with the statistics
    of that moment, obs and next_obs alike (the scripted next obs is obs + [0, 1, 0], final obs included)."""
    cfg_cls = TD3Config if algo_name == "td3" else SACConfig
    algo = build_algorithm(algo_name, 3, LOW, HIGH, cfg_cls(
        net=SMALL, obs_norm=ObsNormConfig(enabled=True), buffer=BufferConfig(buffer_size=100, batch_size=8,
                                                                             learning_starts=8)))
    seen = []
    update = algo.update

    def checked_update(batch: Batch) -> dict[str, torch.Tensor]:
        norm = algo.normalizer
        std = torch.sqrt(norm.var + norm.epsilon).float()
        raw_obs = batch.obs * std + norm.mean.float()
        assert not torch.allclose(batch.obs, raw_obs)  # the statistics are not the identity
        torch.testing.assert_close(batch.next_obs, norm(raw_obs + torch.tensor([0.0, 1.0, 0.0])))
        seen.append(len(batch.obs))
        return update(batch)

    algo.update = checked_update
    env = scripted_vec(*SCRIPTS)
    torch.manual_seed(0)
    Runner(algo, env, RunConfig(total_timesteps=STEPS * len(SCRIPTS), log_interval=10_000)).train()
    env.close()
    assert len(seen) == STEPS - 3  # updates from the 4th vector step (8 timesteps) on


def test_ppo_bootstraps_truncations_only_and_ends_episodes_on_both() -> None:
    """V is a stub with known values: V(obs) = 100 episode + 10 t + env_id (raw obs)."""
    algo = build_algorithm("ppo", 3, LOW, HIGH, PPOConfig(net=SMALL, gamma=GAMMA, n_steps=STEPS, batch_size=8))
    algo.value = lambda obs: obs @ torch.tensor([100.0, 10.0, 1.0])
    captured = {}

    def capture(rollout) -> dict[str, torch.Tensor]:
        captured.update(obs=rollout.obs.clone(), rewards=rollout.rewards.clone(),
                        episode_ends=rollout.episode_ends.clone(), last_obs=rollout.last_obs.clone())
        rollout.values.zero_()
        rollout.compute_returns_and_advantages(torch.zeros(len(SCRIPTS)), GAMMA, 1.0)
        captured["advantages"] = rollout.advantages.clone()
        return {}

    algo.update = capture
    env = scripted_vec(*SCRIPTS)
    torch.manual_seed(0)
    Runner(algo, env, RunConfig(total_timesteps=STEPS * len(SCRIPTS), log_interval=10_000)).train()
    env.close()
    obs = captured["obs"].reshape(-1, 3)  # normaliser off: the policy inputs are the raw observations
    next_obs, rewards, terminated, truncated = _expected(obs)
    bootstrap = truncated & ~terminated
    values_next = next_obs @ np.array([100.0, 10.0, 1.0], np.float32)
    expected_rewards = rewards + GAMMA * bootstrap * values_next
    assert bootstrap.sum() == 4 and (terminated & truncated).sum() == 1
    np.testing.assert_allclose(captured["rewards"].reshape(-1).numpy(), expected_rewards)
    ends = (terminated | truncated).astype(np.float32)
    np.testing.assert_array_equal(captured["episode_ends"].reshape(-1).numpy(), ends)
    np.testing.assert_array_equal(captured["last_obs"].numpy(), [[4, 0, 0], [5, 0, 1]])  # both envs just reset
    # GAE with V = 0, lambda = 1: the discounted reward sum of each episode's remaining steps, cut at every end
    rewards_te = expected_rewards.reshape(STEPS, len(SCRIPTS))
    ends_te = ends.reshape(STEPS, len(SCRIPTS))
    advantages = np.zeros_like(rewards_te)
    running = np.zeros(len(SCRIPTS), np.float32)
    for t in reversed(range(STEPS)):
        running = rewards_te[t] + GAMMA * (1.0 - ends_te[t]) * running
        advantages[t] = running
    np.testing.assert_allclose(captured["advantages"].numpy(), advantages, rtol=1e-6)
