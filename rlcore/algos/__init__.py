"""TD3, SAC and PPO: the interface they share is rlcore/algos/protocol.py, their facts are rlcore/registry.py."""

from __future__ import annotations

import numpy as np
import torch

from rlcore.algos.protocol import Algorithm
from rlcore.config import AlgoConfig

__all__ = ["Algorithm", "build_algorithm"]


def build_algorithm(name: str, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray, cfg: AlgoConfig,
                    device: torch.device | str = "cpu") -> Algorithm:
    """Construct algorithm `name` (rlcore.registry.AlgorithmSpec.build: the config type must be its own)."""
    from rlcore.registry import algorithm_spec  # imported here: the registry imports this package's modules

    return algorithm_spec(name).build(obs_dim, action_low, action_high, cfg, device)
