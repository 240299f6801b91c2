"""What a Stable-Baselines3 MlpPolicy zip holds for one algorithm (docs/sb3_zip.md sections 1-2): `SB3Layout`.

Each algorithm's layout is an entry of rlcore/registry.py; the writer and the reader read only that, so both
sides agree on one description. The small per-algorithm functions the layouts reference (the SB3 attributes a
config maps to) are here, next to the action-map folding PPO's layout asks for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class ZipPart:
    """One network (or part of one) of the algorithm, as stored in policy.pth."""

    label: str
    """What `load_zip_weights` reports when it loads this part."""
    attribute: str
    """The algorithm's module that holds it (`algo.<attribute>`)."""
    prefix: str
    """The module's key prefix in policy.pth ("actor.", or "" for a module stored at the root)."""
    keys: tuple[str, ...] = ("",)
    """Which of the module's state-dict keys belong to the part (key prefixes; all by default)."""
    copy_of: str | None = None
    """A target network's online prefix: a zip without the target's keys starts it as a copy of these."""


@dataclass(frozen=True)
class SB3Layout:
    """An algorithm's SB3 zip, as data."""

    policy_class: tuple[str, str]
    """(module, class) that SB3 pickles as `policy_class`; "MlpPolicy" is an alias of each class."""
    default_activation: str
    """SB3's activation when policy_kwargs names none. A wrong activation loads silently and predicts wrong
    values."""
    split_net_arch: bool
    """policy_kwargs' net_arch is {"pi": [...], "vf": [...]} (separate policy and value trunks), not a list."""
    actor: ZipPart
    """The acting policy: what a warm start of the actor alone, and the deployed policy, load."""
    others: tuple[ZipPart, ...]
    """The rest of policy.pth (critics, targets, the value function), in loading order."""
    optimizers: tuple[tuple[str, str], ...]
    """Optimizer members `load` requires, each with the policy.pth key prefix of its parameters: SB3 checks only
    the parameter count (`actor.` excludes `actor_target.`)."""
    required_keys: tuple[str, ...]
    """policy.pth keys the actor cannot do without."""
    actor_trunk: str
    """policy.pth prefix of the actor's hidden Linear layers (their sizes are the net_arch)."""
    trunk_has_output: bool
    """The trunk's last Linear is the action output, not a hidden layer (TD3's mu)."""
    folds_action_map: bool
    """SB3's `predict` only clips, so the map from [-1, 1] onto the action bounds is folded into the action head
    (PPO: `fold_action_map`); otherwise `predict` maps the actor's tanh output itself."""
    entropy_coefficient: bool
    """The zip carries SAC's entropy coefficient: pytorch_variables, target_entropy and, when tuned, the
    `ENT_COEF_OPTIMIZER` member."""
    hyperparameters: Callable[[Any], dict[str, Any]]
    """The algorithm's config (and state) as the SB3 attributes of the same meaning."""

    def policy_parts(self) -> tuple[ZipPart, ...]:
        """Every part of policy.pth, the actor first."""
        return (self.actor, *self.others)


ENT_COEF_OPTIMIZER = "ent_coef_optimizer"
"""The extra optimizer member of a SAC zip whose ent_coef is tuned ("auto...")."""


def _off_policy_hyperparameters(algo: Any) -> dict[str, Any]:
    """The replay settings TD3 and SAC share. buffer_size 1: a deployment file; SB3 would otherwise allocate a
    1e6-transition buffer at load (continue training with ALGO.load(path, buffer_size=N))."""
    cfg = algo.cfg
    return {"gamma": cfg.gamma, "tau": cfg.tau, "buffer_size": 1, "learning_starts": cfg.buffer.learning_starts,
            "batch_size": cfg.buffer.batch_size, "train_freq": cfg.train_freq, "gradient_steps": cfg.gradient_steps}


def td3_hyperparameters(algo: Any) -> dict[str, Any]:
    """TD3's SB3 attributes."""
    cfg = algo.cfg
    return {**_off_policy_hyperparameters(algo), "policy_delay": cfg.policy_delay,
            "target_policy_noise": cfg.target_policy_noise, "target_noise_clip": cfg.target_noise_clip}


def sac_hyperparameters(algo: Any) -> dict[str, Any]:
    """SAC's SB3 attributes; ent_coef "auto_<alpha>" when tuned (SB3 starts its tuning there)."""
    cfg = algo.cfg
    alpha = math.exp(float(algo.log_alpha.detach()))
    return {**_off_policy_hyperparameters(algo), "target_update_interval": cfg.target_update_interval,
            "target_entropy": algo.target_entropy, "ent_coef": f"auto_{alpha!r}" if cfg.auto_entropy else alpha}


def ppo_hyperparameters(algo: Any) -> dict[str, Any]:
    """PPO's SB3 attributes."""
    cfg = algo.cfg
    return {"gamma": cfg.gamma, "n_steps": cfg.n_steps, "batch_size": cfg.batch_size, "n_epochs": cfg.n_epochs,
            "gae_lambda": cfg.gae_lambda, "clip_range": cfg.clip_range, "clip_range_vf": cfg.clip_range_vf,
            "normalize_advantage": cfg.normalize_advantage, "ent_coef": cfg.ent_coef, "vf_coef": cfg.vf_coef,
            "max_grad_norm": cfg.max_grad_norm, "target_kl": cfg.target_kl}


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
