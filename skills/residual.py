"""Residual RL over the scripted striker: the learner's action is a correction added to the striker's command.

A memoryless policy cannot clone the striker: the observation has no yaw, and the striker keeps its heading
by integrating the gyro from the episode's first step (skills/striker.py). Cloned, it fell on Goalie and
scored -0.97 on Obstacle (docs/results.md). Here the striker keeps its state and plays its command; the
policy adds `scale` x its action in [-1, 1]^3, and the sum, clipped to [-1, 1], is the walking command. An
action of zero plays the striker exactly, so a fine-tune starts from the striker's score, and what the RL
engine learns is what the striker misses.

* `ResidualStriker`: the env wrapper (outermost, over the command-mode env's 89-dim observation) that
  training and evaluation put around each env (`residual_wrapper`; envs.factory.make_env's `outer`).
* `ResidualStrikerModule`: the same sum for the exported TorchScript torque module (the policy of a
  submission.torchscript.CommandPolicyModule).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from envs.walk import WALK_DT
from skills.striker import StrikerModule, initial_state, scripted_core, striker_config

RESIDUAL_KEY = "residual_striker"
"""A run's metadata key: the residual scale (absent: no residual)."""


def check_scale(scale: float) -> float:
    """The residual scale as a float; ValueError unless finite and in (0, 2] (2 lets a correction reverse any
    command)."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (math.isfinite(scale) and 0 < scale <= 2):
        raise ValueError(f"the residual scale must be a number in (0, 2], got {scale!r}")
    return float(scale)


class ResidualStriker(gym.Wrapper):
    """Action a in [-1, 1]^3 -> command clip(striker(obs) + scale * a, -1, 1) for the inner command-mode env; the
    striker's state follows the episode (reset with it)."""

    def __init__(self, env: gym.Env, scale: float, action_repeat: int) -> None:
        super().__init__(env)
        self.scale = check_scale(scale)
        self.core = scripted_core(striker_config(), action_repeat)
        self._obs = np.zeros(env.observation_space.shape, np.float32)
        self._state = initial_state(1)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._obs, self._state = obs, initial_state(1)
        return obs, info

    def striker_command(self) -> np.ndarray:
        """The striker's command for the current observation (advances its state)."""
        with torch.inference_mode():
            command, self._state = self.core(torch.as_tensor(self._obs, dtype=torch.float32).reshape(1, -1),
                                             self._state)
        return command.numpy()[0]

    def step(self, action):
        base = self.striker_command().astype(np.float32).astype(np.float64)  # as the exported module rounds it
        command = np.clip(base + self.scale * np.asarray(action, np.float32).astype(np.float64), -1.0, 1.0)
        obs, reward, terminated, truncated, info = self.env.step(command.astype(np.float32))
        self._obs = obs
        return obs, reward, terminated, truncated, info


def residual_wrapper(scale: float | None, action_repeat: int) -> Callable[[gym.Env], gym.Env] | None:
    """The `outer` wrapper of make_env for a residual run (None when `scale` is None: no residual)."""
    if scale is None:
        return None
    return functools.partial(ResidualStriker, scale=check_scale(scale), action_repeat=action_repeat)


class ResidualStrikerModule(nn.Module):
    """forward(obs89 (N, 89)) -> commands (N, 3): clamp(striker(obs) + scale * policy(obs), -1, 1), the striker's
    state kept per row (StrikerModule) and integrated over `action_repeat` physics steps per call."""

    def __init__(self, policy: nn.Module, scale: float, action_repeat: int) -> None:
        super().__init__()
        self.striker = StrikerModule(striker_config(), dt=action_repeat * WALK_DT)
        self.policy = policy
        self.scale = check_scale(scale)

    @torch.jit.export
    def reset(self) -> None:
        self.striker.reset()

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        base = self.striker(obs).to(torch.float64)
        correction = self.policy(obs).to(torch.float64)
        return (base + self.scale * correction).clamp(-1.0, 1.0).to(torch.float32)
