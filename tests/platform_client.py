"""A stand-in for the sai_rl client's benchmark loop (docs/platform.md, "The evaluation loop"), for export tests.

It runs episodes the way `run_benchmark` does: the raw sai_mujoco env (torque actions) inside a
gymnasium AsyncVectorEnv with shared memory and autoreset DISABLED, every env reset with its own seed,
`get_actions(obs, info)` called on the whole batch every step until all episodes ended, finished envs
stepped on with the policy's actions. It adds the platform's own `task_index` one-hot in an order that is
not ours. An episode's score is the official score of its terminal step's reward terms.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np
import sai_mujoco  # noqa: F401  (registers the env ids)

from envs.tasks import get_task
from scoring.report import episode_report, plain_terms

PLATFORM_TASK_ORDER = ("kick_to_target", "goalie_penalty_kick", "obstacle_penalty_kick")
"""Some order of the competition's tasks that is not ours (the real one is not visible offline)."""


class PlatformTaskIndex(gym.Wrapper):
    """Adds info["task_index"], the platform's one-hot of the task, at reset and at every step."""

    def __init__(self, env: gym.Env, task: str) -> None:
        super().__init__(env)
        self.one_hot = np.eye(len(PLATFORM_TASK_ORDER), dtype=np.float32)[PLATFORM_TASK_ORDER.index(task)]

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "task_index": self.one_hot}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "task_index": self.one_hot}


def platform_env(task: str, max_episode_steps: int | None = None) -> gym.Env:
    """The raw competition env of a task as the platform builds it (torque actions, raw observation)."""
    return PlatformTaskIndex(gym.make(get_task(task).env_id, max_episode_steps=max_episode_steps), task)


def platform_vector_env(task: str, n: int, max_episode_steps: Sequence[int | None]) -> gym.vector.AsyncVectorEnv:
    """n raw envs of one task as run_benchmark batches them (max_episode_steps per env, for short tests)."""
    return gym.vector.AsyncVectorEnv([lambda m=m: platform_env(task, m) for m in max_episode_steps],
                                     shared_memory=True, copy=False,
                                     autoreset_mode=gym.vector.AutoresetMode.DISABLED)


def run_benchmark(task: str, seeds: Sequence[int], get_actions: Callable[[np.ndarray, dict], np.ndarray],
                  max_episode_steps: int | None = None) -> list[float]:
    """Official per-episode scores of len(seeds) episodes run in one batch, as the platform runs them."""
    envs = platform_vector_env(task, len(seeds), [max_episode_steps] * len(seeds))
    try:
        obs, info = envs.reset(seed=list(seeds))
        done = np.zeros(len(seeds), bool)
        terms: list[dict | None] = [None] * len(seeds)
        while not done.all():
            obs, _, terminated, truncated, info = envs.step(get_actions(obs, info))
            for i in np.flatnonzero((terminated | truncated) & ~done):
                terms[i] = plain_terms({k: v[i] for k, v in info["reward_terms"].items() if not k.startswith("_")})
            done |= terminated | truncated
    finally:
        envs.close()
    return [episode_report(t, task)["comp_total"] for t in terms]
