"""Read observation-normaliser statistics from a file (train.py --vecnormalize-path warm starts).

Accepted files (the statistics are read, never written back):
  * JSON: a model's meta.json (statistics under "normalizer", submission/bundle.py) or a bare
    `RunningNormalizer.stats()` document ({"mean": [...], "var": [...], "count": n, ...});
  * an SB3 `vecnormalize.pkl` (VecNormalize.save), read WITHOUT importing Stable-Baselines3 and without
    running its code: the restricted unpickler (rlcore/safepickle.py) rebuilds numpy arrays and turns the
    Stable-Baselines3 and gymnasium classes such a file names (INERT_CLASSES) into inert attribute holders;
    any other global in the pickle is refused.
Every statistic is checked before use (rlcore.normalizer.check_stats): finite 1-d mean and var of one shape,
var >= 0, count > 0, clip and epsilon finite and > 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rlcore.normalizer import check_stats
from rlcore.safepickle import MAX_PICKLE_BYTES, numpy_globals, numpy_random_globals, read_bounded, restricted_loads

MAX_JSON_BYTES = 64 * 2**20
"""Largest JSON statistics file read (a meta.json of an 89-dim normaliser is a few kilobytes)."""
INERT_CLASSES = (
    ("stable_baselines3.common.vec_env.vec_normalize", "VecNormalize"),
    ("stable_baselines3.common.running_mean_std", "RunningMeanStd"),
    *((f"{gym}.spaces.{module}", cls) for gym in ("gymnasium", "gym")
      for module, cls in (("box", "Box"), ("dict", "Dict"), ("discrete", "Discrete"),
                          ("multi_discrete", "MultiDiscrete"), ("multi_binary", "MultiBinary"))),
)
"""Classes a VecNormalize pickle names (the wrapper, its statistics, its spaces): rebuilt as _Inert holders."""


class _Inert:
    """Stands in for a pickled Stable-Baselines3 / gymnasium object: keeps its state, runs none of its code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass  # constructor arguments (if the pickle passes any) are not needed: only the state is read

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots) form
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)


def _vecnormalize_globals() -> dict[tuple[str, str], Any]:
    inert = {pair: type(pair[1], (_Inert,), {}) for pair in INERT_CLASSES}
    return {**numpy_globals(), **numpy_random_globals(), **inert}


def _number(value: Any) -> float:
    """A plain or numpy real number as a float (ValueError for anything else: no __float__ of a stranger's type)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _array(value: Any) -> list[float]:
    if isinstance(value, np.ndarray):
        return value.astype(np.float64).tolist()
    if isinstance(value, (list, tuple)):
        return [_number(v) for v in value]
    raise ValueError(f"expected an array, got {type(value).__name__}")


def _from_vecnormalize(path: Path) -> dict[str, Any]:
    state = restricted_loads(read_bounded(path, MAX_PICKLE_BYTES), _vecnormalize_globals(),
                             what=f"{path}: not a readable SB3 VecNormalize file")
    rms = getattr(state, "obs_rms", None) if isinstance(state, _Inert) else None
    if isinstance(rms, dict):
        raise ValueError(f"{path}: statistics of a dict observation space; only Box observations are supported")
    if not isinstance(rms, _Inert) or not {"mean", "var", "count"} <= set(vars(rms)):
        raise ValueError(f"{path}: no observation statistics (obs_rms) in this VecNormalize file")
    try:
        return {"mean": _array(rms.mean), "var": _array(rms.var), "count": _number(rms.count),
                "clip": _number(getattr(state, "clip_obs", 10.0)), "epsilon": _number(getattr(state, "epsilon", 1e-8))}
    except ValueError as exc:
        raise ValueError(f"{path}: malformed statistics ({exc})") from None


def _from_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(read_bounded(path, MAX_JSON_BYTES).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path}: not a JSON file ({exc.__class__.__name__})") from None
    stats = document.get("normalizer", document) if isinstance(document, dict) else None
    if not isinstance(stats, dict) or not {"mean", "var", "count"} <= set(stats):
        raise ValueError(f"{path}: no normaliser statistics (mean, var, count) in this JSON file")
    return {key: stats[key] for key in ("mean", "var", "count", "clip", "epsilon") if key in stats}


def read_normalizer_stats(path: str | Path) -> dict[str, Any]:
    """Statistics in `RunningNormalizer.load_stats` form (enabled); ValueError with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    stats = _from_json(path) if path.suffix == ".json" else _from_vecnormalize(path)
    try:
        return check_stats({"enabled": True, "clip": 10.0, "epsilon": 1e-8, **stats})
    except ValueError as exc:
        raise ValueError(f"{path}: malformed statistics: {exc}") from None
