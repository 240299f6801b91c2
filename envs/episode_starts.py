"""Per-row episode-start detection from consecutive 89-dim observations, for stateful TorchScript modules.

The platform steps a submission without a reset signal, so a stateful module (the exported torque modules of
submission/torchscript.py, the scripted striker of skills/striker.py) finds episode starts itself. Row i
starts a new episode when:
1. it is the first call, the first after `reset()`, or the batch size N changed (a new platform batch);
2. its task one-hot (obs89[86:89]) differs from the previous call's;
3. its 12 joint positions and 12 joint velocities are all exactly 0.0: sai_mujoco 0.1.30 resets every
   joint to exactly 0 with zero velocity (no reset noise), a state physics never reaches mid-episode;
4. the robot moved more than `JUMP_M` (0.5 m) since the previous call, measured as the change of
   goal_team_0_rel_robot (a goal post fixed in the world): a teleport, i.e. a reset (even with reset noise).
"""

from __future__ import annotations

import torch
from torch import nn

from envs.preprocess import OBS_SLICES

JUMP_M = 0.5
"""A robot displacement larger than this between two calls (m) marks a new episode (rule 4)."""


def _span(name: str) -> tuple[int, int]:
    return OBS_SLICES[name].start, OBS_SLICES[name].stop


class EpisodeStarts(nn.Module):
    """Per-row new-episode detection from consecutive observations (module docstring, rules 1-4)."""

    __constants__ = ["jump_m"]

    def __init__(self) -> None:
        super().__init__()
        self.jump_m = JUMP_M
        self.task_start, self.task_stop = _span("task_one_hot")
        self.goal_start, self.goal_stop = _span("goal_team_0_rel_robot")
        self.joint_stop = _span("joint_vel")[1]
        self.rows = 0
        self.previous_task = torch.zeros(0, 3)
        self.previous_goal = torch.zeros(0, 3)

    @torch.jit.export
    def reset(self) -> None:
        """Every row of the next call starts a new episode."""
        self.rows = 0

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Bool (N,): which rows of `obs` (N, 89) start a new episode; remembers them for the next call."""
        task = obs[:, self.task_start:self.task_stop]
        goal = obs[:, self.goal_start:self.goal_stop]
        if obs.shape[0] != self.rows:
            starts = torch.ones(obs.shape[0], dtype=torch.bool)
        else:
            reset_pose = (obs[:, :self.joint_stop] == 0.0).all(dim=1)
            new_task = (task != self.previous_task).any(dim=1)
            jumped = torch.linalg.vector_norm(goal - self.previous_goal, dim=1) > self.jump_m
            starts = reset_pose | new_task | jumped
        self.rows = obs.shape[0]
        self.previous_task = task.clone()
        self.previous_goal = goal.clone()
        return starts
