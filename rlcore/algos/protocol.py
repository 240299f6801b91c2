"""The interface every algorithm in rlcore/algos satisfies in the same way (TD3, SAC, PPO).

Three small protocols of at most five methods each:
* `Learner`: what the runner and the checkpoints use. `explore(obs)` takes RAW observations and returns the
  acting actions in [-1, 1] space (PPO's are unclipped samples: the runner clips what the env gets);
  `update(batch)` takes a normalised replay `Batch` off-policy and the full, `finish`ed `RolloutBuffer`
  on-policy, and returns detached 0-d metric tensors (rlcore.metrics keys).
* `FineTuning`: what warm starts (BC, SB3 zips, residual policies) use on a freshly built algorithm.
* `OnPolicy`: the value function an on-policy learner also has (the runner bootstraps truncations with it).

`actor` is the module the deployed policy runs (TD3Actor, SACActor, PPO's ActorCritic); the per-algorithm
facts about it (its BC sub-modules, its SB3 keys) are in rlcore/registry.py.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from rlcore.freeze import FreezeSchedule
from rlcore.normalizer import RunningNormalizer
from rlcore.optim import Adam
from rlcore.policy import DeployedPolicy


@runtime_checkable
class Learner(Protocol):
    """An RL algorithm as the runner sees it."""

    name: str
    """Its registry name (rlcore/registry.py)."""
    on_policy: bool
    """Rollouts and `update(rollout)` instead of a replay buffer and `update(batch)`."""
    cfg: Any
    """Its config dataclass (rlcore/config.py)."""
    device: torch.device
    normalizer: RunningNormalizer
    actor: nn.Module
    policy: DeployedPolicy
    """normaliser -> actor -> env units: what evaluation and export act through."""
    freeze: FreezeSchedule | None
    n_updates: int

    def explore(self, obs: torch.Tensor, /) -> torch.Tensor: ...

    def update(self, batch: Any, /) -> dict[str, torch.Tensor]: ...

    def optimizers(self) -> list[Adam | torch.optim.Optimizer]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict, /) -> None: ...


@runtime_checkable
class FineTuning(Protocol):
    """Warm-start controls: a frozen anchor copy of the actor, a freeze schedule, a zeroed action head."""

    anchor: nn.Module | None

    def set_anchor(self) -> None: ...

    def set_freeze(self, n_layers: int, until_step: int, /) -> FreezeSchedule: ...

    def zero_action_head(self) -> None: ...


@runtime_checkable
class Algorithm(Learner, FineTuning, Protocol):
    """What TD3, SAC and PPO all are: a learner that can be fine-tuned."""


@runtime_checkable
class OnPolicy(Protocol):
    """The value function of an on-policy learner."""

    def value(self, obs: torch.Tensor, /) -> torch.Tensor: ...


def fine_tuning_state(algo: Algorithm) -> dict[str, dict | None]:
    """The freeze schedule and the anchor as state-dict entries (None when unset)."""
    return {"freeze": algo.freeze.state_dict() if algo.freeze else None,
            "anchor": algo.anchor.state_dict() if algo.anchor is not None else None}


def load_fine_tuning_state(algo: Algorithm, state: dict) -> None:
    """Restore what `fine_tuning_state` saved (an older state without an anchor entry has none)."""
    if state["freeze"] is not None:
        algo.set_freeze(state["freeze"]["n_layers"], state["freeze"]["until_step"]).load_state_dict(state["freeze"])
    if state.get("anchor") is not None:
        algo.set_anchor()
        algo.anchor.load_state_dict(state["anchor"])
