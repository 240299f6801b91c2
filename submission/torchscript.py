"""TorchScript export: one self-contained module `forward(obs89) -> torques12` for any action mode.

The SB3 zip can only carry a torque policy (the platform applies `predict`'s output as raw torques). A
`pd` or `command` policy needs its action decoding, and for `command` the walking controller, at the
physics rate; this module holds all of it, so `torch.jit.load(path)(obs89)` gives the torques the
training env applied for the same observations, in a process that has only torch (and numpy) installed.

What the module holds (no Python code of this project is needed to load or run it):
* the observation normaliser, as rlcore.normalizer computes it (float32 mean, float32 sqrt(var + eps), clip);
* the actor and the policy's action mapping (rlcore.policy.DeployedPolicy), same weights;
* the action decoding of the mode, in float64 as the env wrappers compute it (envs/wrappers.py):
  torque: mid + half * clip(a, -1, 1); pd: clip(Kp (default + scale * clip(a, -1, 1) - q) - Kd qd, low, high)
  with q, qd = obs89[0:12], obs89[12:24] (envs.preprocess.OBS_LAYOUT);
* the policy rate: with action_repeat k the policy acts every k calls and its action is held in between,
  while the torques are recomputed every call (ActionRepeat over PDAction);
* for `command`: the controller network and its state (see the command section below).

Calls: obs (89,) -> (12,); obs (N, 89) -> (N, 12), each row its own episode with its own state. float32 out.

Episode starts. The platform gives no reset signal (docs/platform.md, Preprocessor rule 8), so the
module detects them from the observation. Row i starts a new episode (state cleared) when:
1. it is the first call, the first after `reset()`, or the batch size N changed (a new platform batch);
2. its task one-hot (obs89[86:89]) differs from the previous call's;
3. its 12 joint positions and 12 joint velocities are all exactly 0.0: sai_mujoco 0.1.30 resets every
   joint to exactly 0 with zero velocity (no reset noise), a state physics never reaches mid-episode;
4. the robot moved more than `JUMP_M` (0.5 m) since the previous call, measured as the change of
   goal_team_0_rel_robot (a goal post fixed in the world): a teleport, i.e. a reset (even with reset noise).
Callers that know the episode boundaries (an evaluation loop) should call `reset()` at each one anyway.
Finished episodes that keep being stepped (the platform does that) are harmless: their rows only
affect their own state.

Command mode (envs/command.py CommandAction, step by step, vectorised over rows):
* the policy's command, clipped to [-1, 1], scaled by the velocity limits; gait on iff its norm >= the gait
  threshold; the controller network (the .pt file, embedded as a TorchScript submodule) runs every
  `decimation` walking steps on the 47-dim input of envs/controller.py, built from obs89 (projected gravity
  at 24:27, gyro at 27:30, q, qd) and the held state (gait phase, previous actions); PD to its targets with
  the controller's gains and the env's torque bounds;
* the kick macro, when the run had one: the trigger of envs.macros.MacroPlayer.should_trigger computed from
  obs89 (ball_xpos_rel_robot, the task's goal vector chosen by the one-hot, player_team); while it plays,
  PD toward the frame of each step (the per-step targets are precomputed by stepping a MacroPlayer, so the
  timing is the wrapper's by construction) and the controller's clocks hold.
Known difference: the wrapper also aborts a playing macro when the step's reward_terms show ball contact
(ball_hits > 0 in the penalty kicks: the robot's second touch; goal_scored / success end the episode anyway).
reward_terms are not in the observation, so the module plays the macro to its end there. Elsewhere the
float32 observation replaces the float64 info the wrapper reads (gravity scaled after rounding, the trigger's
distances), which moves the result by rounding only.

`platform_units=True` makes forward return the torques divided onto [-1, 1] ((tau - mid) / half): the
sai_rl PyTorch handler treats a TorchScript model's output as [-1, 1] and maps it linearly onto the env's
torque bounds, which gives back the same torques.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from envs.command import CommandAction, CommandOptions, command_wrapper
from envs.controller import JoystickController
from envs.episode_starts import EpisodeStarts
from envs.macros import ATTACKED_GOAL, MIN_NORM, TASK_GOAL_FIELD, TEAM_GOAL_FIELDS, MacroPlayer, TriggerConfig
from envs.preprocess import OBS_DIM, OBS_SLICES
from envs.tasks import TASKS
from envs.walk import WalkEngine
from envs.wrappers import DEFAULT_PD_SCALE, T1_DEFAULT_POSE, T1_KD, T1_KP
from rlcore.fileio import atomic_write
from rlcore.policy import DeployedPolicy
from skills.residual import RESIDUAL_KEY, ResidualStrikerModule
from submission.bundle import MODEL_FILES
from submission.preprocessor import preprocessor_source
from submission.walk_module import WalkEngineModule

TORCHSCRIPT_MODES = ("torque", "pd", "command")
"""Action modes this exporter handles."""


def _span(name: str) -> tuple[int, int]:
    """(start, stop) of a field of the 89-dim observation."""
    part = OBS_SLICES[name]
    return part.start, part.stop


def _f64(values: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, np.float64), dtype=torch.float64)


class ScriptNormalizer(nn.Module):
    """clip((x - mean) / sqrt(var + eps), -clip, clip) in float32, as RunningNormalizer.forward; identity when off."""

    __constants__ = ["enabled", "clip"]

    def __init__(self, stats: Mapping[str, Any]) -> None:
        super().__init__()
        self.enabled = bool(stats["enabled"])
        self.clip = float(stats["clip"])
        var = torch.as_tensor(stats["var"], dtype=torch.float64)
        self.register_buffer("mean", torch.as_tensor(stats["mean"], dtype=torch.float64).to(torch.float32))
        self.register_buffer("std", torch.sqrt(var + float(stats["epsilon"])).to(torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return obs
        return ((obs - self.mean) / self.std).clamp(-self.clip, self.clip)


class ScriptPolicy(nn.Module):
    """DeployedPolicy's deterministic path: normaliser -> actor.deterministic -> bias + scale * action."""

    def __init__(self, policy: DeployedPolicy) -> None:
        super().__init__()
        self.normalizer = ScriptNormalizer(policy.normalizer.stats())
        self.actor = copy.deepcopy(policy.actor).to("cpu", torch.float32).eval()
        for parameter in self.actor.parameters():
            parameter.requires_grad_(False)
        self.register_buffer("action_scale", policy.action_scale.detach().to("cpu", torch.float32).clone())
        self.register_buffer("action_bias", policy.action_bias.detach().to("cpu", torch.float32).clone())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Policy actions (N, A) for raw float32 observations (N, 89)."""
        return self.action_bias + self.action_scale * self.actor.deterministic(self.normalizer(obs))


class JointTorques(nn.Module):
    """Decoding of a [-1, 1]^12 action into torques, in float64 as envs/wrappers.py: torque or pd mode."""

    __constants__ = ["pd", "pd_scale"]

    def __init__(self, mode: str, low: np.ndarray, high: np.ndarray, pd_scale: float) -> None:
        super().__init__()
        self.pd = mode == "pd"
        self.pd_scale = float(pd_scale)
        low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
        self.register_buffer("low", _f64(low))
        self.register_buffer("high", _f64(high))
        self.register_buffer("mid", _f64((high + low) / 2.0))
        self.register_buffer("half_range", _f64((high - low) / 2.0))
        self.register_buffer("default_pose", _f64(T1_DEFAULT_POSE))
        self.register_buffer("kp", _f64(T1_KP))
        self.register_buffer("kd", _f64(T1_KD))
        self.q_start, self.q_stop = _span("joint_pos")
        self.qd_start, self.qd_stop = _span("joint_vel")

    def forward(self, actions: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """float64 torques (N, 12) for actions (N, 12) at the joint state of obs (N, 89)."""
        a = actions.to(torch.float64).clamp(-1.0, 1.0)
        if not self.pd:
            return self.mid + self.half_range * a
        q = obs[:, self.q_start:self.q_stop].to(torch.float64)
        qd = obs[:, self.qd_start:self.qd_stop].to(torch.float64)
        targets = self.default_pose + self.pd_scale * a
        return torch.minimum(torch.maximum(self.kp * (targets - q) - self.kd * qd, self.low), self.high)


class JointPolicyModule(nn.Module):
    """forward(obs89) -> torques12 for a `torque` or `pd` policy acting every `policy_every` calls."""

    __constants__ = ["policy_every", "platform_units"]

    def __init__(self, policy: DeployedPolicy, mode: str, low: np.ndarray, high: np.ndarray, *,
                 pd_scale: float, policy_every: int, platform_units: bool) -> None:
        super().__init__()
        self.policy = ScriptPolicy(policy)
        self.decode = JointTorques(mode, low, high, pd_scale)
        self.episodes = EpisodeStarts()
        self.policy_every = int(policy_every)
        self.platform_units = bool(platform_units)
        self.obs_dim = OBS_DIM
        self.held = torch.zeros(0, 12)
        self.calls = torch.zeros(0, dtype=torch.int64)

    @torch.jit.export
    def reset(self) -> None:
        """Forget all state: the next call starts new episodes in every row."""
        self.episodes.reset()

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        single = obs.dim() == 1
        x = obs.reshape(-1, self.obs_dim).to(torch.float32)
        starts = self.episodes(x)
        if self.calls.shape[0] != x.shape[0]:
            self.calls = torch.zeros(x.shape[0], dtype=torch.int64)
            self.held = torch.zeros(x.shape[0], 12)
        self.calls = torch.where(starts, torch.zeros_like(self.calls), self.calls)
        act_now = self.calls % self.policy_every == 0
        if bool(act_now.any()):
            self.held = torch.where(act_now.unsqueeze(1), self.policy(x), self.held)
        self.calls = self.calls + 1
        torques = self.decode(self.held, x)
        if self.platform_units:
            torques = (torques - self.decode.mid) / self.decode.half_range
        out = torques.to(torch.float32)
        return out[0] if single else out


class MacroTrigger(nn.Module):
    """envs.macros.MacroPlayer.should_trigger on the 89-dim observation, per row, the task from its one-hot."""

    __constants__ = ["threshold", "ball_radius", "alignment", "min_norm"]

    def __init__(self, trigger: TriggerConfig) -> None:
        super().__init__()
        self.threshold = float(trigger.threshold)
        self.ball_radius = float(trigger.ball_radius)
        self.alignment = float(trigger.alignment)
        self.min_norm = MIN_NORM
        self.register_buffer("pattern", _f64(trigger.pattern))
        self.ball = _span("ball_xpos_rel_robot")[0]
        self.team = _span("player_team")[0]
        self.task = _span("task_one_hot")[0]
        self.team_goals = [_span(name)[0] for name in TEAM_GOAL_FIELDS]
        fields = [TASK_GOAL_FIELD[task.name] for task in TASKS]
        self.task_goals = [-1 if field == ATTACKED_GOAL else _span(field)[0] for field in fields]
        """Per task (one-hot order): the start of its goal field, -1 for the attacked team goal."""

    def forward(self, command: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Bool (N,): the sentinel command (N, 3) float64 and the horizontal geometry of obs (N, 89)."""
        x = obs.to(torch.float64)
        sentinel = (command * self.pattern >= self.threshold).all(dim=1)
        ball = x[:, self.ball:self.ball + 2]
        team = torch.argmax(x[:, self.team:self.team + 2], dim=1)
        team_goal = torch.where((team == 0).unsqueeze(1), x[:, self.team_goals[0]:self.team_goals[0] + 2],
                                x[:, self.team_goals[1]:self.team_goals[1] + 2])
        task = torch.argmax(x[:, self.task:self.task + len(self.task_goals)], dim=1)
        goal = team_goal
        for i, start in enumerate(self.task_goals):
            if start >= 0:
                goal = torch.where((task == i).unsqueeze(1), x[:, start:start + 2], goal)
        ball_norm = torch.linalg.vector_norm(ball, dim=1)
        goal_norm = torch.linalg.vector_norm(goal, dim=1)
        cosine = (ball * goal).sum(dim=1) / (ball_norm * goal_norm).clamp_min(self.min_norm * self.min_norm)
        return (sentinel & (ball_norm <= self.ball_radius) & (ball_norm >= self.min_norm)
                & (goal_norm >= self.min_norm) & (cosine >= self.alignment))


class HubWalker(nn.Module):
    """envs.controller.JoystickController.step for a batch of rows: the hub's network and its clocks."""

    __constants__ = ["decimation", "action_scale", "clip_actions", "gait_threshold", "gait_frequency",
                     "phase_step", "gravity", "ang_vel", "dof_pos", "dof_vel"]

    def __init__(self, controller: JoystickController) -> None:
        super().__init__()
        cfg = controller.config
        self.net = private_copy(controller.net)
        self.decimation = int(cfg.decimation)
        self.action_scale = float(cfg.action_scale)
        self.clip_actions = float(cfg.clip_actions)
        self.gait_threshold = float(controller.gait_threshold)
        self.gait_frequency = float(cfg.gait_frequency)
        self.phase_step = cfg.sim_dt * cfg.gait_frequency
        self.gravity, self.ang_vel = float(cfg.gravity), float(cfg.ang_vel)
        self.dof_pos, self.dof_vel = float(cfg.dof_pos), float(cfg.dof_vel)
        self.register_buffer("command_scale", _f64([cfg.lin_vel, cfg.lin_vel, cfg.ang_vel]))
        self.register_buffer("default_pose", _f64(controller.default_pose))
        self.gravity_start, self.gyro_start = _span("projected_gravity")[0], _span("robot_gyro")[0]
        self.q_start, self.qd_start = _span("joint_pos")[0], _span("joint_vel")[0]
        self.ticks = torch.zeros(0, dtype=torch.int64)
        self.phase = torch.zeros(0, dtype=torch.float64)
        self.net_actions = torch.zeros(0, 12, dtype=torch.float64)
        self.targets = torch.zeros(0, 12, dtype=torch.float64)

    @torch.jit.export
    def clear(self, starts: torch.Tensor) -> None:
        """JoystickController.reset for the rows that start an episode (sized anew for a new batch size)."""
        n = starts.shape[0]
        if self.ticks.shape[0] != n:
            self.ticks = torch.zeros(n, dtype=torch.int64)
            self.phase = torch.zeros(n, dtype=torch.float64)
            self.net_actions = torch.zeros(n, 12, dtype=torch.float64)
            self.targets = torch.zeros(n, 12, dtype=torch.float64)
        rows = starts.unsqueeze(1)
        self.ticks = torch.where(starts, torch.zeros_like(self.ticks), self.ticks)
        self.phase = torch.where(starts, torch.zeros_like(self.phase), self.phase)
        self.net_actions = torch.where(rows, torch.zeros_like(self.net_actions), self.net_actions)
        self.targets = torch.where(rows, self.default_pose.expand(n, 12), self.targets)

    @torch.jit.export
    def macro(self, frames: torch.Tensor, x: torch.Tensor, playing: torch.Tensor) -> torch.Tensor:
        """A macro frame's targets: the frame itself (the hub controller adds nothing; its clocks hold)."""
        return frames

    def forward(self, scaled: torch.Tensor, x: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """Targets (N, 12) after this step for the `active` rows: the network every `decimation` ticks."""
        q = x[:, self.q_start:self.q_start + 12].to(torch.float64)
        qd = x[:, self.qd_start:self.qd_start + 12].to(torch.float64)
        gait_on = torch.linalg.vector_norm(scaled, dim=1) >= self.gait_threshold
        run_net = active & (self.ticks % self.decimation == 0)
        if bool(run_net.any()):
            on = (gait_on & (self.gait_frequency > 1e-8)).to(torch.float64)
            angle = 2.0 * math.pi * self.phase
            net_obs = torch.cat([
                x[:, self.gravity_start:self.gravity_start + 3].to(torch.float64) * self.gravity,
                x[:, self.gyro_start:self.gyro_start + 3].to(torch.float64) * self.ang_vel,
                scaled * self.command_scale,
                (torch.cos(angle) * on).unsqueeze(1),
                (torch.sin(angle) * on).unsqueeze(1),
                (q - self.default_pose) * self.dof_pos,
                qd * self.dof_vel,
                self.net_actions,
            ], dim=1).to(torch.float32)
            out = self.net(net_obs).to(torch.float64).clamp(-self.clip_actions, self.clip_actions)
            self.net_actions = torch.where(run_net.unsqueeze(1), out, self.net_actions)
            self.targets = torch.where(run_net.unsqueeze(1), self.default_pose + self.action_scale * out,
                                       self.targets)
        self.ticks = torch.where(active, self.ticks + 1, self.ticks)
        advance = active & gait_on
        self.phase = torch.where(advance, torch.fmod(self.phase + self.phase_step, 1.0), self.phase)
        return self.targets


class CommandPolicyModule(nn.Module):
    """forward(obs89) -> torques12 for a `command` policy: envs.command.CommandAction in one module.

    The walker is the hub controller (HubWalker) or our walk engine (submission.walk_module.WalkEngineModule);
    `policy` a DeployedPolicy or any scriptable module mapping raw obs89 (N, 89) to commands in [-1, 1] (the
    scripted striker). State per row (cleared at each detected episode start): the held command, the
    walker's clocks and targets, and the macro's step (-1: not playing).
    """

    __constants__ = ["policy_every", "platform_units", "has_macro"]

    def __init__(self, policy: DeployedPolicy | nn.Module, controller: JoystickController | WalkEngine,
                 limits: np.ndarray, macro: MacroPlayer | None, *, policy_every: int, platform_units: bool) -> None:
        super().__init__()
        self.policy = ScriptPolicy(policy) if isinstance(policy, DeployedPolicy) else policy
        self.episodes = EpisodeStarts()
        self.walker = WalkEngineModule(controller) if isinstance(controller, WalkEngine) else HubWalker(controller)
        self.policy_every = int(policy_every)
        self.platform_units = bool(platform_units)
        self.register_buffer("limits", _f64(limits))
        self.register_buffer("kp", _f64(controller.kp))
        self.register_buffer("kd", _f64(controller.kd))
        low, high = controller.torque_low, controller.torque_high
        self.register_buffer("low", _f64(low))
        self.register_buffer("high", _f64(high))
        self.register_buffer("mid", _f64((high + low) / 2.0))
        self.register_buffer("half_range", _f64((high - low) / 2.0))
        self.has_macro = macro is not None
        self.trigger = MacroTrigger(macro.trigger if macro is not None else TriggerConfig())
        self.register_buffer("macro_targets", _f64(macro_step_targets(macro, controller)))
        self.obs_dim = OBS_DIM
        self.q_start, self.qd_start = _span("joint_pos")[0], _span("joint_vel")[0]
        self.held = torch.zeros(0, 3)
        self.calls = torch.zeros(0, dtype=torch.int64)
        self.macro_step = torch.zeros(0, dtype=torch.int64)

    @torch.jit.export
    def reset(self) -> None:
        """Forget all state: the next call starts new episodes in every row."""
        self.episodes.reset()

    def _clear(self, starts: torch.Tensor) -> None:
        """Zero the state of the rows that start an episode (sized anew when the batch size changed)."""
        n = starts.shape[0]
        if self.calls.shape[0] != n:
            self.held = torch.zeros(n, 3)
            self.calls = torch.zeros(n, dtype=torch.int64)
            self.macro_step = torch.zeros(n, dtype=torch.int64)
        self.calls = torch.where(starts, torch.zeros_like(self.calls), self.calls)
        self.macro_step = torch.where(starts, torch.full_like(self.macro_step, -1), self.macro_step)
        self.walker.clear(starts)

    def _pd(self, targets: torch.Tensor, q: torch.Tensor, qd: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.maximum(self.kp * (targets - q) - self.kd * qd, self.low), self.high)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        single = obs.dim() == 1
        x = obs.reshape(-1, self.obs_dim).to(torch.float32)
        self._clear(self.episodes(x))
        act_now = self.calls % self.policy_every == 0
        if bool(act_now.any()):
            self.held = torch.where(act_now.unsqueeze(1), self.policy(x).to(torch.float32), self.held)
        self.calls = self.calls + 1
        command = self.held.to(torch.float64).clamp(-1.0, 1.0)
        q = x[:, self.q_start:self.q_start + 12].to(torch.float64)
        qd = x[:, self.qd_start:self.qd_start + 12].to(torch.float64)
        if self.has_macro:
            fire = (self.macro_step < 0) & self.trigger(command, x)
            self.macro_step = torch.where(fire, torch.zeros_like(self.macro_step), self.macro_step)
        playing = self.macro_step >= 0
        targets = self.walker(command * self.limits, x, ~playing)
        if self.has_macro and bool(playing.any()):
            frame = self.walker.macro(self.macro_targets[self.macro_step.clamp_min(0)], x, playing)
            targets = torch.where(playing.unsqueeze(1), frame, targets)
            step = self.macro_step + 1
            step = torch.where(step >= self.macro_targets.shape[0], torch.full_like(step, -1), step)
            self.macro_step = torch.where(playing, step, self.macro_step)
        torques = self._pd(targets, q, qd)
        if self.platform_units:
            torques = (torques - self.mid) / self.half_range
        out = torques.to(torch.float32)
        return out[0] if single else out


def private_copy(net: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    """A frozen copy of a TorchScript network (a save/load round trip), so the process-wide cached
    controller that envs.controller shares between envs is left untouched."""
    buffer = io.BytesIO()
    torch.jit.save(net, buffer)
    buffer.seek(0)
    frozen = torch.jit.load(buffer, map_location="cpu").eval()
    for parameter in frozen.parameters():
        parameter.requires_grad_(False)
    return frozen


def macro_step_targets(macro: MacroPlayer | None, controller: JoystickController | WalkEngine) -> np.ndarray:
    """(K, 12) joint targets of the K env steps a macro plays, computed as the command wrapper does (a fresh
    MacroPlayer stepped through the whole clip), so frame timing is the wrapper's by construction."""
    if macro is None:
        return np.zeros((0, 12))
    player = MacroPlayer(macro.actions, macro.frequency_hz, env_dt=macro.env_dt, trigger=macro.trigger)
    player.start()
    targets = []
    while player.active:
        targets.append(controller.action_targets(player.next_action()))
    return np.stack(targets)


def command_options(settings: Mapping[str, Any]) -> CommandOptions:
    """The CommandOptions a command-mode run recorded in its metadata (`command`, a dataclasses.asdict)."""
    recorded = settings.get("command")
    if not isinstance(recorded, Mapping):
        raise ValueError("the run's metadata has no command-mode options (controller, limits, macro)")
    fields = dict(recorded)
    trigger = fields.get("macro_trigger")
    if isinstance(trigger, Mapping):  # JSON turned the pattern tuple into a list
        fields["macro_trigger"] = TriggerConfig(**{k: tuple(v) if k == "pattern" else v for k, v in trigger.items()})
    try:
        return CommandOptions(**fields)
    except TypeError as exc:
        raise ValueError(f"the run's command-mode options do not fit this version ({exc})") from None


def command_parts(options: CommandOptions) -> CommandAction:
    """The command wrapper of a fresh env built with `options` (its controller, limits and macro); the env's
    MuJoCo model gives the joint names and the step, which all three tasks share."""
    task = TASKS[0]
    env = gym.make(task.env_id)
    try:
        return command_wrapper(env, task, options)
    finally:
        env.close()


def torque_module(policy: DeployedPolicy, settings: Mapping[str, Any], action_low: np.ndarray,
                  action_high: np.ndarray, *, command: CommandOptions | None = None,
                  platform_units: bool = False) -> torch.jit.ScriptModule:
    """The scripted torque module of a deployed soccer policy.

    `settings` is a run's metadata (train.py): `action_mode`, `action_repeat`, `pd_scale` (default
    envs.wrappers.DEFAULT_PD_SCALE) and, in command mode, `command` (CommandOptions as a dict) unless
    `command` is given. `action_low`/`action_high` are the env's torque bounds (torque and pd modes; the command
    mode's controller reads them from the env it is built for). One-line ValueError for a mode this exporter
    cannot handle, a policy that does not fit, or a bad controller or macro file (envs.hub.HubUnavailable when
    a hub file cannot be fetched).
    """
    mode = settings.get("action_mode", "torque")
    if mode not in TORCHSCRIPT_MODES:
        raise ValueError(f"action mode {mode!r} has no TorchScript export; known: {', '.join(TORCHSCRIPT_MODES)}")
    obs_dim, act_dim = policy.normalizer.mean.shape[0], policy.action_scale.shape[0]
    expected = 3 if mode == "command" else 12
    if obs_dim != OBS_DIM or act_dim != expected:
        raise ValueError(f"the policy maps {obs_dim}-dim observations to {act_dim}-dim actions; a {mode} policy "
                         f"for the torque module maps the {OBS_DIM}-dim observation to {expected}")
    repeat = int(settings.get("action_repeat", 1))
    if repeat < 1:
        raise ValueError(f"action_repeat must be >= 1, got {repeat}")
    if mode != "command":
        module = JointPolicyModule(policy, mode, action_low, action_high,
                                   pd_scale=float(settings.get("pd_scale", DEFAULT_PD_SCALE)), policy_every=repeat,
                                   platform_units=platform_units)
    else:
        options = command if command is not None else command_options(settings)
        wrapper = command_parts(options)
        commands: DeployedPolicy | nn.Module = policy
        if settings.get(RESIDUAL_KEY) is not None:  # the policy corrects the striker's commands
            commands = ResidualStrikerModule(ScriptPolicy(policy), settings[RESIDUAL_KEY], repeat)
        module = CommandPolicyModule(commands, wrapper.controller, wrapper.limits, wrapper.macro,
                                     policy_every=repeat, platform_units=platform_units)
    return torch.jit.script(module.eval())


def module_bytes(module: torch.jit.ScriptModule) -> bytes:
    """What torch.jit.save writes for `module`."""
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    return buffer.getvalue()


def save_module(module: torch.jit.ScriptModule, path: Path) -> Path:
    """torch.jit.save into `path`, atomically (its folder created); returns the path."""
    data = module_bytes(module)
    atomic_write(Path(path), lambda handle: handle.write(data))
    return Path(path)


def torchscript_paths(save_dir: Path, kind: str) -> tuple[Path, Path]:
    """(torque module file, submission folder) of a model kind: final -> final_model.pt and
    submission_final_torchscript/ (beside final_model.zip and submission_final/)."""
    zip_name, folder_name = MODEL_FILES[kind]
    return Path(save_dir) / f"{Path(zip_name).stem}.pt", Path(save_dir) / f"{folder_name}_torchscript"


def write_torchscript(save_dir: Path, kind: str, policy: DeployedPolicy, metadata: Mapping[str, Any], *, algo: str,
                      action_low: np.ndarray, action_high: np.ndarray, timesteps: int, scores: Mapping[str, float],
                      command: CommandOptions | None = None) -> Path:
    """Write the TorchScript export of a soccer policy; returns the torque module's path.

        <stem>.pt                              forward(obs89) -> torques (N·m): for your own tools
        submission_<kind>_torchscript/model.pt    the same module with platform_units=True (the sai_rl
                                               PyTorch handler maps outputs from [-1, 1] onto the torque bounds)
        submission_<kind>_torchscript/preprocessor.py   the generated Preprocessor, without normalisation
        submission_<kind>_torchscript/meta.json, SUBMIT.md

    `metadata` is the run's (train.py); `command` overrides its recorded command-mode options.
    """
    if kind not in MODEL_FILES:
        raise ValueError(f"model kind must be one of {', '.join(MODEL_FILES)}, got {kind!r}")
    mode = metadata.get("action_mode", "torque")
    if mode == "command" and command is None:
        command = command_options(metadata)
    torques_path, folder = torchscript_paths(save_dir, kind)
    save_module(torque_module(policy, metadata, action_low, action_high, command=command), torques_path)
    data = module_bytes(torque_module(policy, metadata, action_low, action_high, command=command,
                                      platform_units=True))
    atomic_write(folder / "model.pt", lambda handle: handle.write(data))
    meta = {
        "format": 1, "kind": kind, "model": "model.pt", "model_sha256": hashlib.sha256(data).hexdigest(),
        "output": "torques divided onto [-1, 1]: (tau - mid) / half of the torque bounds",
        "torque_module": torques_path.name, "algo": algo, "action_mode": mode,
        "action_repeat": int(metadata.get("action_repeat", 1)), "timesteps": int(timesteps),
        "action_low": np.asarray(action_low, np.float32).tolist(),
        "action_high": np.asarray(action_high, np.float32).tolist(),
        "command": dataclasses.asdict(command) if command is not None else None,
        "evaluation": {k: float(v) for k, v in scores.items()}, "training_env": dict(metadata),
        "torch": torch.__version__,
    }
    for name, text in (("meta.json", json.dumps(meta, indent=2)),
                       ("preprocessor.py", torchscript_preprocessor_source()), ("SUBMIT.md", SUBMIT_TEXT)):
        atomic_write(folder / name, lambda handle, text=text: handle.write(text.encode("utf-8")))
    return torques_path


SUBMIT_TEXT = """# Submitting this TorchScript model

`model.pt` is a TorchScript module (`torch.jit.load`, no other package needed) that maps the 89-dim
observation of `preprocessor.py` to the 12 joint torques divided onto [-1, 1]; the sai_rl PyTorch handler
maps its output linearly onto the env's torque bounds, which gives the torques back. The observation
normaliser, the policy, its action decoding and (command mode) the walking controller and kick macro are
inside; `preprocessor.py` therefore does not normalise. `meta.json` records how it was trained.

The module keeps state per batch row (held actions, controller clock, macro) and detects episode starts
from the observation (first call or new batch size, a task change, the all-zero joint state of a reset, a
jump of the robot); see submission/torchscript.py. Call `reset()` where you know an episode starts.

```python
from sai_rl import SAIClient

sai = SAIClient(comp_id="<competition id>")
sai.benchmark(model="model.pt", preprocessor_class="preprocessor.py")
sai.submit(name="<submission name>", model="model.pt", preprocessor_class="preprocessor.py")
```

Not yet run through the real sai_rl client here: check it with `sai.benchmark` before submitting.
"""


TORCHSCRIPT_NOTE = (
    "# For a TorchScript torque module: the observation normaliser lives INSIDE the module, so this\n"
    "# Preprocessor passes the raw 89-dim observation on, unnormalised.\n"
)
_UNNORMALISED = "not normalised (the model was trained without an observation normaliser)"


def torchscript_preprocessor_source() -> str:
    """The generated Preprocessor (submission.preprocessor) for a TorchScript module: no normalisation,
    since the module normalises itself."""
    source = preprocessor_source(None)
    if _UNNORMALISED not in source:
        raise RuntimeError("submission.preprocessor changed its header; update torchscript_preprocessor_source")
    return TORCHSCRIPT_NOTE + source.replace(_UNNORMALISED, "not normalised: the TorchScript module normalises")


def write_striker_submission(save_dir: Path, *, walk_params: str | None = None) -> Path:
    """The scripted striker (skills/striker.py) over our walk engine as a submission folder:

        model.pt          forward(obs89) -> torques divided onto [-1, 1] (the sai_rl PyTorch handler's units)
        preprocessor.py   the generated Preprocessor (no normalisation: the striker reads the raw obs)
        meta.json, SUBMIT.md
    Returns the model's path. ValueError (one line) for a bad walk parameter file."""
    from skills.striker import StrikerModule, striker_command_options

    options = striker_command_options(walk_params)
    wrapper = command_parts(options)
    module = CommandPolicyModule(StrikerModule(), wrapper.controller, wrapper.limits, None, policy_every=1,
                                 platform_units=True)
    data = module_bytes(torch.jit.script(module.eval()))
    folder = Path(save_dir)
    atomic_write(folder / "model.pt", lambda handle: handle.write(data))
    meta = {"format": 1, "kind": "striker", "model": "model.pt", "model_sha256": hashlib.sha256(data).hexdigest(),
            "output": "torques divided onto [-1, 1]: (tau - mid) / half of the torque bounds",
            "policy": "scripted striker over the walk engine", "command": dataclasses.asdict(options),
            "walk_params": json.loads(Path(walk_params).read_text()) if walk_params else None,
            "torch": torch.__version__}
    for name, text in (("meta.json", json.dumps(meta, indent=2)),
                       ("preprocessor.py", torchscript_preprocessor_source()), ("SUBMIT.md", SUBMIT_TEXT)):
        atomic_write(folder / name, lambda handle, text=text: handle.write(text.encode("utf-8")))
    return folder / "model.pt"
