"""Replay prefill: demonstrations into the replay buffer's protected demo region (TD3, SAC).

The region holds round(buffer_size * demo_fraction) rows that the ring never overwrites, and every batch draws
round(batch_size * demo_fraction) rows from it (rlcore/buffers.py); train.py sets demo_fraction to
--bc-replay-fraction before building the algorithm, so the Runner sizes the region.

* A recorded rollout file (bc/rollouts.py) gives real transitions: observation, the EXECUTED action (the
  demonstrator's action plus the recording noise: what produced the next observation and the reward; the clean
  label when no executed action was recorded), reward, true next observation, terminated.
* An observations/actions-only file (e.g. a mocap dataset) is accepted with a warning and inserted as the seed
  did: next_obs = obs, reward 0, not terminated: a zero-reward self-loop on the demo action, which only anchors
  the critic near the demonstrations (docs/seed_pipeline.md, fix 17).
When the file has more rows than the free part of the region, a seeded random subset without replacement goes
in; when it has fewer, each row goes in once (duplicates would not change the sampling distribution) and the
rest of the region stays empty. Observations are stored raw, as the runner stores them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bc.dataset import load_demos
from rlcore.buffers import ReplayBuffer

PREFILL_METRIC = "bc/replay_prefill_transitions"
"""Scalar logged once, at timestep 0, with the number of inserted demonstrations."""


@dataclass(frozen=True)
class PrefillReport:
    """What prefill_replay did."""

    path: Path
    inserted: int
    available: int
    """Rows in the file."""
    capacity: int
    """Size of the demo region."""
    real_transitions: bool
    actions_key: str

    def message(self) -> str:
        kind = "real transitions" if self.real_transitions else "observation/action self-loops (reward 0)"
        return (f"replay prefill: inserted {self.inserted} of {self.available} demonstrations from {self.path} "
                f"({kind}, '{self.actions_key}') into a demo region of {self.capacity}")


def prefill_replay(replay: ReplayBuffer, path: str | Path, *, action_mode: str | None = None,
                   reward_profile: str | None = None, seed: int = 0) -> PrefillReport:
    """Insert a demonstration file into the replay buffer's free demo rows; ValueError on a bad or mismatched file.

    `action_mode` / `reward_profile`, when given, must match what the file records (actions of another mode
    are meaningless, rewards of another profile mislead the critic).
    """
    free = replay.demo_capacity - replay.demo_size
    if replay.demo_capacity == 0:
        raise ValueError("the replay buffer has no demo region: set BufferConfig.demo_fraction > 0")
    demos = load_demos(path, obs_dim=replay.obs.shape[1], act_dim=replay.actions.shape[1])
    if action_mode is not None and demos.action_mode not in (None, action_mode):
        raise ValueError(f"{path}: holds {demos.action_mode} actions but the run uses {action_mode}")
    if reward_profile is not None and demos.has_transitions and demos.reward_profile not in (None, reward_profile):
        raise ValueError(f"{path}: rewards are from the {demos.reward_profile!r} profile but the run trains on "
                         f"{reward_profile!r}")
    actions_key = "executed_actions" if demos.executed_actions is not None else "actions"
    actions = demos.executed_actions if demos.executed_actions is not None else demos.actions
    if not demos.has_transitions:
        warnings.warn(f"{path} has observations and actions only: inserting them as self-loops "
                      "(next_obs = obs, reward 0, not terminated), as the seed did", stacklevel=2)
    n = min(len(demos), free)
    rows = np.arange(len(demos)) if n == len(demos) else np.sort(
        np.random.default_rng(seed).choice(len(demos), n, replace=False))
    if n:
        device = replay.device

        def column(array: np.ndarray | None, default: np.ndarray) -> torch.Tensor:
            return torch.as_tensor((array if array is not None else default)[rows], device=device)

        zeros = np.zeros(len(demos), np.float32)
        replay.add_demos(column(demos.observations, demos.observations), column(actions, actions),
                         column(demos.rewards, zeros), column(demos.next_observations, demos.observations),
                         column(demos.terminated, zeros))
    return PrefillReport(Path(path), n, len(demos), replay.demo_capacity, demos.has_transitions, actions_key)
