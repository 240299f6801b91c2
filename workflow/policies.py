"""The one policy loader: a scripted policy by name, or a policy file of any kind, ready for the evaluation
harness and the demonstration recorder.

    load_policy("striker")                        # zero, random, stand, striker
    load_policy("runs/x/checkpoint.pt")           # train.py checkpoint (its normaliser included)
    load_policy("runs/x/final_model.zip")         # SB3 zip, ours or SB3's own (normaliser from X.meta.json)
    load_policy("runs/bc_actor.pt")               # BC actor of python -m bc.train
    load_policy("runs/x/final_model.pt")          # TorchScript torque module (submission/torchscript.py)

Every kind says which env settings it acts in (`LoadedPolicy.settings`: action mode, action repeat, the
command-mode controller, the residual striker's wrapper), so evaluate.py and bc.record run it the same way.
Files are read weights-only (rlcore.checkpoint, rlcore.export); a TorchScript module is loaded with
torch.jit.load, which runs no Python from the file (TorchScript is compiled by torch's own interpreter).
A bad file, or one that does not fit the env, is a ValueError with one line.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bc.cloning import bc_policy, check_bc, is_bc
from bc.mocap_dataset import ACTION_DIMS
from bc.stand import StandController
from envs.command import CommandOptions
from envs.preprocess import OBS_DIM
from envs.tasks import TASK_NAMES
from rlcore.checkpoint import check_checkpoint, read_weights_only, restore_algorithm
from skills.residual import RESIDUAL_KEY, residual_wrapper
from skills.striker import StrikerPolicy, striker_config, striker_settings
from submission import check_run_metadata, env_spaces, load_zip_policy

Policy = Callable[[np.ndarray], np.ndarray]
SCRIPTED = ("zero", "random", "stand", "striker")
"""Scripted policies by name: zero / random torques (random from a fixed seed), the stand controller (torque or
pd actions) and the striker (walking commands over our walk engine)."""
KINDS = ("checkpoint", "bc", "zip", "torchscript")


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy ready to run: obs (N, 89) -> actions (N, A) in the wrapped env's [-1, 1], or an object with
    `act(obs, episodes)` that keeps state per episode (envs.lockstep)."""

    policy: Any
    label: str
    kind: str
    """'scripted' or one of KINDS."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Harness / recorder keyword arguments: action_mode, action_repeat, command, outer."""
    payload: dict[str, Any] | None = None
    """The file's payload (checkpoint, BC payload, or the zip's meta document)."""
    note: str | None = None
    """To print before running it (e.g. a zip without normaliser statistics)."""


def scripted_policy(name: str, *, action_mode: str = "torque", action_repeat: int = 1,
                    walk_params: str | None = None) -> LoadedPolicy:
    """A scripted policy by name; the stand controller acts in `action_mode` (torque or pd), the striker in
    command mode over our walk engine (`walk_params` its file)."""
    if name == "zero":
        return LoadedPolicy(lambda obs: np.zeros((len(obs), 12), dtype=np.float32), "zero torques", "scripted")
    if name == "random":
        rng = np.random.default_rng(0)
        return LoadedPolicy(lambda obs: rng.uniform(-1.0, 1.0, (len(obs), 12)).astype(np.float32),
                            "random torques", "scripted")
    if name == "striker":
        settings = {**striker_settings(walk_params), "action_repeat": action_repeat}
        return LoadedPolicy(StrikerPolicy(striker_config(), action_repeat),
                            "scripted striker (command mode, walk engine)", "scripted", settings)
    if name == "stand":
        settings = {} if action_mode == "torque" else {"action_mode": action_mode}
        return LoadedPolicy(StandController(action_mode=action_mode), f"stand controller ({action_mode})",
                            "scripted", settings)
    raise ValueError(f"unknown policy {name!r}: use {', '.join(SCRIPTED)} or a policy file")


def file_kind(path: Path) -> str:
    """Which kind of policy file `path` is, from its name and contents (ValueError if none)."""
    if path.suffix == ".zip":
        return "zip"
    if path.suffix != ".pt":
        raise ValueError(f"{path}: not a policy file (.pt: a checkpoint, BC actor or TorchScript module; .zip: an "
                         "SB3 model)")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise ValueError(f"{path}: unreadable archive ({exc})") from None
        if any("/code/" in name for name in names) and any(name.endswith("constants.pkl") for name in names):
            return "torchscript"
    return "torch"


def load_policy(source: str, *, device: str = "cpu", env_id: str | None = None, deterministic: bool = True,
                walk_params: str | None = None) -> LoadedPolicy:
    """A scripted policy by name or a policy file of any kind (module docstring), for the soccer tasks or for a
    gymnasium `env_id`; `deterministic=False` samples (SAC, PPO). ValueError with a one-line reason."""
    if source in SCRIPTED and not Path(source).exists():
        return scripted_policy(source, walk_params=walk_params)
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"no such policy file: {source} (or use {', '.join(SCRIPTED)})")
    kind = file_kind(path)
    try:
        if kind == "zip":
            loaded = load_zip_policy(path, device, env_id)
            return LoadedPolicy(_act(loaded.policy, deterministic), loaded.label, "zip", loaded.settings,
                                loaded.meta, loaded.note)
        if kind == "torchscript":
            return _torchscript(path, env_id)
        payload = read_weights_only(path, device, "model")  # one read: a BC payload or a checkpoint
        return _bc(path, payload, device, env_id, deterministic) if is_bc(payload) else \
            _checkpoint(path, payload, device, env_id, deterministic)
    except RuntimeError as exc:  # e.g. an unknown or unavailable device
        raise ValueError(f"cannot load {path} on device {device!r}: {exc}".splitlines()[0]) from None


def _bc(path: Path, payload: dict, device: str, env_id: str | None, deterministic: bool) -> LoadedPolicy:
    payload = check_bc(payload, path)
    settings: dict[str, Any] = {"action_mode": payload.get("action_mode") or "torque",
                                "action_repeat": payload.get("action_repeat") or 1}
    _check_widths(path, payload["obs_dim"], payload["action_dim"], settings["action_mode"], env_id)
    if payload.get("command") is not None:  # the controller and limits its demonstrations ran
        settings["command"] = _prepared(CommandOptions.from_dict(payload["command"]), path)
    elif settings["action_mode"] == "command" and env_id is None:
        raise ValueError(f"{path} acts in command mode but does not say over which controller (a BC actor of an "
                         "older bc.train): train it again from its bc.record dataset")
    return LoadedPolicy(_act(bc_policy(payload, device), deterministic), f"BC {payload['algo']} actor", "bc",
                        settings if env_id is None else {}, payload)


def _checkpoint(path: Path, payload: dict, device: str, env_id: str | None, deterministic: bool) -> LoadedPolicy:
    payload = check_checkpoint(payload, path)
    meta = payload["metadata"]
    check_run_metadata(meta, str(path))
    _check_widths(path, payload["obs_shape"][0], len(payload["action_low"]), meta.get("action_mode", "torque"),
                  env_id, (payload["action_low"], payload["action_high"]))
    policy = restore_algorithm(payload, device, where=str(path)).policy
    settings: dict[str, Any] = {}
    if env_id is None:
        settings = {"action_mode": meta.get("action_mode", "torque"), "action_repeat": meta.get("action_repeat", 1)}
        if meta.get("command") is not None:  # the controller files and limits the run trained with
            settings["command"] = _prepared(CommandOptions.from_dict(meta["command"]), path)
        if meta.get(RESIDUAL_KEY) is not None:  # its actions correct the striker's commands
            settings["outer"] = residual_wrapper(meta[RESIDUAL_KEY], settings["action_repeat"])
    label = f"{payload['algo']} @ {payload['runner'].get('timesteps', 0)} steps"
    return LoadedPolicy(_act(policy, deterministic), label, "checkpoint", settings, payload)


class TorchScriptPolicy:
    """A TorchScript torque module (obs89 -> torques, or torques divided onto [-1, 1] with platform_units) as a
    harness policy in torque mode. The module keeps state per batch row and resets every row when the batch
    size changes, so it is always called with one row per env slot, each episode keeping its slot; a slot's new
    episode starts from a reset state, which the module detects (submission/torchscript.py)."""

    def __init__(self, module: torch.jit.ScriptModule, low: np.ndarray, high: np.ndarray) -> None:
        self.module = module
        self.mid, self.half = (high + low) / 2.0, (high - low) / 2.0
        self.platform_units = bool(getattr(module, "platform_units", False))
        self.slots: dict[int, int] = {}
        self.rows = np.zeros((0, OBS_DIM), np.float32)

    def reset(self) -> None:
        """Forget every episode (the harness calls it before each task's episodes)."""
        self.module.reset()
        self.slots.clear()
        self.rows = np.zeros((0, OBS_DIM), np.float32)

    def act(self, obs: np.ndarray, episodes: Sequence[int]) -> np.ndarray:
        if not self.slots:  # a task's first call: one slot per env
            self.rows = np.zeros((len(episodes), OBS_DIM), np.float32)
        playing = set(episodes)
        for finished in [e for e in self.slots if e not in playing]:
            del self.slots[finished]
        used = set(self.slots.values())
        free = [slot for slot in range(len(self.rows)) if slot not in used]
        for episode in episodes:
            if episode not in self.slots:
                self.slots[episode] = free.pop(0)
        for row, episode in enumerate(episodes):
            self.rows[self.slots[episode]] = obs[row]
        with torch.inference_mode():
            out = self.module(torch.from_numpy(self.rows.copy())).numpy().astype(np.float64)
        chosen = out[[self.slots[e] for e in episodes]]
        actions = chosen if self.platform_units else (chosen - self.mid) / self.half
        return actions.astype(np.float32)


def _torchscript(path: Path, env_id: str | None) -> LoadedPolicy:
    if env_id is not None:
        raise ValueError(f"{path}: a TorchScript torque module acts on the soccer tasks, not on {env_id}")
    try:
        module = torch.jit.load(str(path), map_location="cpu").eval()
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"{path}: not a loadable TorchScript module ({str(exc).splitlines()[0][:200]})") from None
    if not callable(getattr(module, "reset", None)):
        raise ValueError(f"{path}: a TorchScript module without reset(): not a torque module of this project")
    _, low, high = env_spaces(task=TASK_NAMES[0])
    probe = np.zeros((1, OBS_DIM), np.float32)
    try:
        with torch.inference_mode():
            shape = tuple(module(torch.from_numpy(probe)).shape)
    except RuntimeError as exc:
        raise ValueError(f"{path}: the module fails on an 89-dim observation ({str(exc).splitlines()[0][:200]})") \
            from None
    module.reset()
    if shape != (1, len(low)):
        raise ValueError(f"{path}: the module maps (1, {OBS_DIM}) observations to {shape}, not to torques "
                         f"(1, {len(low)})")
    policy = TorchScriptPolicy(module, low.astype(np.float64), high.astype(np.float64))
    return LoadedPolicy(policy, f"TorchScript torque module {path.name}", "torchscript",
                        {"action_mode": "torque", "action_repeat": 1})


def _prepared(command: CommandOptions, path: Path) -> CommandOptions:
    """`command` with its controller and macro files found and read now (ValueError naming `path` if they cannot
    be: a download that is unavailable here, a file gone), not at the first episode."""
    try:
        command.prepare()
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: its command-mode controller cannot be loaded: {str(exc).splitlines()[0]}") from None
    return command


def _check_widths(path: Path, obs_dim: int, act_dim: int, action_mode: str, env_id: str | None,
                  bounds: tuple[list, list] | None = None) -> None:
    """ValueError unless a network of these widths (and, for a checkpoint on a gymnasium env, action bounds) fits
    the env it is about to run on."""
    if env_id is None:
        if action_mode not in ACTION_DIMS:
            raise ValueError(f"{path}: unknown action mode {action_mode!r}"[:200])
        want_obs, want_act = OBS_DIM, ACTION_DIMS[action_mode]
        where = f"the soccer tasks in {action_mode} mode"
    else:
        want_obs, low, high = env_spaces(env_id=env_id)
        want_act, where = len(low), env_id
        if bounds is not None and act_dim == want_act and not (np.allclose(bounds[0], low) and
                                                              np.allclose(bounds[1], high)):
            raise ValueError(f"{path} acts in the bounds {bounds[0]} .. {bounds[1]}, {env_id}'s are "
                             f"{low.tolist()} .. {high.tolist()}")
    if (obs_dim, act_dim) != (want_obs, want_act):
        raise ValueError(f"{path} takes {obs_dim}-dim observations and gives {act_dim}-dim actions; {where} "
                         f"need {want_obs} and {want_act}")


def _act(policy, deterministic: bool) -> Policy:
    """The harness callable of a DeployedPolicy, deterministic or sampling."""
    return lambda obs: policy.predict(obs, deterministic=deterministic)
