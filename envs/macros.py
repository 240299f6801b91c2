"""Kick macros for the command action mode: mocap clips played open-loop through the PD controller.

A macro is a mocap .npz file (booster_dataset layout, docs/seed_pipeline.md) turned into
controller actions, clip((qpos[:, 7:19] - default_pose) / action_scale, -clip, clip), one row per frame.
`load_macro` reads a local file, fetches one of the dataset's named clips from the hub (envs.hub), or
generates our parameterised kick (source "kick" or "kick:PATH", envs/kick.py);
`MacroPlayer` decides when to start one (the seed's sentinel trigger) and plays it on the env's time base.

What differs from the seed, and why:
1. Frame timing follows the file's `frequency`: env step k after the trigger plays frame
   floor(k * env_dt * frequency) (a 50 Hz clip on the 500 Hz env holds each frame for 10 steps). The seed
   played one frame per env step, i.e. 10x too fast at 500 Hz.
2. The goal vector is the goal of the task actually played, read from the real env's info (checked on
   sai_mujoco 0.1.30 by building each env and reading its source, football/v0/penalty_kick.py):
   * goalie_penalty_kick: `goal_team_{t}_rel_robot` with t the robot's team (argmax of `player_team`);
     the robot of team t attacks goal_team_t (team 0: goal_post_south at x = -10.97, whose mouth
     `goal_scored` tests). `target_xpos_rel_robot` is zero there (no target site: it falls back to the robot).
   * obstacle_penalty_kick: `target_xpos_rel_robot`, the target box on the goal line: `goal_scored` is the
     ball within 0.3 m of it (the other three slots hold defenders, so the goal centre is not the aim).
   * kick_to_target: `target_xpos_rel_robot` (`success` is the ball within 0.4 m of it).
   The seed preferred `target_xpos_rel_robot` whenever the key existed, a zero vector in the goalie task,
   so the trigger never fired there (docs/seed_pipeline.md, fix 23).
3. Distances and alignment are horizontal (x, y): the "rel_robot" vectors are world-frame differences from
   the trunk IMU, 0.7 m above the ground-level ball point, so the seed's 3-D radius of 0.6 m could never be met.

Re-checked on sai_mujoco 0.1.30 (docs/observation.md): the goalkeeper and target fields, all zero in the seed's
logs, are live. Goalie: both `goalkeeper_team_{0,1}_*` are live (the keeper slides on the goal line), target
zero. Obstacle and kick_to_target: `target_xpos_rel_robot` / `target_velp_rel_robot` are live, goalkeepers zero.

Per-episode counters (`MacroPlayer.counters`): macro_trigger_count, macro_active_steps, macro_aborted_count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.hub import hf_download
from envs.kick import is_kick_source, kick_clip
from envs.tasks import get_task

MACRO_NAMES = ("kick_ball1", "kick_ball2", "kick_ball3", "powerful_kick", "pass_ball1", "goal_kick",
               "soccer_drill_run")
"""The dataset's named soccer clips (each is soccer/<robot>/<name>.npz on the hub)."""
HUB_REPO = "SaiResearch/booster_dataset"
"""The hub dataset holding the named clips."""
N_JOINTS = 12
QPOS_DIM = 7 + N_JOINTS
"""Root position (3) + root quaternion (4) + the 12 leg joints."""

ATTACKED_GOAL = "attacked_goal"
"""Pseudo-field of TASK_GOAL_FIELD: goal_team_{t}_rel_robot with t = argmax(player_team)."""
TEAM_GOAL_FIELDS = ("goal_team_0_rel_robot", "goal_team_1_rel_robot")
"""The goal each team attacks, indexed by the team."""
TASK_GOAL_FIELD: dict[str, str] = {
    "goalie_penalty_kick": ATTACKED_GOAL,
    "obstacle_penalty_kick": "target_xpos_rel_robot",
    "kick_to_target": "target_xpos_rel_robot",
}
"""The info field whose vector the kick must be aligned with, per task (module docstring, item 2)."""
MIN_NORM = 1e-6
"""Vectors shorter than this (m) give no direction: no trigger."""
FRAME_EPS = 1e-9
"""Added before flooring t * frequency so exact frame boundaries (0.1 * 10) are not lost to rounding."""

_CACHE: dict[tuple[str, str, int | None], tuple[np.ndarray, float]] = {}
"""(resolved source, robot, max_frames) -> (joint positions (T, 12) float64, frequency in Hz)."""


@dataclass(frozen=True)
class TriggerConfig:
    """When a macro starts: the seed's sentinel command and geometry thresholds."""

    threshold: float = 0.95
    """Every component of command * pattern must reach this."""
    ball_radius: float = 0.6
    """Largest horizontal robot-ball distance (m)."""
    alignment: float = 0.6
    """Smallest cosine between the horizontal robot->ball and robot->goal directions."""
    pattern: tuple = (1.0, -1.0, 1.0)
    """Signs of the sentinel (vx, vy, yaw rate): forward, right, turn left at full scale."""


def _resolve(source: str, robot: str) -> tuple[str, str | None]:
    """(cache key, hub file name or None for a local path); ValueError for an unknown source."""
    path = Path(source)
    if path.is_file():
        return str(path.resolve()), None
    name = source[:-len(".npz")] if source.endswith(".npz") else source
    if name in MACRO_NAMES and path.name == source:
        filename = f"soccer/{robot}/{name}.npz"
        return f"hub:{HUB_REPO}/{filename}", filename
    raise ValueError(f"macro {source!r} is neither an existing .npz file nor one of the dataset's clips "
                     f"({', '.join(MACRO_NAMES)})")


def _read_clip(path: Path, max_frames: int | None) -> tuple[np.ndarray, float]:
    """(joint positions (T, 12) float64, frequency) of a mocap file; ValueError naming the file."""
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for a file that is not an npz
        raise ValueError(f"{path}: not a readable .npz file ({exc.__class__.__name__})") from None
    with npz:
        if "qpos" not in npz.files:
            raise ValueError(f"{path}: no 'qpos' array (has: {', '.join(sorted(npz.files)) or 'none'})")
        if "frequency" not in npz.files:
            raise ValueError(f"{path}: no 'frequency' (frames per second) to play the clip at")
        try:
            qpos = np.asarray(npz["qpos"], dtype=np.float64)
            frequency = np.asarray(npz["frequency"], dtype=np.float64).ravel()
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: cannot read qpos/frequency ({exc})") from None
    if qpos.ndim != 2 or qpos.shape[1] < QPOS_DIM or qpos.shape[0] < 1:
        raise ValueError(f"{path}: qpos must have shape (T >= 1, >= {QPOS_DIM}) (root 7 + {N_JOINTS} leg joints), "
                         f"got {qpos.shape}")
    if frequency.size != 1 or not math.isfinite(frequency[0]) or frequency[0] <= 0:
        raise ValueError(f"{path}: frequency must be one positive number, got {frequency.tolist()}")
    joints = qpos[:max_frames, 7:QPOS_DIM]
    if not np.isfinite(joints).all():
        raise ValueError(f"{path}: qpos has NaN or inf joint positions")
    return joints, float(frequency[0])


def load_macro(source: str, *, default_pose: np.ndarray, action_scale: float, clip_actions: float,
               robot: str = "booster_lower_t1", max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """(actions (T, 12) float32 in controller units, the clip's frequency in Hz) of a macro.

    `source` is an existing .npz path or a name of MACRO_NAMES, fetched from the hub dataset
    (soccer/<robot>/<name>.npz). `max_frames` keeps the first frames only (None: all). Files are read once
    per process (cache keyed by resolved source, robot, max_frames); the arrays returned are fresh copies.
    Every problem is a one-line ValueError (envs.hub.HubUnavailable when the hub cannot be reached).
    """
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
    if not all(math.isfinite(v) and v > 0 for v in (action_scale, clip_actions)):
        raise ValueError(f"action_scale and clip_actions must be finite and > 0, got {action_scale}, {clip_actions}")
    if is_kick_source(source):  # our parameterised kick (envs/kick.py), generated, never cached stale
        joints, frequency = kick_clip(source)
        joints = joints[:max_frames] if max_frames is not None else joints
        actions = np.clip((joints - np.asarray(default_pose, np.float64)) / action_scale, -clip_actions, clip_actions)
        return actions.astype(np.float32), frequency
    key, filename = _resolve(source, robot)
    cached = _CACHE.get((key, robot, max_frames))
    if cached is None:
        path = Path(key) if filename is None else hf_download(
            HUB_REPO, filename, repo_type="dataset", what=f"kick macro {source!r}",
            local_hint="pass the path of a local mocap .npz file instead")
        cached = _CACHE[(key, robot, max_frames)] = _read_clip(path, max_frames)
    joints, frequency = cached
    actions = np.clip((joints - np.asarray(default_pose, np.float64)) / action_scale, -clip_actions, clip_actions)
    return actions.astype(np.float32), frequency


def goal_vector(info: dict, task: str) -> np.ndarray:
    """The (3,) world-frame vector from the robot to what the kick must reach in `task` (TASK_GOAL_FIELD)."""
    field = TASK_GOAL_FIELD[get_task(task).name]
    if field == ATTACKED_GOAL:
        field = TEAM_GOAL_FIELDS[int(np.argmax(np.asarray(info["player_team"]).ravel()))]
    return np.asarray(info[field], np.float64).ravel()


def ball_geometry(info: dict, task: str) -> tuple[float, float]:
    """(horizontal robot->ball distance, cosine between robot->ball and robot->goal of `task`); the cosine is
    -inf when either vector is shorter than MIN_NORM (no direction to compare)."""
    ball = np.asarray(info["ball_xpos_rel_robot"], np.float64).ravel()[:2]
    goal = goal_vector(info, task)[:2]
    ball_norm, goal_norm = float(np.linalg.norm(ball)), float(np.linalg.norm(goal))
    if ball_norm < MIN_NORM or goal_norm < MIN_NORM:
        return ball_norm, -math.inf
    return ball_norm, float(ball @ goal) / (ball_norm * goal_norm)


class MacroPlayer:
    """Plays one macro (T, 12) at `frequency_hz` on an env stepping every `env_dt` seconds.

    The command wrapper asks `should_trigger` each step while inactive, calls `start`, then takes
    `next_action()` every env step while `active`, and `abort()` on ball contact. `reset()` at every
    episode start clears the playback and the per-episode counters.
    """

    def __init__(self, actions: np.ndarray, frequency_hz: float, env_dt: float = 0.002,
                 trigger: TriggerConfig = TriggerConfig()) -> None:
        actions = np.asarray(actions, np.float32)
        if actions.ndim != 2 or actions.shape[0] < 1 or actions.shape[1] != N_JOINTS:
            raise ValueError(f"macro actions must have shape (T >= 1, {N_JOINTS}), got {actions.shape}")
        if not (math.isfinite(frequency_hz) and frequency_hz > 0 and math.isfinite(env_dt) and env_dt > 0):
            raise ValueError(f"frequency_hz and env_dt must be finite and > 0, got {frequency_hz}, {env_dt}")
        self.actions = actions.copy()
        self.frequency_hz = float(frequency_hz)
        self.env_dt = float(env_dt)
        self.trigger = trigger
        self._pattern = np.asarray(trigger.pattern, np.float64)
        self._step = -1
        self._counts = {"macro_trigger_count": 0, "macro_active_steps": 0, "macro_aborted_count": 0}

    def reset(self) -> None:
        """Stop any playback and zero the per-episode counters."""
        self._step = -1
        self._counts = dict.fromkeys(self._counts, 0)

    def should_trigger(self, command: np.ndarray, info: dict, task: str) -> bool:
        """The sentinel test: command * pattern >= threshold everywhere, the ball within `ball_radius`
        (horizontal), and cos(robot->ball, robot->goal of `task`) >= alignment (both vectors >= MIN_NORM)."""
        command = np.asarray(command, np.float64).ravel()
        cfg = self.trigger
        if command.shape != self._pattern.shape or not np.all(command * self._pattern >= cfg.threshold):
            return False
        distance, cosine = ball_geometry(info, task)
        return distance <= cfg.ball_radius and cosine >= cfg.alignment

    def start(self) -> None:
        """Start playing from frame 0 (counts one trigger)."""
        self._step = 0
        self._counts["macro_trigger_count"] += 1

    @property
    def active(self) -> bool:
        """Whether a macro is playing (its last frame's time has not yet elapsed)."""
        return self._step >= 0

    @property
    def frame_index(self) -> int:
        """The frame the next `next_action()` call plays; -1 when inactive."""
        if self._step < 0:
            return -1
        return int(math.floor(self._step * self.env_dt * self.frequency_hz + FRAME_EPS))

    def next_action(self) -> np.ndarray:
        """The (12,) controller action of this env step; advances the clock by env_dt."""
        frame = self.frame_index
        if frame < 0:
            raise RuntimeError("next_action() called while no macro is playing")
        self._step += 1
        self._counts["macro_active_steps"] += 1
        if self.frame_index >= len(self.actions):
            self._step = -1
        return self.actions[frame].copy()

    def abort(self) -> None:
        """Stop the playback early (ball contact); counted when a macro was playing."""
        if self.active:
            self._counts["macro_aborted_count"] += 1
        self._step = -1

    def counters(self) -> dict[str, int]:
        """This episode's macro_trigger_count, macro_active_steps, macro_aborted_count."""
        return dict(self._counts)
