"""The scripted striker: a soccer behaviour over the walk engine that walks behind the ball and shoots.

It is a command policy: 89-dim observation -> walking command in [-1, 1]^3 (vx, vy, yaw rate as fractions of
STRIKER_LIMITS), for the command action mode with `--low-level-controller walk`. Per episode, from the
observation alone (world-frame vectors relative to the robot):
1. Heading. The observation has no yaw, so the striker keeps one: at the episode's first step the ball lies
   straight ahead of the robot in every task (sai_mujoco places it so), which gives the initial heading;
   afterwards it integrates the gyro's z rate (the trunk stays near upright, so it is the yaw rate).
2. Aim. Penalty kicks: a point on the goal line `aim_y` metres beside the goal centre (Obstacle too: a ball
   pushed at walking pace is still rolling goalward when the episode ends, which scores, and rarely reaches
   the defenders' line); KickToTarget: the target.
3. Approach. The shooting point lies `behind` metres behind the ball on the aim line. While the robot is not
   yet behind the ball it walks to a point beside it (`clearance` metres off the line, on its own side),
   facing it, so it does not push the ball; once behind, it faces the aim and steps forward and sideways to
   the shooting point. Heading errors below `heading_deadband` are left alone and large ones are turned on the
   spot: the walk engine turns by swinging the hip yaw, which costs it most of its forward speed.
4. Shot. At the shooting point, facing the aim, it walks through the ball at `shot_speed` on the aim line
   (correcting sideways drift and heading), and once the ball is `release` metres away it stands still; in
   KickToTarget it walks faster and, after each shot, goes behind the ball again and pushes it on (a dribble).
The decision logic is one functional TorchScript-able core, `striker_step(obs, state) -> (command, state)`:
the numpy policy for evaluation and recording (`StrikerPolicy`, state kept per episode) and the exported
torque module (`StrikerModule`, state kept per batch row) both call it, so the two cannot drift apart.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from envs.command import CommandOptions
from envs.episode_starts import EpisodeStarts
from envs.kick import KICK_SOURCE, load_kick_params
from envs.preprocess import OBS_DIM, OBS_SLICES
from envs.walk import COMMAND_LIMITS, WALK_DT

KICKS = False
"""Whether the striker kicks (the kick macro) or walks through the ball by default: the better of the two as
measured (docs/results.md, "Walk engine and striker")."""
STRIKER_LIMITS = tuple(float(v) for v in COMMAND_LIMITS[1])
"""(vx m/s, vy m/s, yaw rad/s) of a command of 1: the walk engine's top speeds."""
APPROACH, SHOOT, DONE = 0, 1, 2
"""Striker modes."""


@dataclass(frozen=True)
class StrikerConfig:
    """The striker's constants (metres, seconds, radians; gains per metre or per radian)."""

    behind: float = 0.32
    """Trunk-to-ball distance (m) of the shooting point."""
    clearance: float = 0.55
    """How far beside the ball (m) the robot walks while going around it."""
    face_radius: float = 0.45
    """Within this distance (m) of the waypoint the robot slows to `fine_speed`."""
    aim_y: float = 0.0
    """Penalty kicks: aim this far (m) from the goal centre along the goal line (the side is the robot's)."""
    shot_speed: float = 0.45
    """Forward command (m/s) of the walk-through shot (penalty kicks; KickToTarget has target_shot_speed)."""
    release: float = 0.9
    """Once the ball is this far (m) away in the shot, the robot stops."""
    position_gain: float = 1.5
    """Commanded speed (m/s) per metre of distance to the waypoint."""
    approach_speed: float = 0.45
    """Top forward speed (m/s) while walking to a waypoint further than `face_radius` (penalty kicks;
    KickToTarget has target_approach_speed)."""
    fine_speed: float = 0.15
    """Top forward / backward speed (m/s) within `face_radius` of the waypoint."""
    fine_side: float = 0.1
    """Top sideways speed (m/s)."""
    heading_gain: float = 2.0
    """Yaw-rate command (rad/s) per radian of heading error."""
    heading_deadband: float = 0.1
    """Heading errors below this (rad) are not corrected while walking forward: the walk engine turns by
    swinging the hip yaw, which costs most of the forward speed (measured in docs/walk_engine.md)."""
    turn_in_place: float = 0.35
    """Beyond this heading error (rad) the robot stops walking forward and turns on the spot."""
    lateral_gain: float = 1.0
    """Sideways command (m/s) per metre off the aim line during the shot (penalty kicks; KickToTarget has
    target_lateral_gain)."""
    shoot_tolerance: float = 0.1
    """Start the shot within this distance (m) of the aim line, behind the ball, ..."""
    heading_tolerance: float = 0.12
    """... and this heading error (rad)."""
    goalie_delay: float = 0.25
    """Goalie: seconds standing still at the episode's start, so the dribbled ball reaches the goal line while
    the keeper (a deterministic sinusoid across the mouth) is away from its middle (measured, docs/results.md)."""
    obstacle_delay: float = 1.5
    """Obstacle: the same, so the ball is still rolling goalward when the episode ends instead of meeting a
    defender or crossing the line beside the goal (both of which end it with a penalty)."""
    kick: bool = False
    """Kick with the kick macro (envs/kick.py) instead of walking through the ball: walk on the kick line with
    the ball `kick_y` beside it and send the macro's sentinel command when the ball is `kick_x` ahead."""
    kick_x: float = 0.45
    """Ball distance ahead of the trunk (m) at which the kick fires (the kick parameter file's ball_x) ..."""
    kick_y: float = -0.1
    """... and to its left (m; ball_y)."""
    kick_speed: float = 0.45
    """Forward speed (m/s) of the last `slow_distance` before the kick (the kick file's approach_speed)."""
    slow_distance: float = 0.8
    """How far before the kick spot (m) the robot slows to `kick_speed` on the kick line."""
    kick_tolerance: float = 0.05
    """The kick fires with the ball within this (m) sideways of its spot on the robot's line."""
    kick_hold: float = 0.1
    """Seconds the sentinel command is held (the macro starts at its first step; later steps play it)."""
    dribble: bool = True
    """KickToTarget: after a shot, go behind the ball again and push it on (a walk-through shot rolls the ball
    about a metre; the target lies metres away, and success is the ball passing within 0.4 m of it)."""
    target_shot_speed: float = 0.5
    """KickToTarget's shot speed (m/s): faster than the penalty kicks' (the ball must travel metres in the 10 s;
    measured in docs/results.md, where the penalty kicks fall at it)."""
    target_approach_speed: float = 0.5
    """KickToTarget's approach speed (m/s)."""
    target_lateral_gain: float = 0.5
    """KickToTarget's sideways correction in the shot (m/s per metre off the aim line): gentler at that speed."""


STATE_SIZE = 6
"""Per-episode state: heading (rad), mode, started (0/1), closest ball distance in the shot (m), mode timer (s),
episode clock (s)."""
SENTINEL = (1.0, -1.0, 1.0)
"""The command that fires the kick macro (envs.macros.TriggerConfig.pattern)."""


def initial_state(n: int) -> torch.Tensor:
    """The state of `n` episodes that have not started."""
    return torch.zeros(n, 6, dtype=torch.float64)  # STATE_SIZE (TorchScript needs the literal)


def _wrap(angle: torch.Tensor) -> torch.Tensor:
    return torch.atan2(torch.sin(angle), torch.cos(angle))


class StrikerCore(nn.Module):
    """`forward(obs (N, 89), state (N, STATE_SIZE)) -> (command (N, 3) in [-1, 1], new state)` (module docstring)."""

    __constants__ = ["behind", "clearance", "face_radius", "aim_y", "shot_speed", "release", "position_gain",
                     "approach_speed", "fine_speed", "fine_side", "heading_gain", "heading_deadband", "turn_in_place",
                     "lateral_gain", "shoot_tolerance", "heading_tolerance", "goalie_delay", "obstacle_delay", "kick",
                     "kick_x", "kick_y", "kick_speed", "slow_distance", "kick_tolerance", "kick_hold", "dribble",
                     "target_shot_speed", "target_approach_speed", "target_lateral_gain", "dt"]

    def __init__(self, config: StrikerConfig | None = None, dt: float = WALK_DT) -> None:
        super().__init__()
        c = config or StrikerConfig()
        for name in ("behind", "clearance", "face_radius", "aim_y", "shot_speed", "release", "position_gain",
                     "approach_speed", "fine_speed", "fine_side", "heading_gain", "heading_deadband", "turn_in_place",
                     "lateral_gain", "shoot_tolerance", "heading_tolerance", "goalie_delay", "obstacle_delay",
                     "kick_x", "kick_y", "kick_tolerance",
                     "kick_speed", "slow_distance", "kick_hold", "target_shot_speed", "target_approach_speed",
                     "target_lateral_gain"):
            setattr(self, name, float(getattr(c, name)))
        self.kick = bool(c.kick)
        self.dribble = bool(c.dribble)
        self.register_buffer("sentinel", torch.tensor(SENTINEL, dtype=torch.float64))
        self.dt = float(dt)
        self.register_buffer("limits", torch.tensor(STRIKER_LIMITS, dtype=torch.float64))
        self.ball = OBS_SLICES["ball_xpos_rel_robot"].start
        self.goal = OBS_SLICES["goal_team_0_rel_robot"].start
        self.target = OBS_SLICES["target_xpos_rel_robot"].start
        self.gyro = OBS_SLICES["robot_gyro"].start
        self.task = OBS_SLICES["task_one_hot"].start

    def forward(self, obs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = obs.to(torch.float64)
        ball = x[:, self.ball:self.ball + 2]
        started = state[:, 2] > 0.5
        heading = torch.where(started, state[:, 0] + x[:, self.gyro + 2] * self.dt,
                              torch.atan2(ball[:, 1], ball[:, 0]))
        heading = _wrap(heading)
        mode = state[:, 1]
        task = torch.argmax(x[:, self.task:self.task + 3], dim=1)
        to_target = task == 2  # KickToTarget: its own speeds, and the dribble
        shot_speed = torch.where(to_target, torch.full_like(heading, self.target_shot_speed),
                                 torch.full_like(heading, self.shot_speed))
        approach_speed = torch.where(to_target, torch.full_like(heading, self.target_approach_speed),
                                     torch.full_like(heading, self.approach_speed))
        lateral_gain = torch.where(to_target, torch.full_like(heading, self.target_lateral_gain),
                                   torch.full_like(heading, self.lateral_gain))
        goal = x[:, self.goal:self.goal + 2]
        side = torch.where(ball[:, 1] - goal[:, 1] >= 0.0, torch.ones_like(goal[:, 1]), -torch.ones_like(goal[:, 1]))
        goalie_aim = torch.stack([goal[:, 0], goal[:, 1] + side * self.aim_y], dim=1)
        # penalty kicks: the goal (a slow ball rarely reaches the Obstacle's line, so its open slot is not the aim)
        aim = torch.where((task <= 1).unsqueeze(1), goalie_aim, x[:, self.target:self.target + 2])
        line = aim - ball
        u = line / torch.linalg.vector_norm(line, dim=1, keepdim=True).clamp_min(1e-6)
        normal = torch.stack([-u[:, 1], u[:, 0]], dim=1)
        # the robot's coordinates relative to the ball: along the aim line and across it
        along = -(ball * u).sum(dim=1)
        across = -(ball * normal).sum(dim=1)
        # kick: aim at a point beyond the kick spot on the kick line, so the robot walks on through it
        kick_point = ball - (self.kick_x - self.slow_distance) * u - self.kick_y * normal
        shoot_point = kick_point if self.kick else ball - self.behind * u
        beside = ball - 0.5 * self.behind * u + torch.where(across >= 0.0, 1.0, -1.0).unsqueeze(1) * \
            self.clearance * normal
        is_behind = along < -0.5 * self.behind
        waypoint = torch.where(is_behind.unsqueeze(1), shoot_point, beside)
        distance = torch.linalg.vector_norm(waypoint, dim=1)
        aim_heading = torch.atan2(u[:, 1], u[:, 0])
        walk_heading = torch.atan2(waypoint[:, 1], waypoint[:, 0])
        # behind the ball: face the aim and crab to the waypoint (forward + sideways steps walk well; yaw commands
        # cost the walk most of its forward speed); otherwise face the waypoint
        error = _wrap(torch.where(is_behind, aim_heading, walk_heading) - heading)
        cos_h, sin_h = torch.cos(heading), torch.sin(heading)
        body_x = cos_h * waypoint[:, 0] + sin_h * waypoint[:, 1]
        body_y = -sin_h * waypoint[:, 0] + cos_h * waypoint[:, 1]
        walking = (error.abs() < self.turn_in_place).to(heading.dtype)
        top = torch.where(distance < self.face_radius, torch.full_like(distance, self.fine_speed), approach_speed)
        vx = torch.minimum(torch.maximum(self.position_gain * body_x, -top), top) * walking
        vy = (self.position_gain * body_y).clamp(-self.fine_side, self.fine_side) * walking
        turn = torch.where(error.abs() < self.heading_deadband, torch.zeros_like(error), self.heading_gain * error)
        approach = torch.stack([vx, vy, turn], dim=1)
        shot_error = _wrap(aim_heading - heading)
        # on the aim line behind the ball and facing the aim: shoot from wherever the robot is (no stop first)
        ready = is_behind & (across.abs() < self.shoot_tolerance) & (shot_error.abs() < self.heading_tolerance)
        # sideways drift off the aim line, in the body frame (the aim line runs along the heading there)
        shot_turn = torch.where(shot_error.abs() < self.heading_deadband, torch.zeros_like(shot_error),
                                self.heading_gain * shot_error)
        shot = torch.stack([shot_speed, -lateral_gain * across, shot_turn], dim=1)
        ball_distance = torch.linalg.vector_norm(ball, dim=1)
        closest = torch.where(started & (mode == 1.0), torch.minimum(state[:, 3], ball_distance), ball_distance)
        # the shot is over once the ball, having been at the robot's feet, is `release` metres away
        ball_far = (closest < self.behind + 0.15) & (ball_distance > self.release)
        # modes APPROACH 0 -> SHOOT 1 -> DONE 2 (TorchScript needs the literals)
        mode = torch.where((mode == 0.0) & ready, torch.full_like(mode, 1.0), mode)
        mode = torch.where((mode == 1.0) & ball_far, torch.full_like(mode, 2.0), mode)
        if self.dribble:  # KickToTarget: a finished shot starts the next approach
            mode = torch.where((mode == 2.0) & to_target, torch.zeros_like(mode), mode)
        command = torch.where((mode == 1.0).unsqueeze(1), shot, approach)
        command = torch.where((mode == 2.0).unsqueeze(1), torch.zeros_like(command), command)
        command = (command / self.limits).clamp(-1.0, 1.0)
        timer = torch.where(started, state[:, 4] + self.dt, torch.zeros_like(heading))
        if self.kick:
            # modes APPROACH 0 -> KICK 3 (sentinel held `kick_hold` s) -> DONE 2; the kick fires from the walk
            ball_fwd = cos_h * ball[:, 0] + sin_h * ball[:, 1]
            ball_left = -sin_h * ball[:, 0] + cos_h * ball[:, 1]
            aligned = is_behind & (shot_error.abs() < self.heading_tolerance)
            sideways_ok = (ball_left - self.kick_y).abs() < self.kick_tolerance
            mode = state[:, 1]
            fire = (mode == 0.0) & aligned & sideways_ok & (ball_fwd < self.kick_x)
            stop = (mode == 3.0) & (timer >= self.kick_hold)
            mode = torch.where(fire, torch.full_like(mode, 3.0), mode)
            mode = torch.where(stop, torch.full_like(mode, 2.0), mode)
            timer = torch.where(fire | stop, torch.zeros_like(timer), timer)
            # behind the ball: walk the kick line (the ball `kick_y` beside it), slowing to the kick's approach speed
            # over the last `slow_distance`; small heading errors are left alone, as in the approach
            line_speed = torch.where(ball_fwd > self.kick_x + self.slow_distance,
                                     torch.full_like(heading, self.approach_speed),
                                     torch.full_like(heading, self.kick_speed))
            line_side = (self.lateral_gain * (ball_left - self.kick_y)).clamp(-self.fine_side, self.fine_side)
            kick_walk = torch.stack([line_speed, line_side, turn], dim=1)
            command = torch.where(is_behind.unsqueeze(1), kick_walk, approach)
            command = torch.where((mode == 0.0).unsqueeze(1), command, torch.zeros_like(command))
            command = (command / self.limits).clamp(-1.0, 1.0)
            command = torch.where((mode == 3.0).unsqueeze(1), self.sentinel.expand_as(command), command)
        clock = torch.where(started, state[:, 5] + self.dt, torch.zeros_like(heading))
        obstacle_delay = torch.where(task == 1, torch.full_like(clock, self.obstacle_delay), torch.zeros_like(clock))
        delay = torch.where(task == 0, torch.full_like(clock, self.goalie_delay), obstacle_delay)
        command = torch.where((clock < delay).unsqueeze(1), torch.zeros_like(command), command)
        new_state = torch.stack([heading, mode, torch.ones_like(heading), closest, timer, clock], dim=1)
        return command, new_state


class StrikerModule(nn.Module):
    """The striker for an exported torque module: obs89 (N, 89) -> commands (N, 3), state kept per batch row and
    cleared at every detected episode start (envs.episode_starts); the policy of a CommandPolicyModule. `dt`:
    the time between two calls (the physics step times the module's action repeat)."""

    def __init__(self, config: StrikerConfig | None = None, dt: float = WALK_DT) -> None:
        super().__init__()
        self.core = StrikerCore(config, dt=dt)
        self.episodes = EpisodeStarts()
        self.state = initial_state(0)

    @torch.jit.export
    def reset(self) -> None:
        self.episodes.reset()

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        starts = self.episodes(obs)
        if self.state.shape[0] != obs.shape[0]:
            self.state = initial_state(obs.shape[0])
        self.state = torch.where(starts.unsqueeze(1), torch.zeros_like(self.state), self.state)
        command, self.state = self.core(obs, self.state)
        return command.to(torch.float32)


@functools.lru_cache(maxsize=8)
def scripted_core(config: StrikerConfig, action_repeat: int) -> torch.jit.ScriptModule:
    """The scripted StrikerCore of one decision interval (its heading integrates the gyro over `action_repeat`
    physics steps), compiled once per process: the core keeps no state, so every env and policy shares it."""
    if isinstance(action_repeat, bool) or not isinstance(action_repeat, int) or action_repeat < 1:
        raise ValueError(f"action_repeat must be an integer >= 1, got {action_repeat!r}")
    return torch.jit.script(StrikerCore(config, dt=action_repeat * WALK_DT).eval())


class StrikerPolicy:
    """The striker as a numpy policy of the evaluation harness: act(obs (N, 89), episodes) -> commands (N, 3),
    its state kept per episode index (the harness's lock-step batches change their rows as episodes end)."""

    def __init__(self, config: StrikerConfig | None = None, action_repeat: int = 1) -> None:
        self.core = scripted_core(config or StrikerConfig(), action_repeat)
        self.states: dict[int, torch.Tensor] = {}

    def reset(self) -> None:
        """Forget every episode (the harness calls it before each task's episodes)."""
        self.states.clear()

    def act(self, obs: np.ndarray, episodes: Sequence[int]) -> np.ndarray:
        rows = [self.states.get(e, initial_state(1)[0]) for e in episodes]
        with torch.inference_mode():
            command, state = self.core(torch.as_tensor(np.asarray(obs, np.float32)).reshape(-1, OBS_DIM),
                                       torch.stack(rows))
        for i, e in enumerate(episodes):
            self.states[e] = state[i].clone()
        return command.numpy().astype(np.float32)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """One episode per row, in row order (a caller that steps the same rows every call)."""
        return self.act(obs, list(range(np.atleast_2d(obs).shape[0])))


def kick_source(kick_params: str | None) -> str:
    """The macro source of our kick: the shipped parameter file, or `kick_params`."""
    return KICK_SOURCE if kick_params is None else f"{KICK_SOURCE}:{kick_params}"


def striker_config(kick: bool | None = None, kick_params: str | None = None) -> StrikerConfig:
    """The striker's constants; with `kick` (default KICKS), the kick spot from the kick parameter file
    (ValueError if bad)."""
    if not (KICKS if kick is None else kick):
        return StrikerConfig()
    params, _ = load_kick_params(kick_params)
    return StrikerConfig(kick=True, kick_x=params.ball_x, kick_y=params.ball_y, kick_speed=params.approach_speed)


def striker_command_options(walk_params: str | None = None, kick: bool | None = None,
                            kick_params: str | None = None) -> CommandOptions:
    """The command mode the striker plays: our walk engine at its top speeds, with our kick as its macro."""
    vx, vy, yaw = STRIKER_LIMITS
    return CommandOptions(controller="walk", max_vx=vx, max_vy=vy, max_yaw=yaw, walk_params=walk_params,
                          macro=kick_source(kick_params) if (KICKS if kick is None else kick) else None)


def striker_settings(walk_params: str | None = None, kick: bool | None = None, kick_params: str | None = None) -> dict:
    """Harness / recorder settings of the striker: command mode over the walk engine, one decision per step."""
    return {"action_mode": "command", "action_repeat": 1,
            "command": striker_command_options(walk_params, kick, kick_params)}
