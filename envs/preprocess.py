"""The 89-dim policy observation, built from the raw env obs, the env's info dict and the task one-hot.

This module is the single definition of the layout (docs/observation.md). `OBS_LAYOUT`
is the data table, in order; the code below only reads it. A later generated, numpy-only submission
Preprocessor must reproduce exactly `preprocess`.

Sources: `joint_pos` / `joint_vel` are raw obs[0:12] / obs[12:24]; `projected_gravity` is computed from
`info["robot_quat"]` (xyzw); `task_one_hot` is OUR order (goalie, obstacle, kick), never the platform's
`info["task_index"]` (whose order cannot be checked offline); every other field is `info[name]` as is.
No scaling or clipping. The output is float32.

Accepted calling shapes (docs/platform.md): a single (D,) obs with an unbatched info (returns
(89,)); a batch (N, D) with batched (N, k) info arrays (`_key` masks and extra keys are ignored); a
batch (N, D) with an unbatched info (each field broadcast over the batch).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from envs.tasks import task_for_obs_dim

OBS_LAYOUT: tuple[tuple[str, int], ...] = (
    ("joint_pos", 12),
    ("joint_vel", 12),
    ("projected_gravity", 3),
    ("robot_gyro", 3),
    ("robot_accelerometer", 3),
    ("robot_velocimeter", 3),
    ("goal_team_0_rel_robot", 3),
    ("goal_team_1_rel_robot", 3),
    ("goal_team_0_rel_ball", 3),
    ("goal_team_1_rel_ball", 3),
    ("ball_xpos_rel_robot", 3),
    ("ball_velp_rel_robot", 3),
    ("ball_velr_rel_robot", 3),
    ("player_team", 2),
    ("goalkeeper_team_0_xpos_rel_robot", 3),
    ("goalkeeper_team_0_velp_rel_robot", 3),
    ("goalkeeper_team_1_xpos_rel_robot", 3),
    ("goalkeeper_team_1_velp_rel_robot", 3),
    ("target_xpos_rel_robot", 3),
    ("target_velp_rel_robot", 3),
    ("defender_xpos", 9),
    ("task_one_hot", 3),
)
"""(field, width) in output order. Fields not named below in `_DERIVED` are copied from info[field]."""

_DERIVED = ("joint_pos", "joint_vel", "projected_gravity", "task_one_hot")
INFO_FIELDS: tuple[tuple[str, int], ...] = tuple((k, w) for k, w in OBS_LAYOUT if k not in _DERIVED)
"""The info keys copied verbatim, in layout order (all present at reset and at every step)."""


def _slices() -> dict[str, slice]:
    out, start = {}, 0
    for name, width in OBS_LAYOUT:
        out[name] = slice(start, start + width)
        start += width
    return out


OBS_SLICES: dict[str, slice] = _slices()
"""Field name -> its slice of the 89-dim observation."""
OBS_DIM = OBS_SLICES["task_one_hot"].stop


def _gravity_xyz(x, y, z, w):
    """The expanded g = a - b + c; the same expression serves python floats and numpy arrays bit for bit."""
    return 2.0 * (w * y - x * z), -2.0 * (w * x + y * z), 1.0 - 2.0 * (w * w + z * z)


def projected_gravity(quat_xyzw: np.ndarray) -> np.ndarray:
    """Unit gravity (0, 0, -1) in the body frame, for quaternions (..., 4) in xyzw order -> (..., 3) float64.

    With v = (0, 0, -1): a = v(2w^2 - 1), b = 2w (q_vec x v), c = 2 q_vec (q_vec . v), g = a - b + c,
    which expands to (2(wy - xz), -2(wx + yz), 1 - 2(w^2 + z^2)).
    """
    q = np.asarray(quat_xyzw, dtype=np.float64)
    return np.stack(_gravity_xyz(q[..., 0], q[..., 1], q[..., 2], q[..., 3]), axis=-1)


def preprocess_step(obs: np.ndarray, info: Mapping[str, Any], task_one_hot: np.ndarray) -> np.ndarray:
    """The float32 (89,) observation of one env step: raw obs (D,) plus an unbatched info.

    The fast path used inside the env wrappers (a few microseconds); `preprocess` gives the same values.
    """
    x, y, z, w = (float(v) for v in info["robot_quat"])
    parts = [obs[:24], _gravity_xyz(x, y, z, w)]
    parts += [info[key] for key, _ in INFO_FIELDS]
    parts.append(task_one_hot)
    return np.concatenate(parts, dtype=np.float32)


def preprocess(obs: np.ndarray, info: Mapping[str, Any], task_one_hot: np.ndarray | None = None) -> np.ndarray:
    """The float32 89-dim observation for one step (D,) -> (89,) or a batch (N, D) -> (N, 89).

    Accepts every calling shape of the platform (see the module docstring). `task_one_hot` is the task
    the env was built for; when None it is inferred from the raw width D (45/54/39).
    """
    obs = np.asarray(obs)
    single = obs.ndim == 1
    raw = obs.reshape(-1, obs.shape[-1])
    n = raw.shape[0]
    if task_one_hot is None:
        task_one_hot = task_for_obs_dim(raw.shape[1]).one_hot

    def field(key: str, width: int) -> np.ndarray:
        return np.broadcast_to(np.asarray(info[key]).reshape(-1, width), (n, width))

    parts = [raw[:, :24], projected_gravity(field("robot_quat", 4))]
    parts += [field(key, width) for key, width in INFO_FIELDS]
    parts.append(np.broadcast_to(task_one_hot, (n, 3)))
    out = np.concatenate(parts, axis=1, dtype=np.float32)
    return out[0] if single else out
