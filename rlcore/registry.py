"""The per-algorithm facts, in one table: what differs between TD3, SAC and PPO outside their own modules.

Everything above rlcore (the workflow, the exports, behaviour cloning) asks this registry instead of comparing
algorithm names, so a fourth algorithm is one more entry here (and its module in rlcore/algos/).
"""

from __future__ import annotations

from dataclasses import dataclass

from rlcore.algos.ppo import PPO
from rlcore.algos.sac import SAC
from rlcore.algos.td3 import TD3
from rlcore.config import PPOConfig, SACConfig, TD3Config


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

    @property
    def actor_learning_starts_unit(self) -> str:
        """What `actor_learning_starts` counts, in words."""
        return "rollouts of value-only updates" if self.on_policy else "critic-only gradient steps"


ALGORITHM_SPECS: dict[str, AlgorithmSpec] = {
    spec.name: spec for spec in (
        AlgorithmSpec("td3", TD3, TD3Config, on_policy=False, bc_actor_learning_starts=10_000),
        AlgorithmSpec("sac", SAC, SACConfig, on_policy=False, bc_actor_learning_starts=10_000),
        AlgorithmSpec("ppo", PPO, PPOConfig, on_policy=True, bc_actor_learning_starts=5),
    )
}


def algorithm_spec(name: str) -> AlgorithmSpec:
    """The spec of algorithm `name` (ValueError naming the known ones otherwise)."""
    if name not in ALGORITHM_SPECS:
        raise ValueError(f"unknown algorithm {name!r}; known: {', '.join(sorted(ALGORITHM_SPECS))}")
    return ALGORITHM_SPECS[name]
