"""What a Stable-Baselines3 MlpPolicy zip holds, per algorithm (docs/sb3_zip.md sections 1-2).

Shared by the writer and the reader so that both sides agree on one table.
"""

from __future__ import annotations

import numpy as np
import torch

POLICY_CLASSES: dict[str, tuple[str, str]] = {
    "td3": ("stable_baselines3.td3.policies", "TD3Policy"),
    "sac": ("stable_baselines3.sac.policies", "SACPolicy"),
    "ppo": ("stable_baselines3.common.policies", "ActorCriticPolicy"),
}
"""(module, class) that SB3 pickles as `policy_class`; "MlpPolicy" is an alias of each class."""

DEFAULT_ACTIVATIONS: dict[str, str] = {"td3": "relu", "sac": "relu", "ppo": "tanh"}
"""SB3's activation when policy_kwargs names none. A wrong activation loads silently and predicts wrong values."""

OPTIMIZERS: dict[str, tuple[tuple[str, str], ...]] = {
    "td3": (("actor.optimizer", "actor."), ("critic.optimizer", "critic.")),
    "sac": (("actor.optimizer", "actor."), ("critic.optimizer", "critic.")),
    "ppo": (("policy.optimizer", ""),),
}
"""Optimizer members `load` requires, each with the policy.pth key prefix of its parameters: SB3 checks only
the parameter count (`actor.` excludes `actor_target.`)."""

SAC_ENT_COEF_OPTIMIZER = "ent_coef_optimizer"
"""The extra optimizer member of a SAC zip whose ent_coef is tuned ("auto...")."""


def _scale_and_centre(low: np.ndarray, high: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Half-range s and centre c (float64) of the map a = c + s a' from [-1, 1] onto [low, high]."""
    low64, high64 = np.asarray(low, np.float64), np.asarray(high, np.float64)
    return torch.from_numpy((high64 - low64) / 2), torch.from_numpy((high64 + low64) / 2)


def fold_action_map(state: dict[str, torch.Tensor], low: np.ndarray, high: np.ndarray) -> dict[str, torch.Tensor]:
    """PPO engine -> SB3: move a = c + s a' into action_net (W <- s W, b <- s b + c) and the std (log_std + log s).

    SB3's PPO `predict` only clips action_net's output to the bounds, so its clip to [low, high] becomes the
    engine's clip to [-1, 1] (docs/sb3_zip.md section 3). Computed in float64, stored as float32.
    """
    s, c = _scale_and_centre(low, high)
    out = dict(state)
    out["action_net.weight"] = (s[:, None] * state["action_net.weight"].double()).float()
    out["action_net.bias"] = (s * state["action_net.bias"].double() + c).float()
    out["log_std"] = (state["log_std"].double() + torch.log(s)).float()
    return out


def unfold_action_map(state: dict[str, torch.Tensor], low: np.ndarray, high: np.ndarray) -> dict[str, torch.Tensor]:
    """SB3 -> PPO engine: the inverse of `fold_action_map` (a genuine SB3 action_net outputs env units)."""
    s, c = _scale_and_centre(low, high)
    out = dict(state)
    out["action_net.weight"] = (state["action_net.weight"].double() / s[:, None]).float()
    out["action_net.bias"] = ((state["action_net.bias"].double() - c) / s).float()
    out["log_std"] = (state["log_std"].double() - torch.log(s)).float()
    return out
