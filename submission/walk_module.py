"""The TorchScript twin of the walk engine (envs/walk.py), batched over rows, for exported torque modules.

`WalkEngineModule` holds the walk parameters as constants and, per row, the engine's state (gait phase,
amplitude, rate-limited command, tick counter, targets). Called once per env step with the scaled command
(vx m/s, vy m/s, yaw rad/s) and the 89-dim observation, it recomputes the targets every `decimation`
calls exactly as WalkEngine.update (the IMU read from the observation's projected gravity and gyro) and
returns them; the caller applies the PD law. Float64 throughout; tests hold it equal to the numpy engine
over whole episodes (torques within 1e-4 N·m).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from envs.preprocess import OBS_SLICES
from envs.walk import _BETA, _DEFAULT_ANKLE, _L1, _LEG_LENGTH, COMMAND_LIMITS, SHANK, THIGH, WalkEngine

_PARAMS = ("frequency", "step_gain", "side_gain", "turn_gain", "lift", "lift_per_speed", "sway", "sway_phase",
           "height", "x_offset", "width", "trunk_pitch", "pitch_per_vx", "ankle_offset", "ankle_pitch_p",
           "ankle_pitch_d", "hip_pitch_p", "ankle_roll_p", "ankle_roll_d", "hip_roll_p", "ramp_time", "accel",
           "stop_threshold", "place_pitch", "place_pitch_d", "place_roll", "place_roll_d")


def _f64(values) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, np.float64), dtype=torch.float64)


class WalkEngineModule(nn.Module):
    """WalkEngine.update for a batch of rows; `clear(starts)` is WalkEngine.reset for the rows starting."""

    __constants__ = ["decimation", "tick", *_PARAMS]

    def __init__(self, engine: WalkEngine) -> None:
        super().__init__()
        p = engine.params
        for name in _PARAMS:
            setattr(self, name, float(getattr(p, name)))
        self.decimation = int(engine.decimation)
        self.tick = float(engine.tick)
        self.register_buffer("low", _f64(COMMAND_LIMITS[0]))
        self.register_buffer("high", _f64(COMMAND_LIMITS[1]))
        self.register_buffer("default_pose", _f64(engine.default_pose))
        self.gravity = OBS_SLICES["projected_gravity"].start
        self.gyro = OBS_SLICES["robot_gyro"].start
        self.ankle0_x, self.leg_length = float(_DEFAULT_ANKLE[0]), float(_LEG_LENGTH)
        self.l1, self.shank, self.beta = float(_L1), float(SHANK), float(_BETA)
        self.thigh_x, self.thigh_z = float(THIGH[0]), float(THIGH[1])
        self.phase = torch.zeros(0, dtype=torch.float64)
        self.amplitude = torch.zeros(0, dtype=torch.float64)
        self.command = torch.zeros(0, 3, dtype=torch.float64)
        self.ticks = torch.zeros(0, dtype=torch.int64)
        self.targets = torch.zeros(0, 12, dtype=torch.float64)
        self.macro_feedback = torch.zeros(0, 12, dtype=torch.float64)

    @torch.jit.export
    def clear(self, starts: torch.Tensor) -> None:
        """Reset the rows that start an episode (all state sized anew when the batch size changed)."""
        n = starts.shape[0]
        if self.ticks.shape[0] != n:
            self.phase = torch.zeros(n, dtype=torch.float64)
            self.amplitude = torch.zeros(n, dtype=torch.float64)
            self.command = torch.zeros(n, 3, dtype=torch.float64)
            self.ticks = torch.zeros(n, dtype=torch.int64)
            self.targets = self.default_pose.expand(n, 12).clone()
            self.macro_feedback = torch.zeros(n, 12, dtype=torch.float64)
        rows = starts.unsqueeze(1)
        self.phase = torch.where(starts, torch.zeros_like(self.phase), self.phase)
        self.amplitude = torch.where(starts, torch.zeros_like(self.amplitude), self.amplitude)
        self.command = torch.where(rows, torch.zeros_like(self.command), self.command)
        self.ticks = torch.where(starts, torch.zeros_like(self.ticks), self.ticks)
        self.targets = torch.where(rows, self.default_pose.expand(n, 12), self.targets)
        self.macro_feedback = torch.where(rows, torch.zeros_like(self.macro_feedback), self.macro_feedback)

    def _leg(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """envs.walk.leg_ik, batched."""
        r = torch.clamp(torch.hypot(x, z), max=self.l1 + self.shank - 1e-9)
        cos_knee = (r * r - self.l1 * self.l1 - self.shank * self.shank) / (2 * self.l1 * self.shank)
        knee = self.beta + torch.arccos(cos_knee.clamp(-1.0, 1.0))
        qx = self.thigh_x - self.shank * torch.sin(knee)
        qz = self.thigh_z - self.shank * torch.cos(knee)
        hip = torch.atan2(qx, -qz) - torch.atan2(x, -z)
        return hip, knee

    def _gait(self, phase: torch.Tensor, a: torch.Tensor, command: torch.Tensor, place_x: torch.Tensor,
              place_y: torch.Tensor) -> torch.Tensor:
        """WalkEngine.gait_targets per row."""
        vx, vy, wz = command[:, 0], command[:, 1], command[:, 2]
        speed = torch.hypot(vx, vy)
        stride_x = self.step_gain * vx / (2 * self.frequency)
        stride_y = self.side_gain * vy / (2 * self.frequency)
        yaw_swing = self.turn_gain * wz / self.frequency
        lift = self.lift + self.lift_per_speed * speed
        sway = self.sway * torch.sin(2 * math.pi * (phase + self.sway_phase))
        lean = a * (self.trunk_pitch + self.pitch_per_vx * vx)
        legs = []
        for side, offset in ((1.0, 0.0), (-1.0, 0.5)):
            angle = 2 * math.pi * (phase + offset)
            c, s = torch.cos(angle), torch.sin(angle)
            swing = torch.clamp(s, min=0.0)
            x = self.ankle0_x + a * (self.x_offset - 0.5 * stride_x * c + swing * place_x)
            y = a * (side * self.width - 0.5 * stride_y * c + sway + swing * place_y)
            z = -(self.leg_length - a * self.height) + a * lift * swing
            hip, knee = self._leg(x, z)
            roll = torch.atan2(y, -z)
            ankle = -(hip + knee) + self.ankle_offset
            legs.append(torch.stack([hip - lean, roll, a * 0.5 * yaw_swing * -c, knee, ankle, -roll], dim=1))
        return torch.cat(legs, dim=1)

    def _attitude(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pitch, roll, gyro) from the observation's projected gravity and gyro (envs.walk.trunk_attitude)."""
        g = obs[:, self.gravity:self.gravity + 3].to(torch.float64)
        gyro = obs[:, self.gyro:self.gyro + 3].to(torch.float64)
        return torch.asin(g[:, 0].clamp(-1.0, 1.0)), torch.asin((-g[:, 1]).clamp(-1.0, 1.0)), gyro

    def _feedback(self, pitch: torch.Tensor, roll: torch.Tensor, gyro: torch.Tensor) -> torch.Tensor:
        """WalkEngine.feedback."""
        ankle_pitch = self.ankle_pitch_p * pitch + self.ankle_pitch_d * gyro[:, 1]
        hip_pitch = self.hip_pitch_p * pitch
        ankle_roll = self.ankle_roll_p * roll + self.ankle_roll_d * gyro[:, 0]
        hip_roll = self.hip_roll_p * roll
        zero = torch.zeros_like(pitch)
        leg = torch.stack([hip_pitch, hip_roll, zero, zero, ankle_pitch, ankle_roll], dim=1)
        return torch.cat([leg, leg], dim=1)

    @torch.jit.export
    def macro(self, frames: torch.Tensor, obs: torch.Tensor, playing: torch.Tensor) -> torch.Tensor:
        """WalkEngine.macro_step's targets for the `playing` rows: the macro frame (N, 12) plus the balance feedback,
        the feedback recomputed every `decimation` calls; the gait's own state holds."""
        update = playing & (self.ticks % self.decimation == 0)
        if bool(update.any()):
            pitch, roll, gyro = self._attitude(obs)
            self.macro_feedback = torch.where(update.unsqueeze(1), self._feedback(pitch, roll, gyro),
                                              self.macro_feedback)
        self.ticks = torch.where(playing, self.ticks + 1, self.ticks)
        return frames + self.macro_feedback

    def forward(self, command: torch.Tensor, obs: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """Targets (N, 12) after this env step's tick for the `active` rows (others keep their state)."""
        update = active & (self.ticks % self.decimation == 0)
        if bool(update.any()):
            wanted = torch.minimum(torch.maximum(command, self.low), self.high)
            step = self.accel * self.tick
            new_command = self.command + (wanted - self.command).clamp(-step, step)
            moving = torch.linalg.vector_norm(wanted, dim=1) >= self.stop_threshold
            ramp = self.tick / self.ramp_time
            amplitude = torch.where(moving, (self.amplitude + ramp).clamp(max=1.0),
                                    (self.amplitude - ramp).clamp(min=0.0))
            phase = torch.where(amplitude > 0.0, torch.fmod(self.phase + self.frequency * self.tick, 1.0),
                                torch.zeros_like(self.phase))
            pitch, roll, gyro = self._attitude(obs)
            place_x = self.place_pitch * pitch + self.place_pitch_d * gyro[:, 1]
            place_y = self.place_roll * roll + self.place_roll_d * gyro[:, 0]
            targets = self._gait(phase, amplitude, new_command, place_x, place_y) + self._feedback(pitch, roll, gyro)
            rows = update.unsqueeze(1)
            self.command = torch.where(rows, new_command, self.command)
            self.amplitude = torch.where(update, amplitude, self.amplitude)
            self.phase = torch.where(update, phase, self.phase)
            self.targets = torch.where(rows, targets, self.targets)
        self.ticks = torch.where(active, self.ticks + 1, self.ticks)
        return self.targets
