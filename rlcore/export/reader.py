"""Read a Stable-Baselines3 zip (ours or one SB3 saved) back into our networks, without importing SB3.

Reading is safe on untrusted files: `.pth` members are loaded with weights_only=True, and the pickles in
`data` go through the restricted unpickler (rlcore/safepickle.py), which builds only what a gymnasium Box
needs (a size-checked Box and numpy arrays of bool, integer and float); any other reference (the SB3 policy
class, torch.nn activation classes) becomes an inert `Reference` that is read by name, never imported or
called. Only `data`, `policy.pth` and `pytorch_variables.pth` are read, each at most MAX_MEMBER_BYTES
inflated (declared and actual size: a small zip can inflate to gigabytes), in bounded chunks: optimizer
states and SB3's buffers are not used.

Supported: TD3Policy, SACPolicy and ActorCriticPolicy (PPO; A2C zips share it) with the default flatten
features extractor, flat Box spaces, no gSDE. The layer sizes come from the weights, the activation from
policy_kwargs (or SB3's default for the algorithm).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import json
import math
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlcore import registry  # the module, read at call time: the registry imports this package's layout
from rlcore.algos import Algorithm
from rlcore.config import ACTIVATIONS, NetConfig, ObsNormConfig
from rlcore.export.layout import SB3Layout, ZipPart, unfold_action_map
from rlcore.networks import activation_class
from rlcore.policy import DeployedPolicy
from rlcore.safepickle import box_globals, numpy_globals, numpy_random_globals, reason, restricted_loads


@dataclass(frozen=True)
class Reference:
    """A class or function named in a pickle and deliberately not imported."""

    module: str
    name: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise pickle.UnpicklingError(f"refusing to call {self.module}.{self.name} while reading an SB3 zip")


MEMBERS = {"data": 16 * 2**20, "policy.pth": 512 * 2**20, "pytorch_variables.pth": 2**20}
"""The members read, each with the most bytes it may inflate to (an 89 -> 256,256,128 SAC policy.pth is ~1 MB)."""
_CHUNK = 2**20

_ACTIVATION_NAMES = {(activation_class(n).__module__, activation_class(n).__name__): n for n in ACTIVATIONS}


def _data_globals() -> dict[tuple[str, str], Any]:
    """What a Box pickle needs (ours, or SB3's cloudpickle of a seeded Box with its numpy Generator)."""
    return {**numpy_globals(), **numpy_random_globals(), **box_globals()}


def _unpickle(entry: Any, key: str) -> Any:
    """A `data` value: plain JSON as is, a pickled one through the restricted unpickler."""
    if not (isinstance(entry, dict) and ":serialized:" in entry):
        return entry
    try:
        raw = base64.b64decode(entry[":serialized:"], validate=True)
    except (TypeError, ValueError, binascii.Error):
        raise ValueError(f"cannot read '{key}' (not base64)") from None
    return restricted_loads(raw, _data_globals(), what=f"cannot read '{key}'", other=Reference)


@dataclass(frozen=True)
class SB3Zip:
    """What an SB3 zip holds that our engine uses."""

    algo: str
    """The algorithm's registry name (from the pickled policy class)."""
    obs_dim: int
    """Width of the policy's input (the zip's observation_space)."""
    action_low: np.ndarray
    """The zip's action_space: the units `predict` returns (the real env's bounds)."""
    action_high: np.ndarray
    net: NetConfig
    """The actor's hidden layers (from the weights) and activation (policy_kwargs or SB3's default)."""
    policy_state: dict[str, torch.Tensor]
    """policy.pth: SB3's policy state dict."""
    num_timesteps: int
    """Training timesteps recorded in the zip (0 when absent)."""
    log_ent_coef: float | None
    """SAC's log entropy coefficient when the zip has one."""


def read_sb3_zip(path: Path) -> SB3Zip:
    """Read an SB3 zip; anything we cannot read or use raises ValueError with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"SB3 zip not found: {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = {info.filename: info for info in archive.infolist()}
            members = {m: _read_member(archive, infos[m], cap) for m, cap in MEMBERS.items() if m in infos}
    except ValueError as exc:
        raise ValueError(f"cannot read SB3 zip {path}: {exc}") from None
    except Exception as exc:  # BadZipFile, CRC errors, truncated members
        raise ValueError(f"cannot read SB3 zip {path}: {reason(exc)}") from None
    missing = [m for m in ("data", "policy.pth") if m not in members]
    if missing:
        raise ValueError(f"{path} is not an SB3 model zip (no {' or '.join(missing)} member)")
    try:
        data = json.loads(members["data"].decode("utf-8"))
        state = _torch_load(members["policy.pth"])
        variables = _torch_load(members["pytorch_variables.pth"]) if "pytorch_variables.pth" in members else {}
    except Exception as exc:  # bad JSON, a damaged or non-tensor .pth
        raise ValueError(f"cannot read SB3 zip {path}: {reason(exc)}") from None
    if not isinstance(data, dict) or not isinstance(state, dict) or not isinstance(variables, dict):
        raise ValueError(f"{path} is not an SB3 model zip (unexpected member contents)")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"{path} is not an SB3 model zip (policy.pth must map names to tensors)")
    try:
        return _parse(data, state, variables)
    except (KeyError, TypeError, AttributeError, ValueError, OverflowError, IndexError) as exc:
        raise ValueError(f"{path} is not a usable SB3 zip: {reason(exc)}") from None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """A member's bytes, refusing more than `cap` declared or actually inflated (read in chunks)."""
    if info.file_size > cap:
        raise ValueError(f"member {info.filename} declares {info.file_size:,} bytes, more than the {cap:,} read")
    chunks, size = [], 0
    with archive.open(info) as handle:
        while chunk := handle.read(_CHUNK):
            size += len(chunk)
            if size > cap:
                raise ValueError(f"member {info.filename} inflates to more than {cap:,} bytes")
            chunks.append(chunk)
    return b"".join(chunks)



def _torch_load(raw: bytes) -> Any:
    return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)


def _parse(data: dict[str, Any], state: dict[str, torch.Tensor], variables: dict[str, Any]) -> SB3Zip:
    policy_class = _unpickle(data["policy_class"], "policy_class")
    by_class = {Reference(*spec.sb3.policy_class): spec.name for spec in registry.ALGORITHM_SPECS.values()}
    algo = by_class.get(policy_class) if isinstance(policy_class, Reference) else None
    if algo is None:
        known = ", ".join(spec.sb3.policy_class[1] for spec in registry.ALGORITHM_SPECS.values())
        raise ValueError(f"policy class {policy_class} is not one we read ({known})")
    layout = registry.algorithm_spec(algo).sb3
    absent = [k for k in layout.required_keys if k not in state]
    if absent:
        raise ValueError(f"policy.pth lacks {', '.join(absent)}")
    if data.get("use_sde"):
        raise ValueError("gSDE policies (use_sde=True) are not supported")
    obs_space = _unpickle(data["observation_space"], "observation_space")
    action_space = _unpickle(data["action_space"], "action_space")
    for name, space in (("observation", obs_space), ("action", action_space)):
        if not isinstance(space, gym.spaces.Box) or not _flat_box(space):
            raise ValueError(f"the {name} space must be a flat gymnasium Box, got {type(space).__name__}")
    low, high = action_space.low.astype(np.float32), action_space.high.astype(np.float32)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))) or np.any(low > high):
        raise ValueError("the action space must have finite bounds with low <= high")
    policy_kwargs = _unpickle(data.get("policy_kwargs", {}), "policy_kwargs") or {}
    extractor = policy_kwargs.get("features_extractor_class")
    if extractor is not None and not (isinstance(extractor, Reference) and extractor.name == "FlattenExtractor"):
        raise ValueError(f"features extractor {extractor} is not supported (only the default FlattenExtractor)")
    activation_fn = policy_kwargs.get("activation_fn")
    if activation_fn is None:
        activation = layout.default_activation
    else:
        known = isinstance(activation_fn, Reference)
        activation = _ACTIVATION_NAMES.get((activation_fn.module, activation_fn.name)) if known else None
        if activation is None:
            raise ValueError(f"activation {activation_fn} is not one of ours ({', '.join(ACTIVATIONS)})")
    if state[f"{layout.actor_trunk}0.weight"].shape[1] != obs_space.shape[0]:
        raise ValueError(f"the actor's first layer does not take the observation space's {obs_space.shape[0]} inputs")
    log_ent_coef = variables.get("log_ent_coef")
    if log_ent_coef is not None and not (isinstance(log_ent_coef, torch.Tensor) and log_ent_coef.numel() >= 1
                                         and math.isfinite(float(log_ent_coef.detach().reshape(-1)[0]))):
        raise ValueError("pytorch_variables.pth: log_ent_coef must be a finite tensor")
    num_timesteps = data.get("num_timesteps") or 0
    if isinstance(num_timesteps, bool) or not isinstance(num_timesteps, int) or num_timesteps < 0:
        raise ValueError(f"num_timesteps must be an integer >= 0, got {num_timesteps!r}")
    return SB3Zip(algo=algo, obs_dim=int(obs_space.shape[0]), action_low=low, action_high=high,
                  net=NetConfig(net_arch=_hidden_sizes(layout, state), activation=activation),
                  policy_state=dict(state), num_timesteps=num_timesteps,
                  log_ent_coef=None if log_ent_coef is None else float(log_ent_coef.detach().reshape(-1)[0]))


def _flat_box(space: gym.spaces.Box) -> bool:
    """A 1-d Box of at least one dimension whose bounds have its shape (a pickled state can say anything)."""
    shape = getattr(space, "_shape", None)
    low, high = getattr(space, "low", None), getattr(space, "high", None)
    return (isinstance(shape, tuple) and len(shape) == 1 and isinstance(shape[0], int) and shape[0] > 0
            and isinstance(low, np.ndarray) and isinstance(high, np.ndarray)
            and low.shape == shape and high.shape == shape)


def _hidden_sizes(layout: SB3Layout, state: dict[str, torch.Tensor]) -> tuple[int, ...]:
    """Hidden layer sizes of the actor, from the Linear weights of its trunk (without its last Linear where that
    is the action output)."""
    prefix = layout.actor_trunk
    layers = sorted(int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix) and k.endswith(".weight"))
    weights = [state[f"{prefix}{i}.weight"] for i in layers]
    for before, weight in zip(weights, weights[1:], strict=False):  # a chain, or the sizes would be made up
        if weight.ndim != 2 or before.ndim != 2 or weight.shape[1] != before.shape[0]:
            raise ValueError(f"the layers under {prefix!r} in policy.pth do not chain")
    sizes = tuple(int(w.shape[0]) for w in weights)
    sizes = sizes[:-1] if layout.trunk_has_output else sizes
    if not sizes:
        raise ValueError(f"no hidden layers under {prefix!r} in policy.pth")
    return sizes


def check_compatible(model: SB3Zip, obs_dim: int, action_low: np.ndarray, action_high: np.ndarray) -> None:
    """ValueError unless the zip takes `obs_dim` inputs and its action_space equals the real env's bounds."""
    if model.obs_dim != obs_dim:
        raise ValueError(f"the zip's observations have shape ({model.obs_dim},), the env's ({obs_dim},)")
    low, high = np.asarray(action_low, np.float32), np.asarray(action_high, np.float32)
    if model.action_low.shape != low.shape or not (np.allclose(model.action_low, low, rtol=1e-6, atol=0)
                                                   and np.allclose(model.action_high, high, rtol=1e-6, atol=0)):
        raise ValueError(f"the zip's action bounds [{_fmt(model.action_low)}] .. [{_fmt(model.action_high)}] "
                         f"are not the env's [{_fmt(low)}] .. [{_fmt(high)}]")


def _fmt(values: np.ndarray) -> str:
    return ", ".join(f"{v:g}" for v in values)


def _load_part(algo: Algorithm, state: dict[str, torch.Tensor], part: ZipPart) -> str:
    """Copy one part of policy.pth into the algorithm's module (every key and shape must match); its label."""
    prefix = part.prefix
    if part.copy_of is not None and not any(k.startswith(prefix) for k in state):
        prefix = part.copy_of  # a target the zip lacks starts as a copy of its online network
    inside = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    given = {k: v for k, v in inside.items() if k.startswith(part.keys)}
    own = {k: v for k, v in getattr(algo, part.attribute).state_dict().items() if k.startswith(part.keys)}
    missing, unexpected = sorted(set(own) - set(given)), sorted(set(given) - set(own))
    if missing or unexpected:
        raise ValueError(f"the zip's {part.label} does not fit our network: missing {missing}, unexpected {unexpected}")
    for key, value in given.items():
        if value.shape != own[key].shape:
            raise ValueError(f"the zip's {part.label} does not fit our network: {key} has shape "
                             f"{tuple(value.shape)}, ours {tuple(own[key].shape)}")
    with torch.no_grad():
        for key, value in given.items():
            own[key].copy_(value)
    return part.label if prefix == part.prefix else f"{part.label} (copy of {prefix.removesuffix('.')})"


def load_zip_weights(algo: Algorithm, model: SB3Zip, *, actor_only: bool = False) -> list[str]:
    """Copy the zip's networks into `algo` (built with model.net); returns the names of what was loaded.

    Targets absent from the zip start as copies of their online network; SAC's log alpha is taken when the
    zip has one and ours is tuned. PPO's action_net and log std are unfolded from the zip's bounds.
    """
    if algo.name != model.algo:
        raise ValueError(f"the zip holds a {model.algo.upper()} policy, not {algo.name.upper()}")
    layout = registry.algorithm_spec(algo.name).sb3
    state = model.policy_state
    if layout.folds_action_map:
        state = unfold_action_map(state, model.action_low, model.action_high)
    parts = (layout.actor,) if actor_only else layout.policy_parts()
    loaded = [_load_part(algo, state, part) for part in parts]
    if not actor_only and layout.entropy_coefficient and model.log_ent_coef is not None and algo.cfg.auto_entropy:
        with torch.no_grad():
            algo.log_alpha.fill_(model.log_ent_coef)
            algo.alpha.copy_(algo.log_alpha.exp())  # in place: a captured update step reads this tensor
        loaded.append("entropy coefficient")
    return loaded


def policy_from_zip(model: SB3Zip, *, action_low: np.ndarray, action_high: np.ndarray,
                    normalizer: dict[str, Any] | None = None, device: torch.device | str = "cpu") -> DeployedPolicy:
    """The deployed policy of a zip, acting in [action_low, action_high] (the units its caller's env takes).

    `normalizer` is RunningNormalizer.stats() of the observation normaliser the zip was trained with (the zip
    itself holds none); without it the policy sees raw observations.
    """
    norm_cfg = ObsNormConfig() if normalizer is None else ObsNormConfig(
        enabled=bool(normalizer["enabled"]), clip=float(normalizer["clip"]), epsilon=float(normalizer["epsilon"]))
    spec = registry.algorithm_spec(model.algo)
    cfg = dataclasses.replace(spec.config(), net=model.net, obs_norm=norm_cfg)
    algo = spec.build(model.obs_dim, np.asarray(action_low, np.float32), np.asarray(action_high, np.float32), cfg,
                      device)
    load_zip_weights(algo, model, actor_only=True)
    if normalizer is not None:
        algo.normalizer.load_stats(normalizer)
    return algo.policy
