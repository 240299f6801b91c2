"""The deployed policy: obs -> normaliser -> actor -> [-1, 1] -> env units. One object, every face.

Training evaluation, evaluate.py, the SB3 export and the submission Preprocessor all act through this
module (docs/design.md, "One policy, many faces"), never through an algorithm's optimisers or critics.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rlcore.normalizer import RunningNormalizer


class DeployedPolicy(nn.Module):
    """Policy in env units. `actor` must have `deterministic(obs) -> [-1, 1] actions`; actors with
    `sample(obs) -> (actions, log_prob)` (SAC, PPO) also act stochastically through `predict(.., False)`."""

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

    @torch.no_grad()
    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        """Stochastic env-unit actions: the actor's sample clipped to [-1, 1] (SB3 clips before the env); an
        actor without `sample` (TD3) acts deterministically, as SB3's TD3.predict does."""
        if not hasattr(self.actor, "sample"):
            return self.forward(obs)
        actions, _ = self.actor.sample(self.normalizer(obs))
        return self.to_env(actions.clamp(-1.0, 1.0))

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """numpy in, numpy out, (D,) or (B, D): the callable the evaluation harness and tools use."""
        device = self.action_scale.device
        batch = torch.as_tensor(np.asarray(obs), dtype=torch.float32, device=device)
        single = batch.ndim == 1
        act = self.forward if deterministic else self.sample
        actions = act(batch[None] if single else batch).cpu().numpy()
        return actions[0] if single else actions
