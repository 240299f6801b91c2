"""Demonstration files (.npz): one reader that validates them for both the BC trainer and replay prefill.

A file always has `observations` (N, D) and `actions` (N, A): the BC inputs and labels, actions in the action
mode's [-1, 1] space. Recorded rollouts (bc/rollouts.py) add real transitions: `next_observations`, `rewards`,
`terminated` (and `truncated`, `executed_actions`: the noisy action the env actually ran). Mocap datasets
(bc/mocap_dataset.py) have no transitions. String metadata (`action_mode`, `reward_profile`) is stored as
0-d unicode arrays, so every file loads with allow_pickle=False.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlcore.checkpoint import atomic_write

TRANSITION_KEYS = ("next_observations", "rewards", "terminated")
"""All present (real transitions) or none (observation/action pairs only)."""


@dataclass(frozen=True)
class Demos:
    """A validated demonstration file; float32 arrays, N >= 1 rows."""

    path: Path
    observations: np.ndarray
    actions: np.ndarray
    """The labels: the demonstrator's clean actions."""
    executed_actions: np.ndarray | None
    """The actions the env executed (labels plus exploration noise), when recorded."""
    next_observations: np.ndarray | None
    rewards: np.ndarray | None
    terminated: np.ndarray | None
    action_mode: str | None
    reward_profile: str | None

    @property
    def has_transitions(self) -> bool:
        return self.next_observations is not None

    def __len__(self) -> int:
        return len(self.observations)


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an uncompressed .npz atomically (readers never see half a file)."""
    atomic_write(Path(path), lambda handle: np.savez(handle, **arrays))


def check_writable(path: str | Path) -> Path:
    """Create the parent folder and try a file in it, so a bad output path fails before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        raise ValueError(f"cannot write into {str(path.parent)!r} ({exc.strerror or exc})") from None
    return path


def _text(npz: np.lib.npyio.NpzFile, key: str) -> str | None:
    return str(npz[key]) if key in npz.files else None


def load_demos(path: str | Path, *, obs_dim: int | None = None, act_dim: int | None = None) -> Demos:
    """Read and check a demonstration file; ValueError naming the file on any problem.

    Checks: the file is an .npz with `observations` and `actions`; at least one row; 2-D arrays with equal row
    counts; the widths (when given); every value finite; actions within [-1, 1]; transition keys all or none.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"dataset not found: {path}")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for a file that is not an npz
        raise ValueError(f"{path}: not a readable .npz file ({exc.__class__.__name__})") from None
    with npz:
        missing = [k for k in ("observations", "actions") if k not in npz.files]
        if missing:
            raise ValueError(f"{path}: missing key(s) {', '.join(missing)}")
        present = [k for k in TRANSITION_KEYS if k in npz.files]
        if present and len(present) != len(TRANSITION_KEYS):
            raise ValueError(f"{path}: has {', '.join(present)} but not all of {', '.join(TRANSITION_KEYS)}")
        arrays = {k: np.asarray(npz[k]) for k in ("observations", "actions", "executed_actions", *TRANSITION_KEYS)
                  if k in npz.files}
        action_mode, reward_profile = _text(npz, "action_mode"), _text(npz, "reward_profile")

    obs, actions = arrays["observations"], arrays["actions"]
    if obs.ndim != 2 or actions.ndim != 2:
        raise ValueError(f"{path}: observations and actions must be 2-D, got shapes {obs.shape} and {actions.shape}")
    if len(obs) == 0:
        raise ValueError(f"{path}: the dataset is empty (0 samples)")
    if obs_dim is not None and obs.shape[1] != obs_dim:
        raise ValueError(f"{path}: observations are {obs.shape[1]}-dim, the env's are {obs_dim}-dim")
    if act_dim is not None and actions.shape[1] != act_dim:
        raise ValueError(f"{path}: actions are {actions.shape[1]}-dim, the env's are {act_dim}-dim")
    for key, array in arrays.items():
        if len(array) != len(obs):
            raise ValueError(f"{path}: {key} has {len(array)} rows, observations have {len(obs)}")
        if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
            raise ValueError(f"{path}: {key} is not numeric ({array.dtype})")
        bad = ~np.isfinite(array.astype(np.float64))
        if bad.any():
            raise ValueError(f"{path}: {key} has NaN or inf values (first at row {int(np.argwhere(bad)[0, 0])})")
    for key in ("actions", "executed_actions"):
        if key in arrays and np.abs(arrays[key]).max() > 1.0 + 1e-6:
            raise ValueError(f"{path}: {key} must lie in [-1, 1] (the action mode's normalised space), "
                             f"max |value| is {np.abs(arrays[key]).max():.3g}")
    expected = {"next_observations": obs.shape, "executed_actions": actions.shape, "rewards": (len(obs),),
                "terminated": (len(obs),)}
    for key, shape in expected.items():
        if key in arrays and arrays[key].shape != shape:
            raise ValueError(f"{path}: {key} must have shape {shape}, got {arrays[key].shape}")
    f32 = {k: v.astype(np.float32) for k, v in arrays.items()}
    return Demos(path, f32["observations"], f32["actions"], f32.get("executed_actions"),
                 f32.get("next_observations"), f32.get("rewards"), f32.get("terminated"), action_mode, reward_profile)
