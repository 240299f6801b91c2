"""Parameter files of the skills (walk, kick): JSON data checked field by field, never code.

A file is {"params": {name: number, ...}, ...other sections (objective, tuner options, command line)}. The
params must name exactly the fields of the dataclass, each a finite number; anything else is a one-line
ValueError naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def check_finite_fields(params: Any, what: str) -> None:
    """ValueError unless every dataclass field of `params` is a finite int or float (not a bool)."""
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"{what} parameter {f.name} must be a finite number, got {value!r}")


def load_param_file(path: Path, cls: type[T], what: str) -> tuple[T, dict[str, Any]]:
    """(an instance of the dataclass `cls` from the file's params, the file's other sections)."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"{what} parameters {path}: cannot read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{what} parameters {path}: not JSON ({exc.__class__.__name__})") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("params"), Mapping):
        raise ValueError(f"{what} parameters {path}: expected an object with a 'params' object")
    params = doc["params"]
    names = [f.name for f in dataclasses.fields(cls)]
    missing = [k for k in names if k not in params]
    unknown = [k for k in params if k not in names]
    if missing or unknown:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unknown {', '.join(map(str, unknown))}"] if unknown else [])
        raise ValueError(f"{what} parameters {path}: {'; '.join(parts)}")
    try:
        instance = cls(**{k: params[k] for k in names})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} parameters {path}: {exc}") from None
    return instance, {k: v for k, v in doc.items() if k != "params"}
