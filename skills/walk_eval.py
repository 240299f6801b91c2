"""Walk episodes on the fast twin: run the walk engine on one command and measure what it achieved.

The robot starts as the task resets it; the ball is moved 4 m to the robot's left first, so a long forward
walk measures the walk, not a collision. The engine runs at its own rate (targets every `decimation` env
steps), the PD law every env step inside the twin's fused loop (envs/fastsim.py step_pd), which equals the
engine's own `step` called every env step. Measured, in the robot's initial heading frame:
forward / sideways speed and yaw rate over the part of the episode after `settle` seconds, the time of a
fall (the episode's termination), and the mean squared trunk tilt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from envs.fastsim import FastSoccerEnv, make_fast_env
from envs.preprocess import projected_gravity
from envs.walk import WalkEngine, WalkParams
from envs.wrappers import T1_KD, T1_KP

SETTLE = 2.0
"""Seconds excluded from the speed measurement (the start from standing and the command's ramp)."""
BALL_ASIDE = 4.0
"""The ball is moved this far (m) to the robot's left before a walk episode."""


@dataclass(frozen=True)
class WalkResult:
    """What one walk episode achieved."""

    command: tuple[float, float, float]
    seconds: float
    """Simulated time until the end or the fall (s)."""
    fell: bool
    vx: float
    """Mean forward speed (m/s) after the settle time, in the initial heading frame."""
    vy: float
    """Mean leftward speed (m/s) after the settle time."""
    yaw_rate: float
    """Mean yaw rate (rad/s) after the settle time."""
    tilt: float
    """Mean squared trunk tilt (rad^2) over the episode."""


def heading(quat_wxyz: np.ndarray) -> float:
    """Yaw (rad) of a wxyz quaternion."""
    w, x, y, z = (float(v) for v in quat_wxyz)
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def _root_qpos(env: FastSoccerEnv) -> int:
    """qpos address of the robot's free joint (x, y, z, then the wxyz quaternion)."""
    import mujoco

    name = f"{env.official.robots[0].name_prefix}root"
    return int(env.model.jnt_qposadr[mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_JOINT, name)])


def _trunk_pose(env: FastSoccerEnv, root: int) -> tuple[np.ndarray, float]:
    """(trunk IMU x, y in the world, trunk yaw) of the twin's current state."""
    return env.data.site_xpos[env._robot_site][:2].copy(), heading(env.data.qpos[root + 3:root + 7])


def move_ball_aside(env: FastSoccerEnv) -> None:
    """Put the ball BALL_ASIDE metres beside the robot (at rest; the side nearer the field's centre line, so it
    stays on the field) and recompute the kinematics."""
    import mujoco

    model, data = env.model, env.data
    joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "env:ball")
    qadr, dadr = model.jnt_qposadr[joint], model.jnt_dofadr[joint]
    xy, yaw = _trunk_pose(env, _root_qpos(env))
    left = np.array([-math.sin(yaw), math.cos(yaw)])
    spots = [xy + BALL_ASIDE * left, xy - BALL_ASIDE * left]
    data.qpos[qadr:qadr + 2] = min(spots, key=lambda p: float(np.max(np.abs(p) / np.array([10.0, 6.0]))))
    data.qvel[dadr:dadr + 6] = 0.0
    mujoco.mj_forward(model, data)


def walk_episode(params: WalkParams, command: tuple[float, float, float], *, env: FastSoccerEnv | None = None,
                 task: str = "goalie_penalty_kick", seed: int = 0, seconds: float = 10.0,
                 decimation: int = 10, stop_at: float | None = None, ball_aside: bool = True) -> WalkResult:
    """One episode of the engine on a constant `command` (module docstring); with `stop_at` the command drops to
    zero at that time (a stop from walking), and the speeds are measured between the settle time and it; with
    `ball_aside` False the ball stays where the task put it (a walk into the ball: dribbling)."""
    own = env is None
    env = make_fast_env(task) if own else env
    try:
        _, info = env.reset(seed=seed)
        if ball_aside:
            move_ball_aside(env)
        engine = WalkEngine(params, decimation=decimation)
        low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
        ticks = int(round(seconds / engine.tick))
        settle_tick = int(round(SETTLE / engine.tick))
        root = _root_qpos(env)
        start_xy, start_yaw = _trunk_pose(env, root)
        gravity = projected_gravity(env.data.sensordata[env._quat_idx])
        gyro = info["robot_gyro"]
        mark_xy, mark_yaw, unwrapped_yaw, previous_yaw = start_xy, 0.0, 0.0, start_yaw
        tilt, fell, done = 0.0, False, 0
        cmd = np.asarray(command, np.float64)
        stop_tick = ticks if stop_at is None else int(round(stop_at / engine.tick))
        end_xy = end_yaw = None
        for tick in range(ticks):
            if tick == stop_tick:
                cmd = np.zeros(3)
                end_xy, end_yaw = _trunk_pose(env, root)[0], unwrapped_yaw
            targets = engine.update(cmd, gravity, gyro)
            _, _, _, truncated, info = env.step_pd(targets, decimation, low, high, T1_KP, T1_KD, through=True)
            gravity, gyro = projected_gravity(info["robot_quat"]), info["robot_gyro"]
            tilt += float(gravity[0] ** 2 + gravity[1] ** 2)
            xy, yaw = _trunk_pose(env, root)
            unwrapped_yaw += math.remainder(yaw - previous_yaw, 2 * math.pi)
            previous_yaw = yaw
            done = tick + 1
            if done == settle_tick:
                mark_xy, mark_yaw = xy, unwrapped_yaw
            # only a fall or the time limit ends a walk: the task's other endings (the KickToTarget ball on
            # the target, out of the field) say nothing about walking, and the twin steps on past them
            if not (env._fall_height < env.data.site_xpos[env._robot_site][2]):
                fell = True
                break
            if truncated:
                break
        measured = (max(min(done, stop_tick) - settle_tick, 0)) * engine.tick
        if end_xy is not None:
            xy, unwrapped_yaw = end_xy, end_yaw
        if measured > 0:
            delta = xy - mark_xy
            c, s = math.cos(start_yaw), math.sin(start_yaw)
            vx = (c * delta[0] + s * delta[1]) / measured
            vy = (-s * delta[0] + c * delta[1]) / measured
            yaw_rate = (unwrapped_yaw - mark_yaw) / measured
        else:
            vx = vy = yaw_rate = 0.0
        return WalkResult(tuple(float(v) for v in command), done * engine.tick, fell, vx, vy, yaw_rate,
                          tilt / max(done, 1))
    finally:
        if own:
            env.close()
