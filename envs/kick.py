"""Our kick: a parameterised right-leg kick, fired from the walk and played as a macro (envs/macros.py).

The motion is joint targets at KICK_HZ through five key poses, each reached from the previous one with a
smoothstep over its own duration: (0) the default pose; (1) the weight shifted onto the left leg (both hip
rolls +shift, both ankle rolls -shift) with the left knee bent by `support_bend`; (2) the wind-up: the right
hip extended back, knee bent, ankle set; (3) the strike: the right hip swung forward, knee extended, ankle
set; (4) the default pose again. It is fired from the walk: the striker walks at `approach_speed` with the
ball `ball_y` beside its line and fires when the ball is `ball_x` ahead of the trunk (the walk's momentum
carries the robot on during the weight shift); the tuner (skills/tune_kick.py) searches the parameters for
ball speed straight ahead without a fall, in exactly that situation. The macro mode plays it through the PD
law, over our walk engine with the engine's balance feedback added (envs.walk.WalkEngine.macro_step).

Parameters live in one shipped file, envs/kick_params.json; `load_kick_params` refuses a missing or unknown
key or a non-finite value. As a macro source the kick is named "kick" (the shipped file) or "kick:PATH".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.paramfile import check_finite_fields, load_param_file
from envs.wrappers import T1_DEFAULT_POSE

KICK_HZ = 50.0
"""Frames per second of the kick's joint targets (the hub controller's rate)."""
DEFAULT_KICK_FILE = Path(__file__).with_name("kick_params.json")
KICK_SOURCE = "kick"
"""The macro source name of our kick (`kick` or `kick:PATH`)."""
_L, _R = 0, 6
_HIP_PITCH, _HIP_ROLL, _KNEE, _ANKLE_PITCH, _ANKLE_ROLL = 0, 1, 3, 4, 5


@dataclass(frozen=True, kw_only=True)
class KickParams:
    """The kick's parameters: angles in rad (offsets from the default pose), times in s, distances in m."""

    shift: float = 0.08
    """Hip roll (+) / ankle roll (-) of both legs that moves the weight over the left foot."""
    support_bend: float = 0.1
    """Extra bend of the left (support) knee, with half of it taken up by its hip and ankle pitch."""
    wind_hip: float = 0.35
    """Right hip pitch of the wind-up (+: the leg back)."""
    wind_knee: float = 0.6
    """Right knee bend of the wind-up."""
    wind_ankle: float = 0.0
    """Right ankle pitch of the wind-up."""
    strike_hip: float = -0.55
    """Right hip pitch at the strike (-: the leg forward)."""
    strike_knee: float = 0.05
    """Right knee at the strike."""
    strike_ankle: float = 0.1
    """Right ankle pitch at the strike."""
    t_shift: float = 0.4
    """Seconds to shift the weight."""
    t_wind: float = 0.25
    """Seconds of the wind-up."""
    t_strike: float = 0.12
    """Seconds of the strike."""
    t_recover: float = 0.5
    """Seconds back to the default pose."""
    ball_x: float = 0.45
    """The kick fires, from the walk, when the ball is this far ahead of the trunk IMU (m) ..."""
    ball_y: float = -0.1
    """... with the ball this far to its left (m; negative: in front of the right foot) ..."""
    approach_speed: float = 0.45
    """... while walking towards it at this forward speed (m/s; the walk engine's command)."""

    def __post_init__(self) -> None:
        check_finite_fields(self, "kick")
        for name in ("t_shift", "t_wind", "t_strike", "t_recover"):
            if not 0.02 <= getattr(self, name) <= 2.0:
                raise ValueError(f"kick parameter {name} must be in [0.02, 2] s, got {getattr(self, name)}")

    def replace(self, **changes: float) -> KickParams:
        return dataclasses.replace(self, **changes)


KICK_PARAM_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(KickParams))


def load_kick_params(path: str | Path | None = None) -> tuple[KickParams, dict[str, Any]]:
    """(parameters, the file's other sections) of a kick parameter file (JSON {"params": {...}, ...}); None: the
    shipped one. A missing or unknown key or a non-finite value is a one-line ValueError naming the file."""
    return load_param_file(DEFAULT_KICK_FILE if path is None else Path(path), KickParams, "kick")


def key_poses(p: KickParams) -> list[np.ndarray]:
    """The five key poses (absolute joint targets, rad) of the module docstring."""
    pose0 = T1_DEFAULT_POSE.copy()
    shifted = pose0.copy()
    for leg in (_L, _R):
        shifted[leg + _HIP_ROLL] += p.shift
        shifted[leg + _ANKLE_ROLL] -= p.shift
    shifted[_L + _KNEE] += p.support_bend
    shifted[_L + _HIP_PITCH] -= p.support_bend / 2
    shifted[_L + _ANKLE_PITCH] -= p.support_bend / 2
    wind = shifted.copy()
    wind[_R + _HIP_PITCH] += p.wind_hip
    wind[_R + _KNEE] += p.wind_knee
    wind[_R + _ANKLE_PITCH] += p.wind_ankle
    strike = shifted.copy()
    strike[_R + _HIP_PITCH] += p.strike_hip
    strike[_R + _KNEE] += p.strike_knee
    strike[_R + _ANKLE_PITCH] += p.strike_ankle
    return [pose0, shifted, wind, strike, pose0.copy()]


def kick_joint_targets(p: KickParams) -> np.ndarray:
    """(T, 12) joint targets at KICK_HZ: each key pose reached from the previous with a smoothstep."""
    poses = key_poses(p)
    frames = [poses[0]]
    for start, end, seconds in zip(poses[:-1], poses[1:], (p.t_shift, p.t_wind, p.t_strike, p.t_recover),
                                   strict=True):
        n = max(1, int(round(seconds * KICK_HZ)))
        for k in range(1, n + 1):
            s = k / n
            w = s * s * (3.0 - 2.0 * s)
            frames.append(start + w * (end - start))
    return np.stack(frames)


def kick_clip(source: str) -> tuple[np.ndarray, float]:
    """(joint targets (T, 12), frequency) of the kick macro source "kick" or "kick:PATH"."""
    path = None if source == KICK_SOURCE else source[len(KICK_SOURCE) + 1:]
    params, _ = load_kick_params(path)
    return kick_joint_targets(params), KICK_HZ


def is_kick_source(source: str) -> bool:
    """Whether a macro source names our kick rather than a mocap clip."""
    return source == KICK_SOURCE or source.startswith(KICK_SOURCE + ":")
