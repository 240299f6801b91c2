"""Our walk engine: a walking command (vx, vy, yaw rate) -> joint torques for the Lower T1, no learning.

It stands beside the hub's walking controller (envs/controller.py) with the same interface: `reset()` at an
episode start, then `step(command, obs, info)` every env step (2 ms) returns the 12 torques. Every
`decimation` steps (10: 50 Hz, the hub controller's rate) it computes joint targets; at every step the PD
law with the T1 gains, clip(Kp (target - q) - Kd qd, torque bounds), turns them into torques.

The gait (docs/walk_engine.md has the figures):
1. A phase oscillator at `frequency` Hz; the left leg swings in the first half of the cycle, the right leg
   in the second. The gait amplitude ramps from 0 (standing) to 1 over `ramp_time` when a command starts and
   back to 0 when it stops, so a walk starts and ends smoothly from the standing pose; the command itself
   is rate-limited.
2. Each foot follows a trajectory relative to its hip in the trunk frame: forward x = -stride/2 cos(2 pi
   phase) (forward in the swing half, backward in stance), with stride = step_gain * vx / (2 frequency)
   (the distance the trunk covers per step); the same for the sideways command; a lift of `lift` metres
   in the swing half; a lateral sway of the trunk over the stance foot; a hip-yaw swing for turning.
3. Planar inverse kinematics of the T1 leg (thigh 0.2363 m with its 0.014 m knee offset, shank 0.28 m, read
   from the MuJoCo model) turn each foot position into hip pitch, knee and ankle pitch (the foot kept
   parallel to the trunk); hip roll and ankle roll tilt the leg sideways with the foot kept flat.
4. Balance feedback from the IMU, added to the targets: trunk pitch (from the projected gravity) and pitch
   rate (gyro y) into the ankle and hip pitch, trunk roll and roll rate (gyro x) into the ankle and hip roll;
   and foot placement: the swing foot steps further in the direction the trunk leans or rotates.
With the amplitude at 0 the engine is the default pose with ankle-pitch feedback: the stand controller
(bc/stand.py), which stands for the whole episode.

Commands are clipped to COMMAND_LIMITS (never an error mid-episode). The parameters live in one shipped
file, envs/walk_params.json, written by the CMA-ES tuner (skills/tune_walk.py) with the command that made it;
`load_walk_params` refuses a file with a missing or unknown key or a non-finite value. The TorchScript twin
for exported torque modules is `WalkEngineModule` in submission/walk_module.py.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.paramfile import check_finite_fields, load_param_file
from envs.preprocess import projected_gravity
from envs.wrappers import T1_DEFAULT_POSE, T1_KD, T1_KP, T1_TORQUE_LIMIT

N_JOINTS = 12
HIP_PITCH, HIP_ROLL, HIP_YAW, KNEE, ANKLE_PITCH, ANKLE_ROLL = range(6)
"""Joint offsets within one leg; the right leg's joints are these + 6."""
THIGH = (-0.014, -0.2359)
"""Hip-pitch joint -> knee (x, z) in metres with all joints at 0 (T1 model: hip roll 0.02 + hip yaw 0.0819 +
knee 0.134 below the hip pitch axis, the knee 0.014 m behind it)."""
SHANK = 0.28
"""Knee -> ankle pitch axis, straight down (m)."""
COMMAND_LIMITS = np.array([[-0.3, -0.2, -0.8], [0.6, 0.2, 0.8]])
"""(low, high) of (vx m/s, vy m/s, yaw rate rad/s) the engine accepts; commands are clipped to them."""
DEFAULT_PARAMS_FILE = Path(__file__).with_name("walk_params.json")
WALK_DT = 0.002
"""The env step (s) the engine is clocked by (sai_mujoco's 500 Hz)."""
DEFAULT_DECIMATION = 10
"""Env steps per target update (50 Hz, as the hub controller)."""
WALK_ACTION_SCALE = 1.0
"""Joint-target offset (rad) per unit action of a kick macro played over the walk engine (the hub's scale)."""
WALK_CLIP_ACTIONS = 10.0
"""Macro actions are clipped to +-this (wide: a mocap clip's joint offsets stay as recorded)."""

_L1 = math.hypot(*THIGH)
_BETA = math.atan2(-THIGH[0], -THIGH[1])
"""Angle of the thigh vector behind straight down: the knee angle of a straight leg."""


@dataclass(frozen=True, kw_only=True)
class WalkParams:
    """The walk engine's parameters (units in each docstring); the tuner searches `TUNED` of them."""

    frequency: float = 1.6
    """Gait cycles per second (Hz); each leg swings once per cycle."""
    step_gain: float = 1.0
    """Stride per (command / (2 frequency)): 1 covers the commanded speed with no slip."""
    side_gain: float = 1.0
    """The same for the sideways command."""
    turn_gain: float = 0.6
    """Hip-yaw swing (rad) per (yaw-rate command / frequency)."""
    lift: float = 0.035
    """Foot lift at mid-swing (m)."""
    lift_per_speed: float = 0.0
    """Extra lift (m) per m/s of commanded speed."""
    sway: float = 0.02
    """Lateral trunk sway over the stance foot (m) at full amplitude."""
    sway_phase: float = 0.0
    """Phase lead of the sway relative to the gait (cycles)."""
    height: float = 0.0
    """Hips lowered by this much (m) from the default pose's hip height while walking."""
    x_offset: float = 0.0
    """Feet placed this far forward (m) from the default pose's feet while walking."""
    width: float = 0.0
    """Feet placed this much further apart (m, each side) while walking."""
    trunk_pitch: float = 0.0
    """Forward trunk lean (rad) while walking, at full amplitude (the hips flex by it; the feet stay level)."""
    pitch_per_vx: float = 0.0
    """Extra forward lean (rad) per m/s of forward command."""
    ankle_offset: float = -0.05
    """Ankle pitch (rad) beyond keeping the foot parallel to the trunk (the default pose's -0.05)."""
    ankle_pitch_p: float = 2.0
    """Ankle pitch target per rad of trunk pitch (the stand controller's 2.0)."""
    ankle_pitch_d: float = 0.2
    """Ankle pitch target per rad/s of pitch rate (the stand controller's 0.2)."""
    hip_pitch_p: float = 0.0
    """Hip pitch target per rad of trunk pitch."""
    ankle_roll_p: float = 0.0
    """Ankle roll target per rad of trunk roll."""
    ankle_roll_d: float = 0.0
    """Ankle roll target per rad/s of roll rate."""
    hip_roll_p: float = 0.0
    """Hip roll target per rad of trunk roll."""
    place_pitch: float = 0.0
    """Foot placement: the swing foot lands further forward by this (m) per rad of trunk pitch."""
    place_pitch_d: float = 0.0
    """... and by this (m) per rad/s of pitch rate."""
    place_roll: float = 0.0
    """The swing foot lands further left by this (m) per rad of trunk roll (to the left)."""
    place_roll_d: float = 0.0
    """... and by this (m) per rad/s of roll rate."""
    ramp_time: float = 0.6
    """Seconds for the gait amplitude to go from 0 (standing) to 1 and back."""
    accel: float = 1.0
    """Largest change of the commanded speed per second (m/s^2; the yaw rate uses the same number in rad/s^2)."""
    stop_threshold: float = 0.02
    """Commands with a smaller norm (m/s and rad/s mixed) mean standing: the gait amplitude ramps down."""

    def __post_init__(self) -> None:
        check_finite_fields(self, "walk")
        for name in ("frequency", "ramp_time", "accel"):
            if getattr(self, name) <= 0:
                raise ValueError(f"walk parameter {name} must be > 0, got {getattr(self, name)}")
        if self.lift < 0 or self.stop_threshold < 0:
            raise ValueError("walk parameters lift and stop_threshold must be >= 0")

    def replace(self, **changes: float) -> WalkParams:
        return dataclasses.replace(self, **changes)


PARAM_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(WalkParams))


def load_walk_params(path: str | Path | None = None) -> tuple[WalkParams, dict[str, Any]]:
    """(parameters, the file's other sections) of a walk parameter file (JSON: {"params": {...}, ...}).

    None reads the shipped default. A missing or unknown key or a non-finite value is a one-line ValueError
    naming the file; the file is data, never code."""
    return load_param_file(DEFAULT_PARAMS_FILE if path is None else Path(path), WalkParams, "walk")


def leg_ik(x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hip pitch, knee) placing the ankle at (x, z) (m, trunk frame, relative to the hip pitch axis; z < 0).

    A target beyond reach is pulled in to a straight leg. Inverse of `leg_fk`."""
    r = np.minimum(np.hypot(x, z), _L1 + SHANK - 1e-9)
    cos_knee = (r * r - _L1 * _L1 - SHANK * SHANK) / (2 * _L1 * SHANK)
    knee = _BETA + np.arccos(np.clip(cos_knee, -1.0, 1.0))
    # the ankle as seen from the hip before the hip rotates: thigh + R_y(knee) shank
    qx = THIGH[0] - SHANK * np.sin(knee)
    qz = THIGH[1] - SHANK * np.cos(knee)
    hip = np.arctan2(qx, -qz) - np.arctan2(x, -z)
    return hip, knee


def leg_fk(hip: np.ndarray, knee: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ankle (x, z) relative to the hip pitch axis for hip pitch and knee angles (rotations about +y)."""
    def rot(angle, px, pz):
        return px * np.cos(angle) + pz * np.sin(angle), -px * np.sin(angle) + pz * np.cos(angle)

    tx, tz = rot(hip, *THIGH)
    sx, sz = rot(hip + knee, 0.0, -SHANK)
    return tx + sx, tz + sz


_DEFAULT_ANKLE = leg_fk(T1_DEFAULT_POSE[HIP_PITCH], T1_DEFAULT_POSE[KNEE])
"""The default pose's ankle position (x, z) relative to the hip pitch axis."""
_LEG_LENGTH = -_DEFAULT_ANKLE[1]


def trunk_attitude(gravity: np.ndarray) -> tuple[float, float]:
    """(pitch, roll) in rad from the projected gravity (body frame): pitch > 0 leans forward (as bc/stand),
    roll > 0 leans to the robot's left."""
    pitch = math.asin(min(1.0, max(-1.0, float(gravity[0]))))
    roll = math.asin(min(1.0, max(-1.0, -float(gravity[1]))))
    return pitch, roll


def observed_gravity(info: Mapping[str, Any]) -> np.ndarray:
    """The projected gravity as the 89-dim observation carries it (float32-rounded), so the engine in the env and
    its TorchScript twin, which reads the observation, see the same numbers."""
    return projected_gravity(info["robot_quat"]).astype(np.float32).astype(np.float64)


class WalkEngine:
    """Command -> torques, one env step at a time (module docstring). Numpy; the state is per episode."""

    def __init__(self, params: WalkParams | None = None, *, torque_low: np.ndarray | None = None,
                 torque_high: np.ndarray | None = None, decimation: int = DEFAULT_DECIMATION,
                 dt: float = WALK_DT) -> None:
        if isinstance(decimation, bool) or not isinstance(decimation, int) or decimation < 1:
            raise ValueError(f"decimation must be an integer >= 1, got {decimation!r}")
        self.params = params if params is not None else load_walk_params()[0]
        self.decimation = decimation
        self.dt = float(dt)
        self.tick = decimation * self.dt
        """Seconds between target updates."""
        self.torque_low = -T1_TORQUE_LIMIT if torque_low is None else np.asarray(torque_low, np.float64)
        self.torque_high = T1_TORQUE_LIMIT if torque_high is None else np.asarray(torque_high, np.float64)
        self.kp, self.kd = T1_KP, T1_KD
        self.default_pose = T1_DEFAULT_POSE
        self.reset()

    def reset(self) -> None:
        """Forget the episode: standing, phase 0, no command, default targets."""
        self.phase = 0.0
        """Gait phase in [0, 1)."""
        self.amplitude = 0.0
        """Gait amplitude in [0, 1] (0: standing)."""
        self.command = np.zeros(3)
        """The rate-limited command being walked (vx, vy, yaw rate)."""
        self.it = 0
        """Env steps since reset; targets are recomputed when it % decimation == 0."""
        self.targets = self.default_pose.copy()
        self._macro_feedback = np.zeros(N_JOINTS)

    def update(self, command: np.ndarray, gravity: np.ndarray, gyro: np.ndarray) -> np.ndarray:
        """One control tick: advance the gait by `tick` seconds and return the 12 joint targets (rad)."""
        p = self.params
        wanted = np.clip(np.asarray(command, np.float64), COMMAND_LIMITS[0], COMMAND_LIMITS[1])
        step = p.accel * self.tick
        self.command = self.command + np.clip(wanted - self.command, -step, step)
        moving = math.hypot(*wanted) >= p.stop_threshold
        ramp = self.tick / p.ramp_time
        self.amplitude = min(1.0, self.amplitude + ramp) if moving else max(0.0, self.amplitude - ramp)
        if self.amplitude > 0.0:
            self.phase = math.fmod(self.phase + p.frequency * self.tick, 1.0)
        else:
            self.phase = 0.0
        pitch, roll = trunk_attitude(gravity)
        placement = (p.place_pitch * pitch + p.place_pitch_d * float(gyro[1]),
                     p.place_roll * roll + p.place_roll_d * float(gyro[0]))
        self.targets = self.gait_targets(self.phase, self.amplitude, self.command, placement)
        self.targets += self.feedback(gravity, gyro)
        return self.targets

    def gait_targets(self, phase: float, amplitude: float, command: np.ndarray,
                     placement: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """Joint targets of the gait at `phase` with `amplitude` for `command`; `placement` (x, y in m) moves the
        swing foot (weighted by its lift profile) for the foot-placement feedback."""
        p = self.params
        a = amplitude
        vx, vy, wz = (float(c) for c in command)
        speed = math.hypot(vx, vy)
        stride_x = p.step_gain * vx / (2 * p.frequency)
        stride_y = p.side_gain * vy / (2 * p.frequency)
        yaw_swing = p.turn_gain * wz / p.frequency
        lift = p.lift + p.lift_per_speed * speed
        sway = p.sway * math.sin(2 * math.pi * (phase + p.sway_phase))
        lean = a * (p.trunk_pitch + p.pitch_per_vx * vx)
        targets = np.empty(N_JOINTS)
        for side, offset in ((1.0, 0.0), (-1.0, 0.5)):
            leg_phase = phase + offset
            c, s = math.cos(2 * math.pi * leg_phase), math.sin(2 * math.pi * leg_phase)
            swing = max(0.0, s)
            x = _DEFAULT_ANKLE[0] + a * (p.x_offset - 0.5 * stride_x * c + swing * placement[0])
            y = a * (side * p.width - 0.5 * stride_y * c + sway + swing * placement[1])
            z = -(_LEG_LENGTH - a * p.height) + a * lift * swing
            hip, knee = leg_ik(np.float64(x), np.float64(z))
            roll = math.atan2(y, -z)
            j = 0 if side > 0 else 6
            targets[j + HIP_PITCH] = hip - lean  # legs forward relative to a forward-leaning trunk
            targets[j + HIP_ROLL] = roll
            targets[j + HIP_YAW] = a * 0.5 * yaw_swing * -c
            targets[j + KNEE] = knee
            targets[j + ANKLE_PITCH] = -(hip + knee) + p.ankle_offset
            targets[j + ANKLE_ROLL] = -roll
        return targets

    def feedback(self, gravity: np.ndarray, gyro: np.ndarray) -> np.ndarray:
        """The IMU feedback added to the targets (module docstring, item 4)."""
        p = self.params
        pitch, roll = trunk_attitude(gravity)
        gyro_x, gyro_y = float(gyro[0]), float(gyro[1])
        out = np.zeros(N_JOINTS)
        for j in (0, 6):
            out[j + ANKLE_PITCH] = p.ankle_pitch_p * pitch + p.ankle_pitch_d * gyro_y
            out[j + HIP_PITCH] = p.hip_pitch_p * pitch
            out[j + ANKLE_ROLL] = p.ankle_roll_p * roll + p.ankle_roll_d * gyro_x
            out[j + HIP_ROLL] = p.hip_roll_p * roll
        return out

    def action_targets(self, actions: np.ndarray) -> np.ndarray:
        """Joint targets of macro actions: default pose + WALK_ACTION_SCALE * actions (as the hub controller)."""
        return self.default_pose + WALK_ACTION_SCALE * np.asarray(actions, np.float64)

    def macro_step(self, actions: np.ndarray, obs: np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
        """Torques for an env step of a kick macro: its frame's targets plus the balance feedback, the feedback
        recomputed every `decimation` steps as in `step` (the gait's own state holds while the macro plays)."""
        if self.it % self.decimation == 0:
            self._macro_feedback = self.feedback(observed_gravity(info), info["robot_gyro"])
        self.it += 1
        targets = self.action_targets(actions) + self._macro_feedback
        q = np.asarray(obs[:N_JOINTS], np.float64)
        qd = np.asarray(obs[N_JOINTS:2 * N_JOINTS], np.float64)
        return self.pd(targets, q, qd)

    def pd(self, targets: np.ndarray, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
        """PD torques toward `targets`, clipped to the torque bounds (float32 (12,)), as the PD action mode."""
        return np.clip(self.kp * (targets - q) - self.kd * qd, self.torque_low, self.torque_high).astype(np.float32)

    def step(self, command: np.ndarray, obs: np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
        """Torques for this env step: `command` = (vx m/s, vy m/s, yaw rad/s), `obs` the raw env obs (q = obs[0:12],
        qd = obs[12:24]), `info` the env's info of the same state (robot_quat xyzw, robot_gyro)."""
        if self.it % self.decimation == 0:
            self.update(command, observed_gravity(info), info["robot_gyro"])
        self.it += 1
        q = np.asarray(obs[:N_JOINTS], np.float64)
        qd = np.asarray(obs[N_JOINTS:2 * N_JOINTS], np.float64)
        return self.pd(self.targets, q, qd)
