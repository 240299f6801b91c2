"""Episodes in lock-step on a small batch of envs: the scheduling the evaluation harness
(scoring/harness.py) and the demonstration recorder (bc/rollouts.py) share.

Every env plays one episode per reset seed, in order: the first `batch_size` seeds start at once, and an env
whose episode ends takes the next unplayed seed. Each step makes ONE policy call for all envs still playing
(a network pays one forward pass per step), so results depend only on the seeds and the policy, not on the
batch size, for any policy that acts row by row. What to do with each step is the caller's `on_step`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class Step:
    """One env step of one episode."""

    episode: int
    """Index of the episode's seed in `reset_seeds`."""
    obs: np.ndarray
    """The observation the action was chosen for (a copy)."""
    action: np.ndarray
    """The action the env executed."""
    next_obs: np.ndarray
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


Act = Callable[[np.ndarray, list[int]], np.ndarray]
"""(observations of the playing envs (M, D), their episode indices) -> actions (M, A)."""


def policy_act(policy: Callable[[np.ndarray], np.ndarray]) -> Act:
    """The `Act` of a policy: a stateful policy that keeps its state per episode offers
    `act(obs, episodes)` (and `reset()`, called here once, before the episodes); any other is called on the
    observations alone."""
    reset = getattr(policy, "reset", None)
    if callable(reset):
        reset()
    act = getattr(policy, "act", None)
    if callable(act):
        return act
    return lambda obs, _episodes: policy(obs)


def run_lockstep(make_env: Callable[[], gym.Env], reset_seeds: Sequence[int], act: Act,
                 on_step: Callable[[Step], None], batch_size: int = 8) -> None:
    """Play one episode per reset seed on up to `batch_size` envs from `make_env` (closed at the end).

    `act` gets the playing envs' observations and must return one action per row of the env's action
    shape (ValueError otherwise); `on_step` sees every step, the episode's last one with `done` set.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not reset_seeds:
        return
    envs: list[gym.Env] = []
    try:
        for _ in range(min(batch_size, len(reset_seeds))):
            envs.append(make_env())  # inside the try: envs built before a failing one are closed too
        action_shape = envs[0].action_space.shape
        obs = np.zeros((len(envs), *envs[0].observation_space.shape), np.float32)
        episode = [0] * len(envs)
        next_episode = 0

        def start(slot: int) -> None:
            nonlocal next_episode
            obs[slot], _ = envs[slot].reset(seed=int(reset_seeds[next_episode]))
            episode[slot], next_episode = next_episode, next_episode + 1

        for slot in range(len(envs)):
            start(slot)
        active = list(range(len(envs)))
        while active:
            actions = np.asarray(act(obs[active], [episode[slot] for slot in active]))
            if actions.shape != (len(active), *action_shape):
                raise ValueError(f"policy returned actions of shape {actions.shape}, need "
                                 f"{(len(active), *action_shape)}")
            still_active = []
            for row, slot in enumerate(active):
                before = obs[slot].copy()
                next_obs, reward, terminated, truncated, info = envs[slot].step(actions[row])
                obs[slot] = next_obs
                step = Step(episode[slot], before, actions[row], next_obs, float(reward), bool(terminated),
                            bool(truncated), info)
                on_step(step)
                if not step.done:
                    still_active.append(slot)
                elif next_episode < len(reset_seeds):
                    start(slot)
                    still_active.append(slot)
            active = still_active
    finally:
        for env in envs:
            env.close()
