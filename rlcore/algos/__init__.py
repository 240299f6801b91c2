"""TD3, SAC and PPO. Each exposes `explore`, `update`, `state_dict`, `load_state_dict` and a `policy`."""

from __future__ import annotations

import numpy as np
import torch

from rlcore.algos.ppo import PPO
from rlcore.algos.sac import SAC
from rlcore.algos.td3 import TD3
from rlcore.config import AlgoConfig, PPOConfig, SACConfig, TD3Config

Algorithm = TD3 | SAC | PPO
ALGORITHMS: dict[str, type] = {"td3": TD3, "sac": SAC, "ppo": PPO}


def build_algorithm(name: str, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray, cfg: AlgoConfig,
                    device: torch.device | str = "cpu") -> Algorithm:
    """Construct an algorithm by name; the config type must match the name."""
    expected = {"td3": TD3Config, "sac": SACConfig, "ppo": PPOConfig}[name]
    if not isinstance(cfg, expected):
        raise ValueError(f"algorithm {name!r} needs a {expected.__name__}, got {type(cfg).__name__}")
    return ALGORITHMS[name](obs_dim, action_low, action_high, cfg, torch.device(device))
