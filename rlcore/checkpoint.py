"""Full training state on disk: config + algorithm state + runner counters + RNG states + env metadata.

Every file is written atomically (rlcore.fileio.atomic_write), so a run killed at any moment leaves either
the previous complete file or the new complete one, never half of one.

Format 2 holds only tensors and plain data (dicts, lists, tuples, str, int, float, bool, None): the numpy RNG
state is stored as its fields with the key as a tensor, numpy scalars in metadata become Python numbers. So a
checkpoint loads with `torch.load(weights_only=True)`, which runs no code from the file; a file that needs
more (a format-1 checkpoint, which pickled numpy's RNG state, or a file built to run code) is refused with a
one-line error. Format 1 files convert deliberately with `python -m rlcore.convert_checkpoint OLD NEW`
(rlcore/convert_checkpoint.py, which reads them without running code either).

`load_checkpoint` checks the structure before anything uses it (keys and types, a known algorithm, a valid
config, finite action bounds, RNG states that load); `check_state_fits` checks that the saved algorithm state
loads into the network the config describes, on the meta device (nothing allocated, so a config asking for a
gigantic network fails before any memory is taken).
"""

from __future__ import annotations

import contextlib
import math
import pickle
import random
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlcore.algos import Algorithm
from rlcore.config import AlgoConfig, config_from_dict, config_to_dict, portable_config
from rlcore.fileio import atomic_write
from rlcore.registry import ALGORITHM_SPECS, algorithm_spec
from rlcore.safepickle import reason

FORMAT_VERSION = 2
CONVERT_COMMAND = "python -m rlcore.convert_checkpoint"
"""How a format-1 checkpoint is converted (named in the error that refuses one)."""
_KEYS = ("format", "algo", "config", "obs_shape", "action_low", "action_high", "algo_state", "runner", "rng",
         "metadata")


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) generator states, as plain data and tensors."""
    _, key, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": {"key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                       "cached_gaussian": float(cached)},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _numpy_state(state: dict[str, Any]) -> tuple:
    key = state["key"]
    if not (isinstance(key, torch.Tensor) and key.shape == (624,)):
        raise ValueError("numpy RNG key must be a tensor of 624 entries")
    return ("MT19937", key.cpu().numpy().astype(np.uint32), int(state["pos"]), int(state["has_gauss"]),
            float(state["cached_gaussian"]))


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(_numpy_state(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _check_rng(state: Any) -> None:
    """ValueError unless `state` loads into fresh generators (nothing global is touched)."""
    if not isinstance(state, dict) or not {"python", "numpy", "torch"} <= set(state):
        raise ValueError("RNG state must hold python, numpy and torch")
    python = state["python"]
    random.Random().setstate(python if isinstance(python, tuple) else ())
    np.random.RandomState().set_state(_numpy_state(state["numpy"]))
    torch.Generator().set_state(state["torch"].cpu())
    cuda = state.get("cuda", [])
    if not (isinstance(cuda, (list, tuple)) and all(isinstance(t, torch.Tensor) for t in cuda)):
        raise ValueError("CUDA RNG states must be a list of tensors")


def _plain(value: Any, where: str) -> Any:
    """`value` as tensors and plain data only (numpy numbers become Python ones); TypeError naming the rest."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v, f"{where}.{k}") for k, v in value.items()}
    raise TypeError(f"checkpoint {where}: {type(value).__name__} is not plain data (tensors, numbers, strings, lists, "
                    "dicts)")


def save_checkpoint(path: Path, *, algo_name: str, config: AlgoConfig, algo_state: dict, obs_shape: tuple[int, ...],
                    action_low: np.ndarray, action_high: np.ndarray, runner_state: dict,
                    metadata: dict | None = None, replay_state: dict | None = None) -> None:
    """Write a resumable checkpoint atomically (a WriteError leaves the previous file intact)."""
    payload = {
        "format": FORMAT_VERSION, "algo": algo_name, "config": config_to_dict(config),
        "obs_shape": list(obs_shape), "action_low": np.asarray(action_low, np.float32).tolist(),
        "action_high": np.asarray(action_high, np.float32).tolist(), "algo_state": algo_state,
        "runner": _plain(runner_state, "runner"), "rng": rng_state(), "metadata": _plain(metadata or {}, "metadata"),
        "replay": replay_state,
    }
    atomic_write(Path(path), lambda handle: torch.save(payload, handle))


def _refusal(path: Path, what: str) -> str:
    """Why a file that torch's weights-only loader refused is refused (read without unpickling anything)."""
    try:
        names = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # not even a torch zip: say it is unreadable
        names = []
    if not names:
        return f"cannot read {what} {path}: not a torch file written by this project"
    if all(n.startswith(("numpy.", "_codecs.")) for n in names):
        return (f"{path} is a format-1 checkpoint (it pickles numpy objects, which are not loaded without running "
                f"the file's code): convert it once with `{CONVERT_COMMAND} {path} NEW.pt` and use NEW.pt")
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return (f"{path} is not a {what} of this project: it names {shown}, which this project's files never hold "
            "(refused without loading; a file made to run code looks like this)")


def read_weights_only(path: Path, map_location: str | torch.device = "cpu", what: str = "checkpoint") -> Any:
    """torch.load(weights_only=True) of `path`; ValueError (one line) when it is missing or not a weights-only
    torch file. The one way this project reads a .pt file (checkpoints, BC payloads)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(_refusal(path, what)) from None
    except Exception as exc:  # torch raises many types for a damaged file
        raise ValueError(f"cannot read {what} {path}: {reason(exc)}") from None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint written by save_checkpoint; ValueError naming the file and the problem."""
    return check_checkpoint(read_weights_only(path, map_location), path)


def check_checkpoint(payload: Any, path: Path | str) -> dict[str, Any]:
    """`payload` (read from `path`) checked as a checkpoint (module docstring); ValueError naming the problem."""
    if not isinstance(payload, dict) or "algo_state" not in payload:
        raise ValueError(f"{path} is not a checkpoint written by this project")
    if payload.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format {payload.get('format')!r}, this code reads {FORMAT_VERSION}"
                         + (f"; convert it with `{CONVERT_COMMAND} {path} NEW.pt`" if payload.get("format") == 1
                            else ""))
    try:
        _check_payload(payload)
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError, OverflowError) as exc:
        raise ValueError(f"{path}: malformed checkpoint: {reason(exc)}") from None
    return payload


def _check_payload(payload: dict[str, Any]) -> None:
    missing = [k for k in _KEYS if k not in payload]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if payload["algo"] not in ALGORITHM_SPECS:
        raise ValueError(f"unknown algorithm {payload['algo']!r} (known: {', '.join(ALGORITHM_SPECS)})")
    if not isinstance(payload["config"], dict):
        raise ValueError("config must be a mapping")
    config_from_dict(algorithm_spec(payload["algo"]).config, payload["config"])
    shape = payload["obs_shape"]
    if not (isinstance(shape, list) and len(shape) == 1 and type(shape[0]) is int and shape[0] > 0):
        raise ValueError(f"obs_shape must be [width > 0], got {shape!r}")
    low, high = payload["action_low"], payload["action_high"]
    if not (isinstance(low, list) and isinstance(high, list) and 0 < len(low) == len(high)
            and all(_finite(v) for v in low + high) and all(a <= b for a, b in zip(low, high, strict=True))):
        raise ValueError("action_low/action_high must be finite lists of one length with low <= high")
    for key in ("algo_state", "runner", "metadata"):
        if not isinstance(payload[key], dict):
            raise ValueError(f"{key} must be a mapping")
    runner = payload["runner"]
    for key in ("timesteps", "episodes"):
        if key in runner and not (type(runner[key]) is int and runner[key] >= 0):
            raise ValueError(f"runner {key} must be an integer >= 0, got {runner[key]!r}")
    if not (isinstance(runner.get("last_eval", {}), dict)
            and all(isinstance(k, str) and _finite(v, nan_ok=True) for k, v in runner.get("last_eval", {}).items())):
        raise ValueError("runner last_eval must map names to numbers")
    for key in ("episode_returns", "episode_lengths"):
        if not (isinstance(runner.get(key, []), list) and all(_finite(v) for v in runner.get(key, []))):
            raise ValueError(f"runner {key} must be a list of numbers")
    _check_rng(payload["rng"])
    replay = payload.get("replay")
    if replay is not None and not isinstance(replay, dict):
        raise ValueError("replay must be a mapping or absent")


def _finite(value: Any, nan_ok: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return nan_ok or math.isfinite(value)


@contextlib.contextmanager
def on_meta_device() -> Iterator[None]:
    """Build modules on the meta device (shapes without memory) and load states into them to check they fit."""
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "copying into a meta parameter is a no-op": the point
        yield


def checkpoint_config(payload: dict[str, Any]) -> AlgoConfig:
    """The algorithm config stored in a checkpoint, its speed options (bf16, CUDA graphs) at their defaults: the
    state is fp32 whatever the run used, so it loads on any device (rlcore.config.portable_config)."""
    return portable_config(config_from_dict(algorithm_spec(payload["algo"]).config, payload["config"]))


def check_state_fits(payload: dict[str, Any], cfg: AlgoConfig | None = None, where: str = "checkpoint") -> None:
    """ValueError unless the checkpoint's algorithm state loads into the network `cfg` (default: the checkpoint's
    own config) describes: keys, tensor shapes, optimizer states, normaliser statistics. Tried on the meta
    device, so nothing is allocated."""
    cfg = portable_config(cfg) if cfg is not None else checkpoint_config(payload)  # meta runs no bf16
    low, high = (np.asarray(payload[k], np.float32) for k in ("action_low", "action_high"))
    try:
        with on_meta_device():
            meta = algorithm_spec(payload["algo"]).build(payload["obs_shape"][0], low, high, cfg, "meta")
            meta.load_state_dict(payload["algo_state"])
        _check_optimizer_shapes(meta)
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError, AttributeError) as exc:
        raise ValueError(f"{where}: the saved state does not fit the network "
                         f"({cfg.net.net_arch}, {cfg.net.activation}): {reason(exc)}") from None


def _check_optimizer_shapes(algo: Algorithm) -> None:
    """Adam's moments must have their parameter's shape (load_state_dict does not look; the first step would)."""
    for optimizer in algo.optimizers():
        for group in optimizer.param_groups:
            for param in group["params"]:
                for key, value in optimizer.state.get(param, {}).items():
                    if isinstance(value, torch.Tensor) and value.ndim and value.shape != param.shape:
                        raise ValueError(f"optimizer state {key} of shape {tuple(value.shape)} for a parameter of "
                                         f"shape {tuple(param.shape)}")


def restore_algorithm(payload: dict[str, Any], device: str | torch.device = "cpu",
                      where: str = "checkpoint") -> Algorithm:
    """The checkpoint's algorithm, built from its config and loaded (ValueError when the state does not fit)."""
    check_state_fits(payload, where=where)
    algo = algorithm_spec(payload["algo"]).build(payload["obs_shape"][0], np.asarray(payload["action_low"], np.float32),
                                                 np.asarray(payload["action_high"], np.float32),
                                                 checkpoint_config(payload), device)
    algo.load_state_dict(payload["algo_state"])
    return algo


def load_policy(path: Path, device: str | torch.device = "cpu"):
    """(DeployedPolicy, checkpoint payload) of a checkpoint.pt: the exact policy the run evaluated."""
    payload = load_checkpoint(path, map_location=device)
    return restore_algorithm(payload, device, where=str(path)).policy, payload
