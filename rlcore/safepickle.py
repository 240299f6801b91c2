"""The one restricted unpickler: every pickle the project reads (SB3 zip `data` entries, VecNormalize files).

A pickle is a program: GLOBAL / STACK_GLOBAL name any importable object and REDUCE calls it, so loading a
stranger's pickle with `pickle.load` runs their code. This unpickler never imports anything itself:
* a global resolves only when its exact (module, name) pair is in the caller's table, to the object the table
  holds; a dotted name is refused outright (pickle's own find_class walks "a.b.c" attribute by attribute,
  and from any Cython module's `__builtins__` that reaches `eval`);
* any other global is refused, or, when the caller passes `other`, becomes what `other` makes of it (an inert
  stand-in that is read by name and never called);
* persistent ids are refused; the input is bounded (MAX_PICKLE_BYTES) and so is every array or space an allowed
  constructor is asked to build (MAX_ELEMENTS), so a small file cannot ask for gigabytes;
* every failure is one ValueError line naming the file (or entry) and the problem.

The tables below are what a numpy array, a seeded numpy Generator and a gymnasium Box pickle name (checked on
numpy 1 and 2, SB3 2.x zips and VecNormalize files); callers combine them with their own entries.
"""

from __future__ import annotations

import io
import math
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

MAX_PICKLE_BYTES = 16 * 2**20
"""Largest pickle read (16 MiB): a VecNormalize file or a zip's spaces are kilobytes."""
MAX_ELEMENTS = 2**22
"""Largest array (elements) or Box an allowed constructor builds from a pickle."""

Globals = Mapping[tuple[str, str], Any]


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves exactly the (module, name) pairs of `allowed`; `other(module, name)` or an error for the rest."""

    def __init__(self, file: io.BufferedIOBase, allowed: Globals,
                 other: Callable[[str, str], Any] | None = None) -> None:
        super().__init__(file)
        self._allowed = allowed
        self._other = other

    def find_class(self, module: str, name: str) -> Any:
        if "." in name:
            raise pickle.UnpicklingError(f"refusing the dotted name {module}.{name}")
        key = (module, name)
        if key in self._allowed:
            return self._allowed[key]
        if self._other is not None:
            return self._other(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name} (not an object this file may hold)")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing a persistent id")


def restricted_loads(data: bytes, allowed: Globals, *, what: str, other: Callable[[str, str], Any] | None = None,
                     max_bytes: int = MAX_PICKLE_BYTES) -> Any:
    """Unpickle `data` through RestrictedUnpickler; ValueError "`what`: reason" (one line) on any failure."""
    if len(data) > max_bytes:
        raise ValueError(f"{what}: {len(data):,} bytes of pickle, more than the {max_bytes:,} read")
    try:
        return RestrictedUnpickler(io.BytesIO(data), allowed, other).load()
    except Exception as exc:  # a damaged or hostile pickle raises many types (MemoryError and RecursionError too)
        raise ValueError(f"{what}: {reason(exc)}") from None


def restricted_load(path: str | Path, allowed: Globals, *, other: Callable[[str, str], Any] | None = None,
                    max_bytes: int = MAX_PICKLE_BYTES) -> Any:
    """Unpickle the file `path` (at most `max_bytes` of it is read) like `restricted_loads`."""
    return restricted_loads(read_bounded(path, max_bytes), allowed, what=str(path), other=other, max_bytes=max_bytes)


def read_bounded(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; ValueError (one line) otherwise."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc.__class__.__name__}") from None
    if len(data) > max_bytes:
        raise ValueError(f"{path}: larger than the {max_bytes:,} bytes this reader accepts")
    return data


def reason(exc: BaseException) -> str:
    """One line naming an exception (messages from pickle, zipfile or torch can span lines)."""
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0]}" if text else exc.__class__.__name__


# ---------------------------------------------------------------------------------------------- tables
def _check_elements(shape: Any, what: str) -> None:
    try:
        count = math.prod(int(n) for n in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    except (TypeError, ValueError):
        raise pickle.UnpicklingError(f"{what}: bad shape {shape!r}") from None
    if count > MAX_ELEMENTS:
        raise pickle.UnpicklingError(f"{what}: {count:,} elements, more than the {MAX_ELEMENTS:,} allowed")


class _NdarrayType:
    """Stands for numpy.ndarray in a pickle: only `_reconstruct` may use it (calling it would allocate freely)."""


_NDARRAY = _NdarrayType()


def _dtype(spec: Any, align: bool = False, copy: bool = True) -> np.dtype:
    """numpy.dtype of a plain bool, integer or float type only: object and structured dtypes are how a pickle
    gets numpy to treat bytes as object pointers (their __setstate__ takes the object flag from the file)."""
    if not isinstance(spec, (str, bytes)):
        raise pickle.UnpicklingError(f"dtype: unexpected spec {type(spec).__name__}")
    try:
        dtype = np.dtype(spec.decode("ascii") if isinstance(spec, bytes) else spec)
    except (TypeError, ValueError, UnicodeDecodeError):
        raise pickle.UnpicklingError(f"dtype: {spec!r} is not a dtype") from None
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise pickle.UnpicklingError(f"dtype: {dtype} is not a bool, integer or float type")
    return dtype


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not _NDARRAY:
        raise pickle.UnpicklingError("numpy _reconstruct of something other than numpy.ndarray")
    _check_elements(shape, "array")
    return np.ndarray.__new__(np.ndarray, shape, _dtype(dtype))


def _scalar(dtype: Any, data: Any) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf" or not isinstance(data, bytes):
        raise pickle.UnpicklingError("numpy scalar: not a bool, integer or float from bytes")
    return _numpy_core("multiarray").scalar(dtype, data)


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: str, axis_order: Any = None) -> np.ndarray:
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf" or not isinstance(buf, (bytes, bytearray)):
        raise pickle.UnpicklingError("numpy _frombuffer: not a bool, integer or float array from bytes")
    _check_elements(shape, "array")
    return _numpy_core("numeric")._frombuffer(buf, dtype, shape, order, axis_order)


def _array(values: Any, dtype: Any = None) -> np.ndarray:
    """numpy.array of nested lists, counting the leaves first (shared sub-lists multiply them)."""
    budget, stack = MAX_ELEMENTS, [values]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            budget -= len(item)
            if budget < 0:
                raise pickle.UnpicklingError(f"array: more than the {MAX_ELEMENTS:,} elements allowed")
            stack.extend(item)
    array = np.array(values, dtype=None if dtype is None else _dtype(dtype))
    if array.dtype.kind not in "biuf":
        raise pickle.UnpicklingError(f"array: {array.dtype} is not a bool, integer or float type")
    return array


def _numpy_core(module: str) -> Any:
    import importlib

    for root in ("numpy._core", "numpy.core"):  # numpy 2, numpy 1
        try:
            return importlib.import_module(f"{root}.{module}")
        except ImportError:
            continue
    raise ImportError(f"numpy has no {module} module")


def numpy_globals() -> dict[tuple[str, str], Any]:
    """What pickled numpy arrays, dtypes and scalars name, under numpy 1's and numpy 2's module names: checked
    versions of each that build bool, integer and float values only, of at most MAX_ELEMENTS."""
    table: dict[tuple[str, str], Any] = {("numpy", "dtype"): _dtype, ("numpy", "ndarray"): _NDARRAY,
                                         ("numpy", "array"): _array}
    for root in ("numpy.core", "numpy._core"):
        table[(f"{root}.multiarray", "_reconstruct")] = _reconstruct
        table[(f"{root}.multiarray", "scalar")] = _scalar
        table[(f"{root}.numeric", "_frombuffer")] = _frombuffer
    return table


def numpy_random_globals() -> dict[tuple[str, str], Any]:
    """What a pickled numpy Generator names (a seeded gymnasium space carries one)."""
    import numpy.random._pickle as rnd_pickle
    from numpy.random import MT19937, PCG64, PCG64DXSM, SFC64, Philox, bit_generator

    table: dict[tuple[str, str], Any] = {
        ("numpy.random._pickle", name): getattr(rnd_pickle, name)
        for name in ("__generator_ctor", "__bit_generator_ctor", "__randomstate_ctor")}
    for module, cls in (("_mt19937", MT19937), ("_pcg64", PCG64), ("_pcg64", PCG64DXSM), ("_philox", Philox),
                        ("_sfc64", SFC64)):
        table[(f"numpy.random.{module}", cls.__name__)] = cls
    table[("numpy.random.bit_generator", "SeedSequence")] = bit_generator.SeedSequence
    table[("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence")] = getattr(
        bit_generator, "__pyx_unpickle_SeedSequence")
    return table


class CheckedBox(gym.spaces.Box):
    """gymnasium's Box, refusing a shape of more than MAX_ELEMENTS (Box(0, 1, (10**9,)) fills gigabytes)."""

    def __init__(self, low: Any, high: Any, shape: Any = None, dtype: Any = np.float32, seed: Any = None) -> None:
        if shape is not None:
            _check_elements(shape, "Box")
        for bound in (low, high):
            if np.ndim(bound) and np.size(bound) > MAX_ELEMENTS:
                raise pickle.UnpicklingError("Box: bounds larger than allowed")
        super().__init__(low, high, shape, dtype, seed)


def box_globals() -> dict[tuple[str, str], Any]:
    """A pickled gymnasium Box (by constructor call, or by class plus state), built as a CheckedBox."""
    return {("gymnasium.spaces.box", "Box"): CheckedBox}
