"""Replay prefill: real transitions or self-loops into the demo region, which survives the ring wrapping."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from bc.dataset import save_npz
from bc.prefill import prefill_replay
from rlcore.algos import build_algorithm
from rlcore.buffers import ReplayBuffer
from rlcore.config import BufferConfig, NetConfig, TD3Config
from rlcore.runner import RunConfig, Runner

OBS, ACT = 3, 2


def _file(tmp_path, n: int = 10, transitions: bool = True, **extra) -> str:
    rng = np.random.default_rng(0)
    arrays = {"observations": rng.normal(size=(n, OBS)).astype(np.float32) + 100.0,
              "actions": rng.uniform(-0.5, 0.5, (n, ACT)).astype(np.float32)}
    if transitions:
        arrays.update(executed_actions=arrays["actions"] + 0.1, next_observations=arrays["observations"] + 1.0,
                      rewards=np.arange(n, dtype=np.float32), terminated=np.arange(n) == n - 1,
                      action_mode=np.array("torque"), reward_profile=np.array("competition"))
    arrays.update(extra)
    save_npz(tmp_path / "demos.npz", arrays)
    return str(tmp_path / "demos.npz")


def test_real_transitions_use_the_executed_actions(tmp_path) -> None:
    path = _file(tmp_path)
    replay = ReplayBuffer(OBS, ACT, capacity=50, demo_capacity=20, demo_fraction=0.25)
    report = prefill_replay(replay, path, action_mode="torque", reward_profile="competition")
    assert (report.inserted, report.available, report.capacity, report.real_transitions) == (10, 10, 20, True)
    assert "inserted 10 of 10 demonstrations" in report.message() and "'executed_actions'" in report.message()
    data = np.load(path)
    np.testing.assert_array_equal(replay.obs[:10].numpy(), data["observations"])
    np.testing.assert_array_equal(replay.actions[:10].numpy(), data["executed_actions"])
    np.testing.assert_array_equal(replay.next_obs[:10].numpy(), data["next_observations"])
    np.testing.assert_array_equal(replay.rewards[:10].numpy(), data["rewards"])
    assert replay.terminated[:10].tolist() == [0.0] * 9 + [1.0] and replay.demo_size == 10 and replay.size == 0


def test_observation_action_pairs_become_self_loops_with_a_warning(tmp_path) -> None:
    path = _file(tmp_path, transitions=False)
    replay = ReplayBuffer(OBS, ACT, capacity=50, demo_capacity=20, demo_fraction=0.25)
    with pytest.warns(UserWarning, match="inserting them as self-loops"):
        report = prefill_replay(replay, path)
    assert not report.real_transitions and report.actions_key == "actions"
    assert torch.equal(replay.next_obs[:10], replay.obs[:10])
    assert not replay.rewards[:10].any() and not replay.terminated[:10].any()


def test_a_larger_file_fills_the_region_with_distinct_rows(tmp_path) -> None:
    replay = ReplayBuffer(OBS, ACT, capacity=50, demo_capacity=7, demo_fraction=0.25)
    report = prefill_replay(replay, _file(tmp_path, n=30), seed=3)
    assert report.inserted == 7 and replay.demo_size == 7
    assert len(torch.unique(replay.rewards[:7])) == 7  # rewards are the row numbers: no duplicates
    assert prefill_replay(replay, _file(tmp_path, n=30)).inserted == 0  # full region: nothing more goes in


@pytest.mark.parametrize("kwargs, message", [
    ({"action_mode": "pd"}, "holds torque actions but the run uses pd"),
    ({"reward_profile": "env"}, "rewards are from the 'competition' profile but the run trains on 'env'"),
])
def test_mismatched_files_are_errors(tmp_path, kwargs, message) -> None:
    replay = ReplayBuffer(OBS, ACT, capacity=50, demo_capacity=20, demo_fraction=0.25)
    with pytest.raises(ValueError, match=message):
        prefill_replay(replay, _file(tmp_path), **kwargs)
    assert replay.demo_size == 0


def test_bad_files_and_no_region(tmp_path) -> None:
    replay = ReplayBuffer(OBS, ACT, capacity=50, demo_capacity=20, demo_fraction=0.25)
    with pytest.raises(ValueError, match="observations are 4-dim, the env's are 3-dim"):
        prefill_replay(replay, _file(tmp_path, observations=np.zeros((10, 4), np.float32)))
    rewards = np.zeros(10, np.float32)
    rewards[2] = np.nan
    with pytest.raises(ValueError, match="rewards has NaN or inf values"):
        prefill_replay(replay, _file(tmp_path, rewards=rewards))
    with pytest.raises(ValueError, match="has next_observations, rewards but not all of"):
        prefill_replay(replay, _file(tmp_path, transitions=False, next_observations=np.zeros((10, 3), np.float32),
                                     rewards=rewards))
    with pytest.raises(ValueError, match="no demo region"):
        prefill_replay(ReplayBuffer(OBS, ACT, capacity=50), _file(tmp_path))


class _Walk(gym.Env):
    observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (ACT,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(OBS, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.full(OBS, self.t, np.float32), 0.0, False, False, {}


def test_demos_survive_the_ring_wrapping_several_times(tmp_path) -> None:
    cfg = TD3Config(net=NetConfig(net_arch=(8,)),
                    buffer=BufferConfig(buffer_size=40, batch_size=8, learning_starts=8, demo_fraction=0.25))
    algo = build_algorithm("td3", OBS, -np.ones(ACT, np.float32), np.ones(ACT, np.float32), cfg)
    env = gym.vector.SyncVectorEnv([lambda: gym.wrappers.TimeLimit(_Walk(), 7)] * 2,
                                   autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    runner = Runner(algo, env, RunConfig(total_timesteps=200))
    replay = runner.replay
    assert (replay.demo_capacity, replay.capacity) == (10, 30)  # round(40 * 0.25) rows kept apart
    prefill_replay(replay, _file(tmp_path, n=10))
    demo_obs = replay.obs[:10].clone()
    runner.train()
    env.close()
    assert runner.timesteps == 200 and replay.size == 30  # the 30-row ring wrapped 6 times
    assert replay.demo_size == 10 and torch.equal(replay.obs[:10], demo_obs)
    assert (replay.sample(400).obs[:, 0] >= 90).float().mean() == pytest.approx(0.25)  # batch share of the demos
