"""Policies to record or evaluate, by name or file: the stand controller, a BC payload, a train.py checkpoint.

A policy maps float32 observations (N, 89) to actions (N, A) in the wrapped env's [-1, 1] action space.
Files are dispatched on their suffix through FILE_LOADERS. The SB3 export adds its reader there, e.g.
`FILE_LOADERS[".zip"] = load_sb3_zip`, a function (path, action_mode, device) -> (policy, label); nothing
else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from bc.cloning import bc_policy, check_bc, is_bc
from bc.mocap_dataset import ACTION_DIMS
from bc.stand import StandController
from envs.preprocess import OBS_DIM
from rlcore.checkpoint import check_checkpoint, read_weights_only, restore_algorithm
from skills.residual import RESIDUAL_KEY
from skills.striker import StrikerPolicy, striker_config

Policy = Callable[[np.ndarray], np.ndarray]
Loader = Callable[[Path, str, str], tuple[Policy, str]]


def load_torch_policy(path: Path, action_mode: str, device: str = "cpu") -> tuple[Policy, str]:
    """A BC payload (python -m bc.train) or a checkpoint.pt (train.py); ValueError when it does not fit the env."""
    payload = read_weights_only(path, device, "policy file")  # one read, weights only: a BC payload or a checkpoint
    if is_bc(payload):
        payload = check_bc(payload, path)
        if payload["obs_dim"] != OBS_DIM:
            raise ValueError(f"{path}: the BC net takes {payload['obs_dim']}-dim observations, the env gives {OBS_DIM}")
        if payload.get("action_mode") not in (None, action_mode):
            raise ValueError(f"{path}: a BC net for {payload['action_mode']} actions, the env runs {action_mode}")
        if payload["action_dim"] != ACTION_DIMS[action_mode]:
            raise ValueError(f"{path}: the BC net gives {payload['action_dim']}-dim actions, {action_mode} takes "
                             f"{ACTION_DIMS[action_mode]}")
        return bc_policy(payload, device).predict, f"BC {payload['algo']} actor {path}"
    payload = check_checkpoint(payload, path)
    if payload["obs_shape"] != [OBS_DIM]:
        raise ValueError(f"{path}: trained on observations of shape {tuple(payload['obs_shape'])}, "
                         f"the env gives ({OBS_DIM},)")
    if payload["metadata"].get(RESIDUAL_KEY) is not None:
        raise ValueError(f"{path}: a residual policy over the striker (its actions correct the striker's commands); "
                         "record --policy striker, or evaluate this checkpoint with evaluate.py --model")
    trained_mode = payload["metadata"].get("action_mode")
    if trained_mode not in (None, action_mode):
        raise ValueError(f"{path}: trained on {trained_mode} actions, the env runs {action_mode}")
    if len(payload["action_low"]) != ACTION_DIMS[action_mode]:
        raise ValueError(f"{path}: gives {len(payload['action_low'])}-dim actions, {action_mode} takes "
                         f"{ACTION_DIMS[action_mode]}")
    policy = restore_algorithm(payload, device, where=str(path)).policy
    return policy.predict, f"{payload['algo']} checkpoint {path}"


FILE_LOADERS: dict[str, Loader] = {".pt": load_torch_policy}
"""Policy file readers by suffix (the SB3 export registers '.zip')."""


SCRIPTED = ("stand", "striker")
"""Scripted policies by name: the stand controller (torque or pd actions) and the striker (command actions
over our walk engine: record it with --action-mode command)."""


def load_policy_source(source: str, *, action_mode: str = "torque", device: str = "cpu",
                       action_repeat: int = 1) -> tuple[Policy, str]:
    """(policy, label) for a scripted policy name or a policy file; ValueError with a one-line reason otherwise."""
    if source == "stand":
        return StandController(action_mode=action_mode), f"stand controller ({action_mode})"
    if source == "striker":
        if action_mode != "command":
            raise ValueError("the striker outputs walking commands: record it with --action-mode command")
        return StrikerPolicy(striker_config(), action_repeat), "scripted striker (command mode, walk engine)"
    path = Path(source)
    loader = FILE_LOADERS.get(path.suffix)
    if loader is None:
        known = ", ".join(sorted(FILE_LOADERS))
        raise ValueError(f"policy {source!r}: use {' or '.join(map(repr, SCRIPTED))} or a policy file ({known})")
    if not path.is_file():
        raise ValueError(f"policy file not found: {source}")
    return loader(path, action_mode, device)
