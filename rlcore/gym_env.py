"""The generic gymnasium path: vector envs for any registered Box task, and return-based evaluation.

Used to check the engine on standard tasks (Pendulum-v1, InvertedPendulum-v5, HalfCheetah-v5) with
`train.py --env-id ...`; the soccer tasks have their own factory in envs/.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from rlcore.seeds import GENERIC_TASK, MAX_EPISODES, episode_seed


def make_gym_vec_env(env_id: str, n_envs: int = 1, vec_env: str = "sync") -> gym.vector.VectorEnv:
    """A gymnasium vector env with SAME_STEP autoreset (final observations in info['final_obs'])."""
    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise ValueError(f"unknown gymnasium env id {env_id!r} ({exc.__class__.__name__})") from None
    fns = [lambda: gym.make(env_id) for _ in range(n_envs)]
    mode = gym.vector.AutoresetMode.SAME_STEP
    if vec_env == "async":
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode)
    if vec_env == "sync":
        return gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
    raise ValueError(f"vec_env must be 'sync' or 'async', got {vec_env!r}")


def evaluate_over_seeds(env_id: str, act: Callable[[np.ndarray], np.ndarray], episodes: int,
                        eval_seeds: list[int]) -> list[dict[str, float]]:
    """`episodes` episodes per eval seed; episode e of eval seed s resets with episode_seed(s, GENERIC_TASK, e)
    (rlcore/seeds.py, the soccer harness's scheme); per-episode records."""
    if not 0 < episodes <= MAX_EPISODES:
        raise ValueError(f"episodes must be in [1, {MAX_EPISODES}], got {episodes}")
    return [r for s in eval_seeds
            for r in evaluate_returns(env_id, act, episodes, seed=episode_seed(s, GENERIC_TASK, 0))]


def evaluate_returns(env_id: str, act: Callable[[np.ndarray], np.ndarray], episodes: int,
                     seed: int = 0) -> list[dict[str, float]]:
    """Run `episodes` episodes with reset seeds seed, seed+1, ...; per episode {seed, return, length}.

    `act` maps a (1, D) observation batch to (1, A) env actions (a DeployedPolicy.predict).
    """
    env = gym.make(env_id)
    records = []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            total, length, done = 0.0, 0, False
            while not done:
                action = act(obs[None].astype(np.float32))[0]
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                length += 1
                done = terminated or truncated
            records.append({"seed": seed + episode, "return": total, "length": length})
    finally:
        env.close()
    return records
