"""The per-algorithm facts, in one table: what differs between TD3, SAC and PPO outside their own modules.

Everything above rlcore (the workflow, the exports, behaviour cloning) asks this registry instead of comparing
algorithm names, so a fourth algorithm is one more entry here (and its module in rlcore/algos/, its config in
rlcore/config.py). What the entries hold:
* the class (it satisfies rlcore.algos.protocol.Algorithm) and its config dataclass;
* its actor network: the module the deployed policy runs, which behaviour cloning trains and warm starts load;
* its SB3 zip (rlcore.export.layout.SB3Layout): policy class, default activation, where each network's keys sit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rlcore.algos.ppo import PPO
from rlcore.algos.protocol import Algorithm
from rlcore.algos.sac import SAC
from rlcore.algos.td3 import TD3
from rlcore.config import AlgoConfig, PPOConfig, SACConfig, TD3Config
from rlcore.export.layout import SB3Layout, ZipPart, ppo_hyperparameters, sac_hyperparameters, td3_hyperparameters
from rlcore.networks import ActorCritic, SACActor, TD3Actor

DEFAULT_ALGORITHM = "td3"
"""What a tool trains or clones for when it is not told (the seed pipeline's algorithm)."""


@dataclass(frozen=True)
class AlgorithmSpec:
    """One algorithm's facts."""

    name: str
    algorithm: type
    """The class: `algorithm(obs_dim, action_low, action_high, cfg, device)`."""
    config: type
    """Its config dataclass (rlcore/config.py)."""
    on_policy: bool
    """Rollouts and `update(rollout)` (PPO) instead of a replay buffer and `update(batch)`."""
    bc_actor_learning_starts: int
    """How long an actor warm-started from behaviour cloning waits while the fresh critic (or value function)
    learns: gradient steps off-policy, rollouts of value-only updates on-policy. A fresh critic's gradient, or a
    fresh value function's advantages, otherwise knock a cloned policy over (measured in docs/results.md)."""
    actor_network: type[nn.Module]
    """The class of `algo.actor`: `actor_network(obs_dim, act_dim, net)`, with `deterministic(obs)` and `trunk()`."""
    bc_modules: tuple[str, ...]
    """The actor's sub-modules behaviour cloning trains and a BC warm start loads (paths inside `algo.actor`)."""
    bc_output: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    """What the BC loss compares with the labels: the deployed action, except PPO's unclipped mean (bc/cloning.py)."""
    has_actor_target: bool
    """A Polyak-averaged `algo.actor_target` exists (TD3): a warm start loads it with the actor."""
    set_std: Callable[[nn.Module, float], None] | None
    """Sets a stochastic actor's exploration std on every state (SAC, PPO; a BC start fits only the mean);
    None for a deterministic actor (TD3 explores with config noise)."""
    sb3: SB3Layout
    """Its Stable-Baselines3 zip."""

    @property
    def actor_learning_starts_unit(self) -> str:
        """What `actor_learning_starts` counts, in words."""
        return "rollouts of value-only updates" if self.on_policy else "critic-only gradient steps"

    def build(self, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray, cfg: AlgoConfig,
              device: torch.device | str = "cpu") -> Algorithm:
        """A fresh algorithm; ValueError unless `cfg` is this algorithm's config type."""
        if not isinstance(cfg, self.config):
            raise ValueError(f"algorithm {self.name!r} needs a {self.config.__name__}, got {type(cfg).__name__}")
        return self.algorithm(obs_dim, action_low, action_high, cfg, torch.device(device))


_CRITICS = (ZipPart("critic", "critic", "critic."),
            ZipPart("critic_target", "critic_target", "critic_target.", copy_of="critic."))
_OFF_POLICY_OPTIMIZERS = (("actor.optimizer", "actor."), ("critic.optimizer", "critic."))

ALGORITHM_SPECS: dict[str, AlgorithmSpec] = {
    spec.name: spec for spec in (
        AlgorithmSpec(
            "td3", TD3, TD3Config, on_policy=False, bc_actor_learning_starts=10_000,
            actor_network=TD3Actor, bc_modules=("mu",), bc_output=TD3Actor.deterministic, has_actor_target=True,
            set_std=None,
            sb3=SB3Layout(
                policy_class=("stable_baselines3.td3.policies", "TD3Policy"), default_activation="relu",
                split_net_arch=False, actor=ZipPart("actor", "actor", "actor."),
                others=(ZipPart("actor_target", "actor_target", "actor_target.", copy_of="actor."), *_CRITICS),
                optimizers=_OFF_POLICY_OPTIMIZERS, required_keys=("actor.mu.0.weight",), actor_trunk="actor.mu.",
                trunk_has_output=True, folds_action_map=False, entropy_coefficient=False,
                hyperparameters=td3_hyperparameters)),
        AlgorithmSpec(
            "sac", SAC, SACConfig, on_policy=False, bc_actor_learning_starts=10_000,
            actor_network=SACActor, bc_modules=("latent_pi", "mu"), bc_output=SACActor.deterministic,
            has_actor_target=False, set_std=SACActor.set_std,
            sb3=SB3Layout(
                policy_class=("stable_baselines3.sac.policies", "SACPolicy"), default_activation="relu",
                split_net_arch=False, actor=ZipPart("actor", "actor", "actor."), others=_CRITICS,
                optimizers=_OFF_POLICY_OPTIMIZERS,
                required_keys=("actor.latent_pi.0.weight", "actor.mu.weight", "actor.mu.bias",
                               "actor.log_std.weight"),
                actor_trunk="actor.latent_pi.", trunk_has_output=False, folds_action_map=False,
                entropy_coefficient=True, hyperparameters=sac_hyperparameters)),
        AlgorithmSpec(
            "ppo", PPO, PPOConfig, on_policy=True, bc_actor_learning_starts=5,
            actor_network=ActorCritic, bc_modules=("mlp_extractor.policy_net", "action_net"),
            bc_output=ActorCritic.mean, has_actor_target=False, set_std=ActorCritic.set_std,
            sb3=SB3Layout(
                policy_class=("stable_baselines3.common.policies", "ActorCriticPolicy"), default_activation="tanh",
                split_net_arch=True,
                actor=ZipPart("policy", "actor", "", keys=("log_std", "mlp_extractor.policy_net.", "action_net.")),
                others=(ZipPart("value function", "actor", "", keys=("mlp_extractor.value_net.", "value_net.")),),
                optimizers=(("policy.optimizer", ""),),
                required_keys=("log_std", "mlp_extractor.policy_net.0.weight", "action_net.weight",
                               "action_net.bias"),
                actor_trunk="mlp_extractor.policy_net.", trunk_has_output=False, folds_action_map=True,
                entropy_coefficient=False, hyperparameters=ppo_hyperparameters)),
    )
}


def algorithm_spec(name: str) -> AlgorithmSpec:
    """The spec of algorithm `name` (ValueError naming the known ones otherwise)."""
    if name not in ALGORITHM_SPECS:
        raise ValueError(f"unknown algorithm {name!r}; known: {', '.join(sorted(ALGORITHM_SPECS))}")
    return ALGORITHM_SPECS[name]
