"""A scripted stand controller: our baseline and, later, our first demonstrator.

PD to the T1 default pose with the T1 gains (envs/wrappers.py), plus ankle-pitch feedback: both
ankle-pitch targets get +(2.0 * pitch + 0.2 * gyro_y). Without the feedback the robot tips forward and
falls near step 576; with it (this sign) it stands all 5000 steps (docs/cloning.md).

It reads only the 89-dim observation. The torso pitch comes from the projected gravity g:
pitch = asin(g_x), which equals asin(2(w*y - z*x)) of the xyzw quaternion exactly, because
g_x = 2(w*y - x*z) (envs/preprocess.projected_gravity); tests check the two agree.
"""

from __future__ import annotations

import numpy as np

from envs.preprocess import OBS_SLICES
from envs.wrappers import ANKLE_PITCH, DEFAULT_PD_SCALE, T1_DEFAULT_POSE, T1_TORQUE_LIMIT, pd_torques

_Q = OBS_SLICES["joint_pos"]
_QD = OBS_SLICES["joint_vel"]
_GRAVITY = OBS_SLICES["projected_gravity"]
_GYRO = OBS_SLICES["robot_gyro"]
ACTION_MODES = ("torque", "pd")


def torso_pitch(obs: np.ndarray) -> np.ndarray:
    """Torso pitch (rad) of 89-dim observations (N, 89) -> (N,), from the projected gravity."""
    return np.arcsin(np.clip(obs[:, _GRAVITY.start].astype(np.float64), -1.0, 1.0))


class StandController:
    """Policy callable: 89-dim observations (N, 89) or (89,) -> actions (N, 12) or (12,) in [-1, 1].

    `action_mode="torque"` gives the torque mode's normalised torques; `"pd"` gives PD-mode offsets
    (the feedback divided by `pd_scale`, clipped), which the PD wrapper turns into the same torques.
    """

    def __init__(
        self,
        action_mode: str = "torque",
        pd_scale: float = DEFAULT_PD_SCALE,
        pitch_gain: float = 2.0,
        gyro_gain: float = 0.2,
    ):
        if action_mode not in ACTION_MODES:
            raise ValueError(f"StandController supports action_mode {ACTION_MODES}, got {action_mode!r}")
        self.action_mode = action_mode
        self.pd_scale = pd_scale
        self.pitch_gain = pitch_gain
        self.gyro_gain = gyro_gain

    def targets(self, obs: np.ndarray) -> np.ndarray:
        """Joint-position targets (N, 12): the default pose plus the ankle-pitch feedback."""
        feedback = self.pitch_gain * torso_pitch(obs) + self.gyro_gain * obs[:, _GYRO.start + 1]
        targets = np.tile(T1_DEFAULT_POSE, (obs.shape[0], 1))
        targets[:, ANKLE_PITCH] += feedback[:, None]
        return targets

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        single = obs.ndim == 1
        obs = np.atleast_2d(obs)
        targets = self.targets(obs)
        if self.action_mode == "pd":
            actions = np.clip((targets - T1_DEFAULT_POSE) / self.pd_scale, -1.0, 1.0)
        else:
            q, qd = obs[:, _Q].astype(np.float64), obs[:, _QD].astype(np.float64)
            actions = pd_torques(targets, q, qd, -T1_TORQUE_LIMIT, T1_TORQUE_LIMIT) / T1_TORQUE_LIMIT
        actions = actions.astype(np.float32)
        return actions[0] if single else actions
