"""Write a Stable-Baselines3 model zip (TD3, SAC or PPO with MlpPolicy) from our networks, without SB3.

What `TD3.load(path)` / `SAC.load` / `PPO.load` need (docs/sb3_zip.md, checked on SB3 2.0-2.9):
1. `data`, JSON. Values JSON cannot hold are base64 pickles under ":serialized:". We pickle only references
   into stable_baselines3 and torch.nn, and constructor CALLS of numpy/gymnasium (`Box(np.array(...), ...)`),
   so the loader's own library versions rebuild the spaces: a pickled numpy-2 array does not load under
   numpy 1, a project class does not load at all. No schedules: SB3 rebuilds them from `learning_rate`.
2. `policy.pth`: the policy state dict, tensors only (SB3 >= 2.8 loads with weights_only=True).
3. One `<name>.pth` per optimizer SB3 restores; it checks only the parameter count, so these are fresh Adam
   states (the zip carries no optimizer state).
4. `pytorch_variables.pth`: SAC's entropy coefficient, empty otherwise.

Action units: `action_space` holds the bounds of the REAL env, which receives `predict`'s output unchanged.
TD3/SAC `predict` maps the actor's tanh output a onto them (low + (a + 1)(high - low) / 2, our affine map);
PPO's only clips, so the map is folded into action_net (layout.fold_action_map).
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import gymnasium as gym
import numpy as np
import torch

from rlcore import registry  # the module, read at call time: the registry imports this package's layout
from rlcore.algos import Algorithm
from rlcore.config import NetConfig
from rlcore.export.layout import ENT_COEF_OPTIMIZER, fold_action_map
from rlcore.fileio import atomic_write
from rlcore.networks import activation_class
from rlcore.optim import fresh_adam_state


class _Call:
    """Pickles as the call fn(*args): the unpickler runs its own fn, no private state travels."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return self.fn, self.args


def _entry(raw: bytes, type_name: str) -> dict[str, str]:
    """SB3's JSON entry for a pickled value (its loader reads only ':serialized:')."""
    return {":type:": type_name, ":serialized:": base64.b64encode(raw).decode("ascii")}


def _class_reference(module: str, name: str) -> bytes:
    """A pickle of the bare reference module.name (PROTO 2, GLOBAL, STOP), written without importing it."""
    return b"\x80\x02c" + f"{module}\n{name}\n".encode("ascii") + b"."


def _box(low: np.ndarray, high: np.ndarray) -> dict[str, str]:
    """A float32 gymnasium Box as the call Box(np.array(low, "float32"), np.array(high, "float32"), None, "float32")."""

    def array(values: np.ndarray) -> _Call:
        return _Call(np.array, np.asarray(values, np.float32).tolist(), "float32")

    raw = pickle.dumps(_Call(gym.spaces.Box, array(low), array(high), None, "float32"), protocol=4)
    return _entry(raw, "<class 'gymnasium.spaces.box.Box'>")


def _torch_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _check_bounds(name: str, low: np.ndarray, high: np.ndarray) -> None:
    low, high = np.asarray(low), np.asarray(high)
    if low.ndim != 1 or low.shape != high.shape:
        raise ValueError(f"{name} bounds must be two 1-D arrays of one shape, got {low.shape} and {high.shape}")
    if np.any(np.isnan(low)) or np.any(np.isnan(high)) or np.any(low > high):
        raise ValueError(f"{name} bounds must satisfy low <= high, got {low} and {high}")


def write_sb3_zip(path: Path, *, algo: str, policy_state: Mapping[str, torch.Tensor], net: NetConfig,
                  obs_low: np.ndarray, obs_high: np.ndarray, action_low: np.ndarray, action_high: np.ndarray,
                  learning_rate: float, hyperparameters: Mapping[str, Any] | None = None,
                  pytorch_variables: Mapping[str, torch.Tensor] | None = None) -> None:
    """Write an SB3 zip atomically from a policy state dict under SB3's policy.pth keys.

    `action_low`/`action_high` become `action_space` (finite: the real env's bounds). `net` gives
    policy_kwargs (net_arch; activation_fn pickled as a torch.nn class). `hyperparameters` are extra JSON
    scalars of `data` that SB3 restores as attributes (gamma, batch_size, num_timesteps, ...).
    """
    if algo not in registry.ALGORITHM_SPECS:
        raise ValueError(f"cannot write an SB3 zip for algorithm {algo!r}; "
                         f"known: {', '.join(registry.ALGORITHM_SPECS)}")
    layout = registry.algorithm_spec(algo).sb3
    _check_bounds("observation", obs_low, obs_high)
    _check_bounds("action", action_low, action_high)
    if not (np.all(np.isfinite(action_low)) and np.all(np.isfinite(action_high))):
        raise ValueError("the action bounds must be finite: SB3 maps or clips predict's output onto them")
    if not all(isinstance(v, torch.Tensor) for v in policy_state.values()):
        raise ValueError("policy_state must hold tensors only (SB3 loads .pth members with weights_only=True)")
    extra = dict(hyperparameters or {})
    net_arch = list(net.net_arch)
    policy_kwargs = {"net_arch": {"pi": net_arch, "vf": net_arch} if layout.split_net_arch else net_arch,
                     "activation_fn": activation_class(net.activation)}
    data: dict[str, Any] = {
        "policy_class": _entry(_class_reference(*layout.policy_class), "<class 'abc.ABCMeta'>"),
        "policy_kwargs": _entry(pickle.dumps(policy_kwargs, protocol=4), "<class 'dict'>"),
        "observation_space": _box(obs_low, obs_high),
        "action_space": _box(action_low, action_high),
        "n_envs": 1,
        "learning_rate": float(learning_rate),
    }
    optimizers: list[tuple[str, str | None]] = list(layout.optimizers)
    if layout.entropy_coefficient:
        extra.setdefault("target_entropy", -float(len(action_low)))  # SB3's "auto" needs an env at load
        if str(extra.get("ent_coef", "auto")).startswith("auto"):
            optimizers.append((ENT_COEF_OPTIMIZER, None))
    data.update(extra)
    # own storage per tensor: torch.save would otherwise write the whole storage a view points into
    state = {k: v.detach().to("cpu", torch.float32).clone(memory_format=torch.contiguous_format)
             for k, v in policy_state.items()}
    members = {"data": json.dumps(data, indent=4).encode(), "policy.pth": _torch_bytes(state)}
    for name, prefix in optimizers:
        n_params = 1 if prefix is None else sum(k.startswith(prefix) for k in state)
        members[f"{name}.pth"] = _torch_bytes(fresh_adam_state(n_params, float(learning_rate)))
    members["pytorch_variables.pth"] = _torch_bytes(dict(pytorch_variables or {}))
    atomic_write(Path(path), lambda handle: _write_members(handle, members))


ZIP_DATE = (2020, 1, 1, 0, 0, 0)
"""Every member's timestamp: the same weights give the same bytes, whenever they are written."""


def _write_members(handle: IO[bytes], members: Mapping[str, bytes]) -> None:
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:  # SB3 itself stores, no compression
        for name, payload in members.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            archive.writestr(info, payload)


def sb3_policy_state(algo: Algorithm, action_low: np.ndarray, action_high: np.ndarray) -> dict[str, torch.Tensor]:
    """Our algorithm's networks under SB3's policy.pth keys, float32 on the CPU.

    Our modules are named as SB3's (rlcore.networks), so this is a prefix per module (the registry's SB3 layout),
    plus, where the layout says so (PPO), the action map folded onto [action_low, action_high].
    """
    layout = registry.algorithm_spec(algo.name).sb3
    modules = dict.fromkeys((part.prefix, part.attribute) for part in layout.policy_parts())  # once each, in order
    state = {f"{prefix}{key}": value.detach().to("cpu", torch.float32).clone()
             for prefix, attribute in modules for key, value in getattr(algo, attribute).state_dict().items()}
    return fold_action_map(state, action_low, action_high) if layout.folds_action_map else state


def _pytorch_variables(algo: Algorithm) -> dict[str, torch.Tensor]:
    """SAC's entropy coefficient as SB3 stores it: log_ent_coef (tuned) or ent_coef_tensor (fixed); else none."""
    if not registry.algorithm_spec(algo.name).sb3.entropy_coefficient:
        return {}
    log_alpha = algo.log_alpha.detach().to("cpu", torch.float32)
    if algo.cfg.auto_entropy:
        return {"log_ent_coef": log_alpha.reshape(1).clone()}
    return {"ent_coef_tensor": log_alpha.exp()}


def export_sb3_zip(algo: Algorithm, path: Path, *, obs_low: np.ndarray, obs_high: np.ndarray,
                   action_low: np.ndarray, action_high: np.ndarray, num_timesteps: int = 0) -> None:
    """Write one of our algorithms as an SB3 zip.

    `action_low`/`action_high` are the bounds the policy's [-1, 1] action maps onto in the REAL env (which the
    platform feeds `predict`'s output unchanged): a generic env's own bounds, or the raw torque bounds on the
    soccer tasks. The zip's policy input is our network's input, i.e. the NORMALISED observation when the
    normaliser is enabled (applying it is the caller's business: the submission Preprocessor).
    """
    write_sb3_zip(path, algo=algo.name, policy_state=sb3_policy_state(algo, action_low, action_high),
                  net=algo.cfg.net, obs_low=obs_low, obs_high=obs_high, action_low=action_low,
                  action_high=action_high, learning_rate=algo.cfg.learning_rate,
                  hyperparameters={"num_timesteps": int(num_timesteps),
                                   **registry.algorithm_spec(algo.name).sb3.hyperparameters(algo)},
                  pytorch_variables=_pytorch_variables(algo))
