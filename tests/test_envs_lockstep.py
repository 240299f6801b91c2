"""The shared lock-step episode scheduler on a toy env whose episode length is its reset seed."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from envs.lockstep import Step, run_lockstep


class _Countdown(gym.Env):
    """obs = [steps left]; an episode reset with seed s lasts s steps; reward = the action."""

    observation_space = gym.spaces.Box(0.0, 100.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    closed = 0

    def reset(self, *, seed=None, options=None):
        self.left = int(seed)
        return np.array([self.left], np.float32), {}

    def step(self, action):
        self.left -= 1
        return np.array([self.left], np.float32), float(action[0]), self.left == 0, False, {}

    def close(self):
        _Countdown.closed += 1


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_every_seed_plays_one_whole_episode_whatever_the_batch(batch_size: int) -> None:
    seeds = [3, 1, 2, 5]
    steps: list[Step] = []
    calls: list[int] = []

    def act(obs: np.ndarray, episodes: list[int]) -> np.ndarray:
        calls.append(len(obs))
        return np.array([[0.1 * e] for e in episodes], np.float32)  # the action names its episode

    _Countdown.closed = 0
    run_lockstep(_Countdown, seeds, act, steps.append, batch_size)
    by_episode = {e: [s for s in steps if s.episode == e] for e in range(len(seeds))}
    for e, seed in enumerate(seeds):
        played = by_episode[e]
        assert [float(s.obs[0]) for s in played] == list(range(seed, 0, -1))  # from reset to the end, in order
        assert [s.done for s in played] == [False] * (seed - 1) + [True]
        assert all(s.reward == pytest.approx(0.1 * e) for s in played)
    assert sum(calls) == sum(seeds) and max(calls) == min(batch_size, len(seeds))  # one call per step, batched
    assert _Countdown.closed == min(batch_size, len(seeds))


def test_wrong_action_shape_is_an_error_and_envs_close() -> None:
    _Countdown.closed = 0
    with pytest.raises(ValueError, match=r"need \(2, 1\)"):
        run_lockstep(_Countdown, [2, 2], lambda obs, episodes: np.zeros((len(obs), 3)), lambda step: None, 4)
    assert _Countdown.closed == 2
