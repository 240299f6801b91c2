"""Read observation-normaliser statistics from a file (train.py --vecnormalize-path warm starts).

Accepted files (the statistics are read, never written back):
  * JSON: a model's meta.json (statistics under "normalizer", submission/bundle.py) or a bare
    `RunningNormalizer.stats()` document ({"mean": [...], "var": [...], "count": n, ...});
  * an SB3 `vecnormalize.pkl` (VecNormalize.save), read WITHOUT importing Stable-Baselines3 and without
    running its code: a restricted unpickler rebuilds numpy arrays and turns every Stable-Baselines3 or
    gymnasium object into an inert attribute holder; any other global in the pickle is refused.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"), ("copyreg", "_reconstructor"), ("builtins", "object"),
    ("collections", "OrderedDict"),
}
"""Globals a VecNormalize pickle may name that are rebuilt for real (arrays, scalars), besides numpy.random's
generator classes (the spaces' random generators)."""
_INERT_MODULES = ("stable_baselines3", "gymnasium", "gym")


class _Inert:
    """Stands in for a pickled Stable-Baselines3 / gymnasium object: keeps its state, runs none of its code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass  # constructor arguments (if the pickle passes any) are not needed: only the state is read

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots) form
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)


class _StatsUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS or module.startswith("numpy.random."):
            return super().find_class(module, name)
        if module.split(".")[0] in _INERT_MODULES:
            return type(name, (_Inert,), {})
        raise pickle.UnpicklingError(f"unexpected object {module}.{name}")


def _from_vecnormalize(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            state = _StatsUnpickler(handle).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable SB3 VecNormalize file ({exc})") from None
    rms = getattr(state, "obs_rms", None)
    if rms is None or not hasattr(rms, "mean"):
        raise ValueError(f"{path}: no observation statistics (obs_rms) in this VecNormalize file")
    if isinstance(rms, dict):
        raise ValueError(f"{path}: statistics of a dict observation space; only Box observations are supported")
    return {"mean": np.asarray(rms.mean, np.float64).tolist(), "var": np.asarray(rms.var, np.float64).tolist(),
            "count": float(rms.count), "clip": float(getattr(state, "clip_obs", 10.0)),
            "epsilon": float(getattr(state, "epsilon", 1e-8))}


def _from_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON file ({exc})") from None
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
    mean, var = np.asarray(stats["mean"], np.float64), np.asarray(stats["var"], np.float64)
    if mean.ndim != 1 or mean.shape != var.shape or not (np.isfinite(mean).all() and np.isfinite(var).all()) \
            or (var < 0).any() or not float(stats["count"]) > 0:
        raise ValueError(f"{path}: malformed statistics (need finite 1-d mean and var >= 0 of one shape, count > 0)")
    return {"enabled": True, "clip": 10.0, "epsilon": 1e-8, **stats}
