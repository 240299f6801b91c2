"""A deterministic toy env whose episodes end on a script: terminations, truncations and both at once.

The runner tests use it to check what the training loop stores at an episode's end (rlcore/runner.py's
docstring): with the script known, every transition's true next observation, reward and end flags can be
recomputed from its observation alone.

    obs     = [episode, t, env_id]   episode counts this env's episodes from 0; t the steps taken in it
    reward  = t after the step (1, 2, ...)
    ends    : episode k lasts script[k % len(script)].length steps and ends as its `kind`:
              "terminated", "truncated", or "both" (both flags on the same step: a termination)

Actions are recorded (`actions`) and otherwise ignored; reset seeds are recorded (`reset_seeds`) and do
not change the observations. Resetting an episode that has not taken a step yet keeps it (the vector env
auto-resets at the end step already), so a run resumed on the same env object at an episode boundary sees
what an uninterrupted run saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

KINDS = ("terminated", "truncated", "both")


@dataclass(frozen=True)
class Episode:
    length: int
    kind: str

    def __post_init__(self) -> None:
        if self.length < 1 or self.kind not in KINDS:
            raise ValueError(f"bad scripted episode {self}")


def script(*episodes: tuple[int, str]) -> tuple[Episode, ...]:
    """script((3, "terminated"), (2, "truncated")) -> the Episode tuple ScriptedEnv cycles through."""
    return tuple(Episode(length, kind) for length, kind in episodes)


def flags(episodes: Sequence[Episode], episode: int, t: int) -> tuple[bool, bool]:
    """(terminated, truncated) of the step that brings episode `episode` to step count `t`."""
    scripted = episodes[episode % len(episodes)]
    ended = t == scripted.length
    return ended and scripted.kind in ("terminated", "both"), ended and scripted.kind in ("truncated", "both")


class ScriptedEnv(gym.Env):
    """One env of the module docstring."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, episodes: Sequence[Episode], env_id: int = 0) -> None:
        self.episodes = tuple(episodes)
        self.env_id = env_id
        self.episode = -1
        self.t = 0
        self.actions: list[np.ndarray] = []
        self.reset_seeds: list[int | None] = []

    def _obs(self) -> np.ndarray:
        return np.array([self.episode, self.t, self.env_id], np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.reset_seeds.append(seed)
        if self.episode < 0 or self.t > 0:
            self.episode += 1
        self.t = 0
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.actions.append(np.array(action, np.float32, copy=True))
        self.t += 1
        terminated, truncated = flags(self.episodes, self.episode, self.t)
        return self._obs(), float(self.t), terminated, truncated, {}


def scripted_vec(*scripts: Sequence[Episode]) -> gym.vector.SyncVectorEnv:
    """A SAME_STEP-autoreset vector env with one ScriptedEnv per script (the runner's contract)."""
    fns = [lambda s=s, i=i: ScriptedEnv(s, i) for i, s in enumerate(scripts)]
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def expected_transition(scripts: Sequence[Sequence[Episode]], obs: np.ndarray) -> tuple[np.ndarray, float, bool,
                                                                                           bool]:
    """(true next obs, reward, terminated, truncated) of the step taken from raw observation `obs`."""
    episode, t, env_id = (int(round(float(v))) for v in obs)
    terminated, truncated = flags(scripts[env_id], episode, t + 1)
    return np.array([episode, t + 1, env_id], np.float32), float(t + 1), terminated, truncated
