"""Synthetic mocap .npz files for the bc tests (the real booster_dataset files are not in the repo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from envs.wrappers import T1_DEFAULT_POSE


def yaw_quat(yaw: float | np.ndarray) -> np.ndarray:
    """wxyz quaternions of rotations about the world z axis."""
    yaw = np.asarray(yaw, np.float64)
    return np.stack([np.cos(yaw / 2), np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2)], axis=-1)


def clip_arrays(n: int = 11, frequency: float = 50.0, yaw: float = 0.0,
                velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> dict[str, np.ndarray]:
    """A standing clip: default pose plus a joint ramp, constant root velocity and heading."""
    qpos = np.zeros((n, 19))
    qpos[:, 2] = 0.68
    qpos[:, 3:7] = yaw_quat(np.full(n, yaw))
    qpos[:, 7:] = T1_DEFAULT_POSE + np.linspace(0.0, 0.1, n)[:, None]
    qpos[:, 0:3] += np.arange(n)[:, None] / frequency * np.asarray(velocity)
    qvel = np.zeros((n, 18))
    qvel[:, 0:3] = velocity
    qvel[:, 6:] = 0.1 * frequency / (n - 1)
    return {"qpos": qpos, "qvel": qvel, "frequency": np.array(frequency)}


def write_clip(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path
