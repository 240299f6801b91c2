"""envs.vector: the batch and sharded vector envs step exactly like gymnasium's SyncVectorEnv (SAME_STEP)."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest

from envs.factory import make_env, make_vec_env
from envs.vector import BatchVectorEnv, ShardedVectorEnv


class _Counter(gym.Env):
    """Obs = [id, t]; terminates at t == length, rewards t; the reset info carries the seed."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, ident: int, length: int) -> None:
        self.ident, self.length, self.t = ident, length, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([self.ident, 0], np.float32), {"seed": -1 if seed is None else seed}

    def step(self, action):
        self.t += 1
        obs = np.array([self.ident, self.t + float(action[0])], np.float32)
        return obs, float(self.t), self.t >= self.length, False, {}


def _fns(lengths):
    return [functools.partial(_Counter, i, n) for i, n in enumerate(lengths)]


def _assert_same(a, b, atol: float = 0.0):
    """Same step results; `atol` > 0 allows the fast sim's last-bit rounding in obs and rewards (flags exact)."""
    for x, y in zip(a[:2], b[:2], strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=atol)
    for x, y in zip(a[2:4], b[2:4], strict=True):
        np.testing.assert_array_equal(x, y)
    assert a[4].keys() == b[4].keys()
    if "_final_obs" in a[4]:
        np.testing.assert_array_equal(a[4]["_final_obs"], b[4]["_final_obs"])
        for i in np.flatnonzero(a[4]["_final_obs"]):
            np.testing.assert_allclose(a[4]["final_obs"][i], b[4]["final_obs"][i], rtol=0, atol=atol)


@pytest.mark.parametrize("form", ["batch", "sharded"])
def test_vector_forms_equal_sync_vector_env(form):
    lengths = [2, 3, 5]
    reference = gym.vector.SyncVectorEnv(_fns(lengths), autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    env = BatchVectorEnv(_fns(lengths)) if form == "batch" else ShardedVectorEnv(_fns(lengths), workers=2)
    try:
        ra, rb = reference.reset(seed=10), env.reset(seed=10)
        np.testing.assert_array_equal(ra[0], rb[0])
        np.testing.assert_array_equal(ra[1]["seed"], rb[1]["seed"])
        ends = 0
        for t in range(12):
            actions = np.full((3, 1), 0.25 * t, np.float32)
            a, b = reference.step(actions), env.step(actions)
            _assert_same(a, b)
            ends += int(a[2].sum())
        assert ends == 6 + 4 + 2
    finally:
        reference.close()
        env.close()


class _Broken(_Counter):
    """Fails at its first step (module level: a worker process unpickles it by name)."""

    def step(self, action):
        raise ValueError("boom")


def test_sharded_worker_error_is_one_line_and_closes():
    env = ShardedVectorEnv([functools.partial(_Counter, 0, 3), functools.partial(_Broken, 1, 3)], workers=2)
    try:
        env.reset(seed=0)
        with pytest.raises(RuntimeError, match="ValueError: boom"):
            env.step(np.zeros((2, 1), np.float32))
    finally:
        env.close()


def test_thunks_that_cannot_be_pickled_are_refused_in_one_line():
    with pytest.raises(ValueError, match="must be picklable"):
        ShardedVectorEnv([functools.partial(_Counter, 0, 3), lambda: _Counter(1, 3)], workers=2)


def test_an_error_in_the_callers_own_shard_keeps_the_workers_in_step():
    """The first shard steps in this process: its error propagates as itself, the workers' answers to that step
    are still collected, so the next step pairs each request with its own answer."""
    class _BrokenOnce(_Counter):
        failed = False

        def step(self, action):
            if not _BrokenOnce.failed:
                _BrokenOnce.failed = True
                raise ValueError("own boom")
            return super().step(action)

    env = ShardedVectorEnv([functools.partial(_BrokenOnce, 0, 3), functools.partial(_Counter, 1, 3)], workers=2)
    reference = BatchVectorEnv([lambda: _Counter(0, 3), lambda: _Counter(1, 3)])
    try:
        env.reset(seed=0)
        reference.reset(seed=0)
        with pytest.raises(ValueError, match="own boom"):
            env.step(np.zeros((2, 1), np.float32))
        reference.step(np.zeros((2, 1), np.float32))  # the worker's env took that step too
        reference.envs[0].t -= 1  # the broken env did not
        for t in range(4):
            actions = np.full((2, 1), 0.5 * t, np.float32)
            _assert_same(reference.step(actions), env.step(actions))
    finally:
        env.close()
        reference.close()


def test_bad_workers_and_actions_are_value_errors():
    with pytest.raises(ValueError, match="workers"):
        ShardedVectorEnv(_fns([2, 2]), workers=3)
    env = BatchVectorEnv(_fns([2, 2]))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((3, 1), np.float32))
    with pytest.raises(ValueError, match="workers"):
        make_vec_env(["kick_to_target"], workers=2)
    with pytest.raises(ValueError, match="vec_env 'sync'"):
        make_vec_env(["kick_to_target"] * 2, workers=2, vec_env="async")
    with pytest.raises(ValueError, match="unknown sim"):
        make_env("kick_to_target", sim="turbo")


def test_fast_soccer_vector_env_equals_the_official_one():
    """Two tasks, random torques, 700 steps (several autoresets): same obs, rewards, flags, final obs."""
    tasks = ["goalie_penalty_kick", "kick_to_target"]
    official, fast = make_vec_env(tasks, seed=3), make_vec_env(tasks, seed=3, sim="fast")
    sharded = make_vec_env(tasks, seed=3, sim="fast", workers=2)
    try:
        ra, rb, rc = official.reset(seed=3), fast.reset(seed=3), sharded.reset(seed=3)
        np.testing.assert_array_equal(ra[0], rb[0])  # the resets are sai_mujoco's own
        np.testing.assert_array_equal(ra[0], rc[0])
        rng = np.random.default_rng(0)
        ends = 0
        for _ in range(700):
            actions = rng.uniform(-1, 1, (2, 12)).astype(np.float32)
            a, b, c = official.step(actions), fast.step(actions), sharded.step(actions)
            _assert_same(a, b, atol=1e-5)
            _assert_same(a, c, atol=1e-5)
            ends += int((a[2] | a[3]).sum())
        assert ends >= 4
    finally:
        for env in (official, fast, sharded):
            env.close()
