"""Convert a format-1 checkpoint to format 2, without running anything from the file.

    python -m rlcore.convert_checkpoint runs/x/checkpoint.pt runs/x/checkpoint_v2.pt

Format 1 pickled numpy's RNG state (an ndarray) and numpy scalars, which torch's weights-only loader refuses
(rlcore/checkpoint.py). This reads such a file with that same weights-only loader, allowing exactly the numpy
names a format-1 file holds (numpy.dtype, numpy.ndarray, _reconstruct and scalar, under numpy 1's and 2's
module names), each mapped onto a stand-in that only records its arguments: no numpy constructor sees the
file's data until it is checked to be a bool, integer or float array of the size its bytes give. Any other name
refuses the file. The payload is then written in format 2 (numpy RNG state as its fields, numpy numbers as
Python numbers), checked like every checkpoint, atomically.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlcore.checkpoint import FORMAT_VERSION, _check_payload, _plain, check_state_fits
from rlcore.cliutil import ArgumentParser, UsageError, run_cli
from rlcore.fileio import atomic_write, check_output_file
from rlcore.safepickle import reason


class _PendingDtype:
    """numpy.dtype(spec): a bool, integer or float type; BUILD may set its byte order only."""

    def __init__(self, spec: Any = "f8", align: bool = False, copy: bool = True) -> None:
        if not isinstance(spec, str):
            raise ValueError(f"dtype spec must be a string, got {type(spec).__name__}")
        dtype = np.dtype(spec)
        if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
            raise ValueError(f"dtype {dtype} is not a bool, integer or float type")
        self.dtype = dtype

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.dtype = self.dtype.newbyteorder(state[1])


class _PendingArray:
    """numpy's _reconstruct(ndarray, ...) + BUILD(state): the array is made from the state's bytes once checked."""

    def __init__(self, *args: Any) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 5):
            raise ValueError("array state must be (version, shape, dtype, fortran, bytes)")
        _, shape, dtype, fortran, raw = state
        if not (isinstance(dtype, _PendingDtype) and isinstance(raw, bytes) and isinstance(shape, tuple)
                and all(type(n) is int and n >= 0 for n in shape)):
            raise ValueError("array state must hold a numeric dtype and raw bytes")
        flat = np.frombuffer(raw, dtype=dtype.dtype)  # raises unless the bytes are whole items
        self.array = flat.reshape(shape, order="F" if fortran else "C").copy()


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> _PendingArray:
    if subtype is not _NDARRAY:
        raise ValueError("_reconstruct of something other than numpy.ndarray")
    return _PendingArray()


def _scalar(dtype: Any, data: Any) -> int | float | bool:
    if not (isinstance(dtype, _PendingDtype) and isinstance(data, bytes) and len(data) == dtype.dtype.itemsize):
        raise ValueError("numpy scalar must be a numeric dtype and its bytes")
    return np.frombuffer(data, dtype=dtype.dtype)[0].item()


class _NdarrayName:
    """Stands for numpy.ndarray: only _reconstruct takes it."""


_NDARRAY = _NdarrayName()
_GLOBALS = [(_PendingDtype, "numpy.dtype"), (_NDARRAY, "numpy.ndarray"), _PendingArray,
            *((f, f"{root}.multiarray.{name}") for root in ("numpy.core", "numpy._core")
              for f, name in ((_reconstruct, "_reconstruct"), (_scalar, "scalar")))]
"""What torch's weights-only loader may resolve besides its own tensors and containers, each by its exact name."""


def _resolve(value: Any) -> Any:
    """The payload with every _PendingArray replaced by its array."""
    if isinstance(value, _PendingArray):
        if value.array is None:
            raise ValueError("an array without its state")
        return value.array
    if isinstance(value, dict):
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve(v) for v in value)
    return value


def read_format1(path: Path) -> dict[str, Any]:
    """A format-1 checkpoint's payload with numpy arrays restored; ValueError (one line) otherwise."""
    if not Path(path).is_file():
        raise ValueError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(_GLOBALS):
            payload = _resolve(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:  # refused globals, damaged files, bad array states
        raise ValueError(f"cannot convert {path}: {reason(exc)}") from None
    if not isinstance(payload, dict) or payload.get("format") != 1:
        found = payload.get("format") if isinstance(payload, dict) else None
        raise ValueError(f"{path} is not a format-1 checkpoint (format {found!r})")
    return payload


def convert(payload: dict[str, Any], where: str) -> dict[str, Any]:
    """The format-2 payload of a format-1 one (checked like every checkpoint)."""
    rng = dict(payload.get("rng") or {})
    state = rng.get("numpy")
    if not (isinstance(state, tuple) and len(state) == 5 and state[0] == "MT19937"
            and isinstance(state[1], np.ndarray) and state[1].shape == (624,)):
        raise ValueError(f"{where}: the numpy RNG state is not MT19937's (name, key[624], pos, has_gauss, gauss)")
    rng["numpy"] = {"key": torch.from_numpy(state[1].astype(np.int64)), "pos": int(state[2]),
                    "has_gauss": int(state[3]), "cached_gaussian": float(state[4])}
    try:
        converted = {**payload, "format": FORMAT_VERSION, "rng": rng, "runner": _plain(payload.get("runner"), "runner"),
                     "metadata": _plain(payload.get("metadata") or {}, "metadata")}
        _check_payload(converted)
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as exc:
        raise ValueError(f"{where}: malformed checkpoint: {reason(exc)}") from None
    check_state_fits(converted, where=where)
    return converted


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m rlcore.convert_checkpoint", description=__doc__.split("\n\n")[0])
    parser.add_argument("old", help="a format-1 checkpoint.pt")
    parser.add_argument("new", help="where to write the format-2 checkpoint (may be OLD itself: written atomically)")
    args = parser.parse_args(argv)
    new = check_output_file(args.new, "NEW")
    try:
        payload = convert(read_format1(Path(args.old)), args.old)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    atomic_write(new, lambda handle: torch.save(payload, handle))
    print(f"wrote {new} (format {FORMAT_VERSION}); resume or evaluate with it in place of {args.old}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
