"""Behaviour-cloning datasets from mocap clips: 89-dim observations and actions in an action mode's [-1, 1] space.

Frames are first resampled from the clip's `frequency` to the policy's decision rate (500 Hz / action_repeat):
linear interpolation of positions and velocities, slerp of the root quaternion, never across a trajectory
boundary (split_points). Sample k of a trajectory is labelled with the move to sample k + 1, so the last
resampled frame of each trajectory has no label and is dropped (in command mode too, so that every mode gives
the same rows):
* `pd`: the PD-mode action whose target is the next frame's joint positions, (q[k+1] - default pose) / pd_scale;
* `torque`: the T1 PD torque that tracks the next frame, clip(Kp (q[k+1] - q[k]) - Kd qd[k]) / torque limit,
  i.e. exactly what the PD wrapper would apply for the `pd` label;
* `command`: the root velocity at sample k in the BODY (heading) frame, (forward m/s, left m/s, yaw rate rad/s)
  divided by COMMAND_SCALE (the seed used world-frame velocities over the dataset maximum:
  docs/seed_pipeline.md, fix 18).
Everything is clipped to [-1, 1].

Observations (envs.preprocess layout) from the mocap state: joints, projected gravity, gyro = root angular
velocity (body frame), velocimeter = root linear velocity rotated into the body frame, accelerometer =
R^T (dv/dt + g e_z) (what the IMU reads; the seed used zeros for the accelerometer and the world-frame velocity).
Ball, goal, goalkeeper, target and defender fields are zero, player_team is [1, 0], unless a context mode
places a synthetic ball and goal (the seed's sentinel contexts, command mode only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bc.mocap import MocapClip
from envs.preprocess import INFO_FIELDS, OBS_DIM, preprocess
from envs.tasks import TASKS, get_task
from envs.wrappers import DEFAULT_PD_SCALE, T1_DEFAULT_POSE, T1_TORQUE_LIMIT, pd_torques

PHYSICS_HZ = 500.0
"""Physics steps per second of the sai_mujoco soccer envs (one env step each)."""
GRAVITY = 9.81
COMMAND_SCALE = np.array([1.0, 1.0, 1.0])
"""Command-mode units of an action of 1: forward m/s, left m/s, yaw rad/s (the T1 joystick's, unscaled)."""
ACTION_MODES = ("torque", "pd", "command")
ACTION_DIMS = {"torque": 12, "pd": 12, "command": 3}
TASK_MODES = {"all": tuple(t.name for t in TASKS), "goalie": ("goalie_penalty_kick",),
              "obstacle": ("obstacle_penalty_kick",), "kick": ("kick_to_target",)}
CONTEXT_MODES = ("keep", "sentinel", "all")


@dataclass(frozen=True, kw_only=True)
class SentinelOptions:
    """Command-mode sentinel frames: the seed's macro-trigger command pattern on chosen frames of chosen files."""

    files: frozenset[str]
    """File names (with .npz) whose sentinel frames get the pattern."""
    frames: frozenset[int]
    """Source-frame indices (the file's own frame numbers); a resampled sample maps to its nearest source frame."""
    pattern: tuple[float, float, float] = (1.0, -1.0, 1.0)
    """The command written on sentinel samples, each in [-1, 1]."""


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """How mocap clips become samples; ValueError on inconsistent values."""

    action_mode: str = "torque"
    action_repeat: int = 1
    """Physics steps per decision: samples are resampled to PHYSICS_HZ / action_repeat."""
    pd_scale: float = DEFAULT_PD_SCALE
    task_mode: str = "all"
    """Which task one-hots each frame is emitted with (all: three copies)."""
    stride: int = 2
    """Keep every stride-th labelled sample of each trajectory (after resampling)."""
    max_samples: int | None = None
    """Stop after exactly this many samples (the seed overshot by one per later file)."""
    sentinels: SentinelOptions | None = None
    sentinel_threshold: float = 0.95
    """A sample counts as a sentinel in the report when all(action * pattern >= threshold) (command mode)."""
    context_mode: str = "keep"
    """keep: zero ball/goal context; sentinel: sentinel samples see a ball at hand and the goal ahead; all: other
    samples also see a far ball and the goal behind."""
    ball_radius: float = 0.6
    ball_far: float = 3.0
    goal_distance: float = 2.0

    def __post_init__(self) -> None:
        if self.action_mode not in ACTION_MODES:
            raise ValueError(f"action mode must be one of {', '.join(ACTION_MODES)}, got {self.action_mode!r}")
        if self.task_mode not in TASK_MODES:
            raise ValueError(f"task mode must be one of {', '.join(TASK_MODES)}, got {self.task_mode!r}")
        if self.context_mode not in CONTEXT_MODES:
            raise ValueError(f"context mode must be one of {', '.join(CONTEXT_MODES)}, got {self.context_mode!r}")
        if self.action_repeat < 1 or self.stride < 1:
            raise ValueError(f"action_repeat and stride must be >= 1, got {self.action_repeat} and {self.stride}")
        if self.max_samples is not None and self.max_samples < 1:
            raise ValueError(f"max samples must be >= 1, got {self.max_samples}")
        if self.pd_scale <= 0:
            raise ValueError(f"pd_scale must be > 0, got {self.pd_scale}")
        if self.sentinels is not None and self.action_mode != "command":
            raise ValueError("sentinels are 3-dim command patterns: they need the command action mode")
        if self.sentinels is not None and any(not -1.0 <= v <= 1.0 for v in self.sentinels.pattern):
            raise ValueError(f"the sentinel pattern must lie in [-1, 1], got {self.sentinels.pattern}")
        if self.context_mode != "keep" and self.sentinels is None:
            raise ValueError(f"context mode {self.context_mode!r} needs sentinels enabled")
        if not 0 < self.ball_radius < self.ball_far:
            raise ValueError(f"need 0 < ball radius < ball far, got {self.ball_radius} and {self.ball_far}")

    @property
    def decision_hz(self) -> float:
        return PHYSICS_HZ / self.action_repeat


@dataclass(frozen=True)
class Trajectory:
    """One trajectory resampled to the decision rate."""

    qpos: np.ndarray
    """(K, 19), unit quaternions."""
    qvel: np.ndarray
    """(K, 18)."""
    source_frame: np.ndarray
    """(K,) the nearest source frame of each sample (file frame index; halves round up)."""
    dt: float
    """Seconds between samples."""


@dataclass
class FileReport:
    """Per-file counts for --report."""

    name: str
    frames: int
    frequency: float
    resampled: int
    samples: int = 0
    sentinels: int = 0


@dataclass
class BuiltDataset:
    """The arrays of a built dataset and the per-file counts."""

    observations: np.ndarray
    actions: np.ndarray
    sentinels: np.ndarray
    files: list[FileReport] = field(default_factory=list)

    def arrays(self, options: BuildOptions) -> dict[str, np.ndarray]:
        """The .npz contents: the seed's keys (docs/seed_pipeline.md) plus the action mode and the settings."""
        by_name = sorted(self.files, key=lambda r: r.name)
        n = len(self.observations)
        return {
            "observations": self.observations, "actions": self.actions, "sentinels": self.sentinels,
            "sentinel_total": np.int64(self.sentinels.sum()),
            "sentinel_pct": np.float32(100.0 * self.sentinels.sum() / max(n, 1)),
            "total_samples": np.int64(n),
            "sentinel_files": np.array([r.name for r in by_name], dtype=str),
            "sentinel_file_total": np.array([r.samples for r in by_name], dtype=np.int64),
            "sentinel_file_sentinel": np.array([r.sentinels for r in by_name], dtype=np.int64),
            "action_mode": np.array(options.action_mode),
            "source_files": np.array([r.name for r in self.files], dtype=str),
            "decision_hz": np.float64(options.decision_hz),
            "action_repeat": np.int64(options.action_repeat),
            "pd_scale": np.float64(options.pd_scale),
            "command_scale": COMMAND_SCALE.astype(np.float64),
            "task_mode": np.array(options.task_mode),
        }


# ---------------------------------------------------------------------------------------------- rotations
def quat_to_matrix(q_wxyz: np.ndarray) -> np.ndarray:
    """Rotation matrices (K, 3, 3), body to world, of unit quaternions (K, 4) in wxyz order."""
    w, x, y, z = np.moveaxis(q_wxyz, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation of unit quaternions (K, 4) at fractions t (K,), along the shorter arc."""
    dot = np.sum(q0 * q1, axis=-1)
    q1 = np.where(dot[:, None] < 0, -q1, q1)
    dot = np.abs(dot).clip(max=1.0)
    theta = np.arccos(dot)
    sin = np.sin(theta)
    near = sin < 1e-6  # nearly equal: linear interpolation is exact to float precision
    safe = np.where(near, 1.0, sin)
    w0 = np.where(near, 1 - t, np.sin((1 - t) * theta) / safe)
    w1 = np.where(near, t, np.sin(t * theta) / safe)
    out = w0[:, None] * q0 + w1[:, None] * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------------------- resampling
def resample(clip: MocapClip, rate_hz: float) -> list[Trajectory]:
    """Each trajectory of the clip at `rate_hz`; trajectories shorter than two samples are dropped."""
    out = []
    for start, stop in clip.segments:
        qpos, qvel = clip.qpos[start:stop], clip.qvel[start:stop]
        n = stop - start
        k = int(np.floor((n - 1) * rate_hz / clip.frequency + 1e-9)) + 1
        if n < 2 or k < 2:
            continue
        u = np.arange(k) * (clip.frequency / rate_hz)  # position in source frames
        i0 = np.minimum(np.floor(u).astype(int), n - 2)
        w = u - i0
        new_qpos = _lerp(qpos, i0, w)
        new_qpos[:, 3:7] = slerp(qpos[i0, 3:7], qpos[i0 + 1, 3:7], w)
        out.append(Trajectory(new_qpos, _lerp(qvel, i0, w), start + np.floor(u + 0.5).astype(int), 1.0 / rate_hz))
    return out


def _lerp(a: np.ndarray, i0: np.ndarray, w: np.ndarray) -> np.ndarray:
    return a[i0] * (1 - w[:, None]) + a[i0 + 1] * w[:, None]


# ---------------------------------------------------------------------------------------------- labels
def action_labels(traj: Trajectory, action_mode: str, pd_scale: float = DEFAULT_PD_SCALE) -> np.ndarray:
    """Labels (K - 1, A) in [-1, 1] for samples 0..K-2 (module docstring)."""
    q, qd, q_next = traj.qpos[:-1, 7:], traj.qvel[:-1, 6:], traj.qpos[1:, 7:]
    if action_mode == "pd":
        labels = (q_next - T1_DEFAULT_POSE) / pd_scale
    elif action_mode == "torque":
        labels = pd_torques(q_next, q, qd, -T1_TORQUE_LIMIT, T1_TORQUE_LIMIT) / T1_TORQUE_LIMIT
    elif action_mode == "command":
        labels = body_frame_command(traj.qpos[:-1, 3:7], traj.qvel[:-1, 0:3], traj.qvel[:-1, 3:6]) / COMMAND_SCALE
    else:
        raise ValueError(f"unknown action mode {action_mode!r}")
    return np.clip(labels, -1.0, 1.0).astype(np.float32)


def body_frame_command(q_wxyz: np.ndarray, lin_vel_world: np.ndarray, ang_vel_body: np.ndarray) -> np.ndarray:
    """(forward, left, yaw rate) (K, 3): the world velocity in the heading frame, and the world-z turn rate."""
    rot = quat_to_matrix(q_wxyz)
    yaw = np.arctan2(rot[:, 1, 0], rot[:, 0, 0])
    cos, sin = np.cos(yaw), np.sin(yaw)
    vx, vy = lin_vel_world[:, 0], lin_vel_world[:, 1]
    yaw_rate = np.einsum("kij,kj->ki", rot, ang_vel_body)[:, 2]
    return np.stack([cos * vx + sin * vy, -sin * vx + cos * vy, yaw_rate], axis=-1)


# ---------------------------------------------------------------------------------------------- observations
def mocap_observations(traj: Trajectory, one_hot: np.ndarray, context: dict[str, np.ndarray] | None = None
                       ) -> np.ndarray:
    """float32 (K, 89) observations of a trajectory through envs.preprocess (one layout definition)."""
    rot = quat_to_matrix(traj.qpos[:, 3:7])
    lin_vel = traj.qvel[:, 0:3]
    accel_world = np.gradient(lin_vel, traj.dt, axis=0) + np.array([0.0, 0.0, GRAVITY])
    info = {key: np.zeros(width) for key, width in INFO_FIELDS}
    info["player_team"] = np.array([1.0, 0.0])
    info.update({
        "robot_quat": traj.qpos[:, [4, 5, 6, 3]],  # wxyz -> xyzw
        "robot_gyro": traj.qvel[:, 3:6],
        "robot_velocimeter": np.einsum("kji,kj->ki", rot, lin_vel),  # R^T v
        "robot_accelerometer": np.einsum("kji,kj->ki", rot, accel_world),
    })
    info.update(context or {})
    raw = np.concatenate([traj.qpos[:, 7:], traj.qvel[:, 6:]], axis=1)
    return preprocess(raw, info, one_hot)


def sentinel_context(is_sentinel: np.ndarray, options: BuildOptions) -> dict[str, np.ndarray] | None:
    """The seed's synthetic ball/goal context per sample (K, 3) arrays, or None in keep mode."""
    if options.context_mode == "keep":
        return None
    k = len(is_sentinel)
    ball = np.zeros((k, 3))
    goal = np.zeros((k, 3))
    ball[is_sentinel, 0] = 0.5 * options.ball_radius
    goal[is_sentinel, 0] = options.goal_distance
    if options.context_mode == "all":
        ball[~is_sentinel, 0] = options.ball_far
        goal[~is_sentinel, 0] = -options.goal_distance
    return {"ball_xpos_rel_robot": ball, "goal_team_0_rel_robot": goal, "goal_team_1_rel_robot": goal,
            "target_xpos_rel_robot": goal, "goal_team_0_rel_ball": goal - ball, "goal_team_1_rel_ball": goal - ball}


# ---------------------------------------------------------------------------------------------- builder
def build_dataset(clips: Sequence[MocapClip], options: BuildOptions) -> BuiltDataset:
    """Samples of all clips in order: every stride-th labelled sample, once per task one-hot, up to max_samples."""
    one_hots = [get_task(name).one_hot for name in TASK_MODES[options.task_mode]]
    pattern = np.array(options.sentinels.pattern if options.sentinels else (1.0, -1.0, 1.0))
    obs_parts, act_parts, sentinel_parts, reports = [], [], [], []
    remaining = options.max_samples if options.max_samples is not None else np.inf
    for clip in clips:
        trajectories = resample(clip, options.decision_hz)
        report = FileReport(clip.name, clip.n_frames, clip.frequency, sum(len(t.qpos) for t in trajectories))
        reports.append(report)
        for traj in trajectories:
            if remaining <= 0:
                break
            keep = np.arange(0, len(traj.qpos) - 1, options.stride)
            labels = action_labels(traj, options.action_mode, options.pd_scale)[keep]
            marked = np.zeros(len(keep), bool)
            if options.sentinels is not None and clip.name in options.sentinels.files:
                marked = np.isin(traj.source_frame[keep], list(options.sentinels.frames))
                labels[marked] = pattern
            context = sentinel_context(np.isin(np.arange(len(traj.qpos)), keep[marked]), options)
            obs = np.stack([mocap_observations(traj, h, context)[keep] for h in one_hots], axis=1)
            obs = obs.reshape(-1, OBS_DIM)  # frame-major: each frame once per one-hot, side by side
            labels = np.repeat(labels, len(one_hots), axis=0)
            take = int(min(len(obs), remaining))
            flags = _sentinel_flags(labels[:take], pattern, options)
            obs_parts.append(obs[:take])
            act_parts.append(labels[:take])
            sentinel_parts.append(flags)
            report.samples += take
            report.sentinels += int(flags.sum())
            remaining -= take
    act_dim = ACTION_DIMS[options.action_mode]
    return BuiltDataset(
        np.concatenate(obs_parts) if obs_parts else np.zeros((0, OBS_DIM), np.float32),
        np.concatenate(act_parts) if act_parts else np.zeros((0, act_dim), np.float32),
        np.concatenate(sentinel_parts) if sentinel_parts else np.zeros(0, np.uint8),
        reports,
    )


def _sentinel_flags(labels: np.ndarray, pattern: np.ndarray, options: BuildOptions) -> np.ndarray:
    """uint8 (N,): all(action * pattern >= threshold) in command mode; zeros otherwise."""
    if options.action_mode != "command":
        return np.zeros(len(labels), np.uint8)
    return np.all(labels * pattern >= options.sentinel_threshold, axis=1).astype(np.uint8)
