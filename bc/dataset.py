"""Demonstration files (.npz): one reader that validates them for both the BC trainer and replay prefill.

A file always has `observations` (N, D) and `actions` (N, A): the BC inputs and labels, actions in the action
mode's [-1, 1] space. Recorded rollouts (bc/rollouts.py) add real transitions: `next_observations`, `rewards`,
`terminated` (and `truncated`, `executed_actions`: the noisy action the env actually ran). Mocap datasets
(bc/mocap_dataset.py) have no transitions. String metadata (`action_mode`, `reward_profile`, and in command mode
`command`: the walking controller's options as JSON) is stored as 0-d unicode arrays and `action_repeat` as a 0-d
integer, so every file loads with allow_pickle=False.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.command import CommandOptions
from rlcore.fileio import atomic_write

MAX_ACTION_REPEAT = 1000
"""Largest action repeat a file may declare (a 5000-step episode has 5 decisions at 1000)."""
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
    action_repeat: int | None = None
    """Physics steps per recorded action, when recorded."""
    command: dict | None = None
    """Command mode: the CommandOptions the recording ran (dataclasses.asdict form), when recorded."""

    @property
    def has_transitions(self) -> bool:
        return self.next_observations is not None

    def __len__(self) -> int:
        return len(self.observations)


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an uncompressed .npz atomically (readers never see half a file)."""
    atomic_write(Path(path), lambda handle: np.savez(handle, **arrays))


def _text(npz: np.lib.npyio.NpzFile, key: str, path: Path) -> str | None:
    if key not in npz.files:
        return None
    value = npz[key]
    if value.ndim != 0 or value.dtype.kind != "U":
        raise ValueError(f"{path}: {key} must be a string (a 0-d unicode array), got {value.dtype} of shape "
                         f"{value.shape}")
    return str(value)


def _repeat(npz: np.lib.npyio.NpzFile, path: Path) -> int | None:
    if "action_repeat" not in npz.files:
        return None
    value = npz["action_repeat"]
    if value.ndim != 0 or value.dtype.kind not in "iu" or not 1 <= int(value) <= MAX_ACTION_REPEAT:
        raise ValueError(f"{path}: action_repeat must be a 0-d integer in [1, {MAX_ACTION_REPEAT}]")
    return int(value)


def _command(text: str | None, path: Path) -> dict | None:
    """The recorded command options, checked by building them (a path they name is read only when an env is made)."""
    if text is None:
        return None
    try:
        doc = json.loads(text)
        CommandOptions.from_dict(doc)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: command is not a valid set of command-mode options: "
                         f"{str(exc).splitlines()[0][:200]}") from None
    return doc


F32_MAX = float(np.finfo(np.float32).max)


def _first_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1))[0])


def check_real_values(path: Path, key: str, array: np.ndarray) -> None:
    """ValueError naming the file, the key and the first bad row unless `array` holds bool, integer or float values,
    all finite and within float32's range (everything is stored as float32: 1e39 would become inf, and the
    imaginary part of a complex value would be dropped)."""
    kind = array.dtype.kind
    if kind not in "biuf":
        raise ValueError(f"{path}: {key} must hold real numbers (bool, integer or float), got dtype {array.dtype}")
    if kind != "f" or array.size == 0:
        return
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{path}: {key} has NaN or inf values (first at row {_first_row(bad)})")
    if array.dtype.itemsize > 4:
        beyond = np.abs(array) > F32_MAX
        if beyond.any():
            raise ValueError(f"{path}: {key} has values beyond float32's range (|x| > {F32_MAX:.4g}; first at row "
                             f"{_first_row(beyond)})")


def load_demos(path: str | Path, *, obs_dim: int | None = None, act_dim: int | None = None) -> Demos:
    """Read and check a demonstration file; ValueError naming the file on any problem.

    Checks: the file is an .npz with `observations` and `actions`; at least one row; 2-D arrays with equal row
    counts; the widths (when given); every value a finite real number within float32's range (check_real_values);
    actions within [-1, 1]; transition keys all or none; text metadata 0-d strings.
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
        try:
            arrays = {k: np.asarray(npz[k]) for k in ("observations", "actions", "executed_actions", *TRANSITION_KEYS)
                      if k in npz.files}
        except Exception as exc:  # a damaged member: zip, header or size errors
            raise ValueError(f"{path}: a member cannot be read ({exc.__class__.__name__})") from None
        action_mode, reward_profile = _text(npz, "action_mode", path), _text(npz, "reward_profile", path)
        action_repeat = _repeat(npz, path)
        command = _command(_text(npz, "command", path), path)

    obs, actions = arrays["observations"], arrays["actions"]
    if obs.ndim != 2 or actions.ndim != 2:
        raise ValueError(f"{path}: observations and actions must be 2-D, got shapes {obs.shape} and {actions.shape}")
    if len(obs) == 0:
        raise ValueError(f"{path}: the dataset is empty (0 samples)")
    if obs.shape[1] == 0 or actions.shape[1] == 0:
        raise ValueError(f"{path}: observations and actions need at least one column, got shapes {obs.shape} and "
                         f"{actions.shape}")
    if obs_dim is not None and obs.shape[1] != obs_dim:
        raise ValueError(f"{path}: observations are {obs.shape[1]}-dim, the env's are {obs_dim}-dim")
    if act_dim is not None and actions.shape[1] != act_dim:
        raise ValueError(f"{path}: actions are {actions.shape[1]}-dim, the env's are {act_dim}-dim")
    for key, array in arrays.items():
        if array.ndim == 0 or len(array) != len(obs):
            raise ValueError(f"{path}: {key} has {len(array) if array.ndim else 0} rows, observations have {len(obs)}")
        check_real_values(path, key, array)
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
                 f32.get("next_observations"), f32.get("rewards"), f32.get("terminated"), action_mode, reward_profile,
                 action_repeat, command)
