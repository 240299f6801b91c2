"""The deployed policy: obs -> normaliser -> actor -> [-1, 1] -> env units. One object, every face.

Training evaluation, evaluate.py, the SB3 export and the submission Preprocessor all act through this
module (ARCHITECTURE "One policy, many faces"), never through an algorithm's optimisers or critics.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rlcore.normalizer import RunningNormalizer


class DeployedPolicy(nn.Module):
    """Deterministic policy in env units. `actor` must have `deterministic(obs) -> [-1, 1] actions`."""

    def __init__(self, normalizer: RunningNormalizer, actor: nn.Module, action_low: np.ndarray,
                 action_high: np.ndarray) -> None:
        super().__init__()
        self.normalizer = normalizer
        self.actor = actor
        low = torch.as_tensor(np.asarray(action_low, np.float32), device=normalizer.mean.device)
        high = torch.as_tensor(np.asarray(action_high, np.float32), device=normalizer.mean.device)
        self.register_buffer("action_scale", (high - low) / 2)
        self.register_buffer("action_bias", (high + low) / 2)

    def to_env(self, action: torch.Tensor) -> torch.Tensor:
        """Map [-1, 1] actions affinely onto the env's bounds."""
        return self.action_bias + self.action_scale * action

    @torch.no_grad()
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic env-unit actions for raw observations (B, D)."""
        return self.to_env(self.actor.deterministic(self.normalizer(obs)))

    def predict(self, obs: np.ndarray) -> np.ndarray:
        """numpy in, numpy out, (D,) or (B, D): the callable the evaluation harness and tools use."""
        device = self.action_scale.device
        batch = torch.as_tensor(np.asarray(obs), dtype=torch.float32, device=device)
        single = batch.ndim == 1
        actions = self.forward(batch[None] if single else batch).cpu().numpy()
        return actions[0] if single else actions
