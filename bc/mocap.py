"""Reader and validator of the competition's mocap `.npz` files (booster_dataset, LocoMuJoCo trajectory layout).

Keys used (docs/seed_pipeline.md, "Mocap clips and kick macros"), for the Lower T1 (12 leg joints):
* `qpos` (T, 7 + 12): root position (3), root quaternion wxyz (4), joint positions (rad);
* `qvel` (T, 6 + 12): root linear velocity (world frame), root angular velocity (body frame: MuJoCo's
  free-joint convention), joint velocities;
* `frequency`: frames per second (a positive scalar);
* optional `split_points`: frame indices where concatenated trajectories start (LocoMuJoCo); frames are never
  interpolated or differenced across them;
* optional `joint_names`: when all 12 T1 leg joints can be recognised in it, the joint columns are reordered to
  the env's order (left hip pitch, roll, yaw, knee, ankle pitch, ankle roll, then right); otherwise the file's
  columns are taken to be in that order.
Other keys (xpos, cvel, site_*, metadata, ...) are never read: some of them need pickle, which stays off.

Every problem raises `MocapError` (a ValueError) whose message starts with the file's path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

N_JOINTS = 12
QPOS_DIM = 7 + N_JOINTS
QVEL_DIM = 6 + N_JOINTS
T1_LEG_JOINTS = tuple(f"{side}_{joint}" for side in ("left", "right")
                      for joint in ("hip_pitch", "hip_roll", "hip_yaw", "knee_pitch", "ankle_pitch", "ankle_roll"))
"""The env's joint order (sai_mujoco joint names without the 'robot_0:' prefix, lower-cased)."""
REQUIRED_KEYS = ("qpos", "qvel", "frequency")


class MocapError(ValueError):
    """A mocap file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class MocapClip:
    """One validated mocap file: float64 arrays with unit root quaternions, joints in the env's order."""

    path: Path
    qpos: np.ndarray
    """(T, 19) root position, root quaternion wxyz, joint positions."""
    qvel: np.ndarray
    """(T, 18) root linear velocity (world), root angular velocity (body), joint velocities."""
    frequency: float
    """Frames per second."""
    segments: tuple[tuple[int, int], ...]
    """[start, stop) frame ranges of the trajectories in the file (one unless split_points splits it)."""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def n_frames(self) -> int:
        return self.qpos.shape[0]


def load_mocap(path: str | Path) -> MocapClip:
    """Read and validate one mocap file; MocapError naming the file on any problem."""
    path = Path(path)

    def fail(message: str) -> MocapError:
        return MocapError(f"{path}: {message}")

    if not path.is_file():
        raise fail("no such file")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for a file that is not an npz
        raise fail(f"not a readable .npz file ({exc.__class__.__name__})") from None
    with npz:
        missing = [k for k in REQUIRED_KEYS if k not in npz.files]
        if missing:
            raise fail(f"missing key(s) {', '.join(missing)} (has: {', '.join(sorted(npz.files)) or 'none'})")
        try:
            raw = {key: np.asarray(npz[key]) for key in ("qpos", "qvel", "frequency")}
            for key, array in raw.items():
                if array.dtype.kind not in "biuf":  # complex values would lose their imaginary part silently
                    raise fail(f"{key} must hold real numbers, got dtype {array.dtype}")
            qpos, qvel, frequency = (raw[key].astype(np.float64) for key in ("qpos", "qvel", "frequency"))
            split_points = np.asarray(npz["split_points"]) if "split_points" in npz.files else None
            joint_names = [str(n) for n in np.asarray(npz["joint_names"]).ravel()] if "joint_names" in npz.files \
                else None
        except MocapError:
            raise
        except Exception as exc:  # a damaged member: zip, header or size errors
            raise fail(f"cannot read the arrays ({exc.__class__.__name__}: {str(exc)[:200]})") from None

    for key, array, width in (("qpos", qpos, QPOS_DIM), ("qvel", qvel, QVEL_DIM)):
        if array.ndim != 2 or array.shape[1] != width:
            raise fail(f"{key} must have shape (T, {width}) for the Lower T1 (7/6 root + {N_JOINTS} joints), "
                       f"got {array.shape}")
        bad = ~np.isfinite(array)
        if bad.any():
            row = int(np.argwhere(bad)[0, 0])
            raise fail(f"{key} has NaN or inf values (first at frame {row})")
    if qpos.shape[0] != qvel.shape[0]:
        raise fail(f"qpos has {qpos.shape[0]} frames but qvel has {qvel.shape[0]}")
    if qpos.shape[0] < 2:
        raise fail(f"needs at least 2 frames, got {qpos.shape[0]}")
    if frequency.size != 1 or not np.isfinite(frequency).all() or float(frequency.ravel()[0]) <= 0:
        raise fail(f"frequency must be one positive number, got {frequency.ravel().tolist()}")

    norms = np.linalg.norm(qpos[:, 3:7], axis=1)
    if np.any(norms < 1e-6):
        raise fail(f"root quaternion of norm 0 at frame {int(np.argmax(norms < 1e-6))}")
    qpos = qpos.copy()
    qpos[:, 3:7] /= norms[:, None]
    if joint_names is not None:
        order = _joint_order(joint_names)
        if order is not None:
            qpos[:, 7:] = qpos[:, 7:][:, order]
            qvel = qvel.copy()
            qvel[:, 6:] = qvel[:, 6:][:, order]
    segments = _segments(split_points, qpos.shape[0], fail)
    return MocapClip(path, qpos, qvel, float(frequency.ravel()[0]), segments)


def _normalise_joint_name(name: str) -> str:
    name = name.split(":")[-1].lower()
    return name[:-len("_joint")] if name.endswith("_joint") else name


def _joint_order(joint_names: list[str]) -> list[int] | None:
    """Column permutation to the env's joint order when the names hold all 12 leg joints, else None."""
    legs = [n for n in (_normalise_joint_name(j) for j in joint_names) if n in T1_LEG_JOINTS]
    if sorted(legs) != sorted(T1_LEG_JOINTS):
        return None
    return [legs.index(j) for j in T1_LEG_JOINTS]


def _segments(split_points: np.ndarray | None, n_frames: int, fail) -> tuple[tuple[int, int], ...]:
    """[start, stop) ranges between split points (0 and T implied)."""
    if split_points is None:
        return ((0, n_frames),)
    points = split_points.ravel()
    if points.size and (not np.issubdtype(points.dtype, np.integer) or points.min() < 0 or points.max() > n_frames
                        or np.any(np.diff(points) < 0)):
        raise fail(f"split_points must be non-decreasing frame indices in [0, {n_frames}], got {points.tolist()}")
    bounds = sorted({0, n_frames, *(int(p) for p in points)})
    return tuple((a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a)
