"""Full training state on disk: config + algorithm state + runner counters + RNG states + env metadata.

Every file is written atomically (a temp file in the same directory, then os.replace), so a run killed
at any moment leaves either the previous complete file or the new complete one, never half of one.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from rlcore.algos import build_algorithm
from rlcore.config import AlgoConfig, config_from_dict, config_to_dict

FORMAT_VERSION = 1
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call write(file) on a temp file beside `path`, fsync, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temp_files(directory: Path) -> list[Path]:
    """Delete temp files a killed writer left in `directory` (atomic_write names them .NAME.*.tmp)."""
    removed = []
    for path in Path(directory).glob(".*.tmp"):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) generator states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, *, algo_name: str, config: AlgoConfig, algo_state: dict, obs_shape: tuple[int, ...],
                    action_low: np.ndarray, action_high: np.ndarray, runner_state: dict,
                    metadata: dict | None = None, replay_state: dict | None = None) -> None:
    """Write a resumable checkpoint atomically."""
    payload = {
        "format": FORMAT_VERSION, "algo": algo_name, "config": config_to_dict(config),
        "obs_shape": list(obs_shape), "action_low": np.asarray(action_low, np.float32).tolist(),
        "action_high": np.asarray(action_high, np.float32).tolist(), "algo_state": algo_state,
        "runner": runner_state, "rng": rng_state(), "metadata": metadata or {}, "replay": replay_state,
    }
    atomic_write(Path(path), lambda handle: torch.save(payload, handle))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by save_checkpoint; a wrong or corrupt file raises ValueError."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise ValueError(f"cannot read checkpoint {path}: {exc.__class__.__name__}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION or "algo_state" not in payload:
        raise ValueError(f"{path} is not a checkpoint written by this project")
    return payload


def checkpoint_config(payload: dict[str, Any]) -> AlgoConfig:
    """The algorithm config stored in a checkpoint."""
    return config_from_dict(payload["algo"], payload["config"])


def load_policy(path: Path, device: str | torch.device = "cpu"):
    """(DeployedPolicy, checkpoint payload) of a checkpoint.pt: the exact policy the run evaluated."""
    payload = load_checkpoint(path, map_location=device)
    algo = build_algorithm(payload["algo"], payload["obs_shape"][0], np.asarray(payload["action_low"], np.float32),
                           np.asarray(payload["action_high"], np.float32), checkpoint_config(payload), device)
    algo.load_state_dict(payload["algo_state"])
    return algo.policy, payload
