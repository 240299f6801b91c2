"""The C step of the fast twin (envs/fastsim_kernel.c): built on demand, loaded with ctypes, optional.

`load_kernel()` compiles the C file once per (source, mujoco version, platform) with the system C compiler
against the headers and shared library that ship inside the mujoco wheel, into a per-user cache folder
(`$BOOSTER_CACHE`, else `$XDG_CACHE_HOME/booster-soccer-rl`, else `~/.cache/booster-soccer-rl`), and returns
the library, or None when there is no compiler or the build fails: the twin then runs its Python step,
which computes the same thing. `BOOSTER_FASTSIM=python` forces the Python step (tests run both).

`KernelContext` is the C struct `Ctx`: the twin fills its configuration once, points its inputs and outputs
at numpy arrays it owns, and calls `fastsim_step(model, data, ctx, mode, repeat)`.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("fastsim_kernel.c")
N_TERMS = 8
VECTOR_FIELDS = ("goal_team_0_rel_robot", "goal_team_1_rel_robot", "goal_team_0_rel_ball", "goal_team_1_rel_ball",
                 "ball_xpos_rel_robot", "ball_velp_rel_robot", "ball_velr_rel_robot",
                 "goalkeeper_team_0_xpos_rel_robot", "goalkeeper_team_0_velp_rel_robot",
                 "goalkeeper_team_1_xpos_rel_robot", "goalkeeper_team_1_velp_rel_robot",
                 "target_xpos_rel_robot", "target_velp_rel_robot")
"""The info vectors the kernel writes, 3 doubles each in this order, then defender_xpos (9)."""
N_VECTORS = 3 * len(VECTOR_FIELDS) + 9
SENSOR_NAMES = ("robot_accelerometer", "robot_gyro", "robot_velocimeter", "robot_quat")
"""The float32 sensor block the kernel writes: 3, 3, 3 and 4 values (the quaternion already in xyzw order)."""

_int12 = ctypes.c_int * 12
_double12 = ctypes.c_double * 12
_P = ctypes.c_void_p


class KernelContext(ctypes.Structure):
    """Mirror of `Ctx` in fastsim_kernel.c (same fields, same order)."""

    _fields_ = [
        ("kind", ctypes.c_int), ("nact", ctypes.c_int), ("act_idx", _int12),
        ("ctrl_low", _double12), ("ctrl_high", _double12), ("qpos_idx", _int12), ("qvel_idx", _int12),
        ("ball_site", ctypes.c_int), ("robot_site", ctypes.c_int), ("goal_site0", ctypes.c_int),
        ("goal_site1", ctypes.c_int), ("target_site", ctypes.c_int), ("keeper_site0", ctypes.c_int),
        ("keeper_site1", ctypes.c_int), ("keeper_qpos", ctypes.c_int * 2), ("keeper_dof", ctypes.c_int * 2),
        ("keeper_pos", _P), ("keeper_vel", _P), ("defender_geom", ctypes.c_int * 3), ("ball_geom", ctypes.c_int),
        ("geom_role", _P), ("acc_adr", ctypes.c_int), ("gyro_adr", ctypes.c_int), ("vel_adr", ctypes.c_int),
        ("quat_adr", ctypes.c_int), ("fall_height", ctypes.c_double), ("length", ctypes.c_double),
        ("width", ctypes.c_double), ("goal_width", ctypes.c_double), ("goal_height", ctypes.c_double),
        ("goal_depth", ctypes.c_double), ("normal", ctypes.c_double * 3), ("ktt_goal", ctypes.c_double * 3),
        ("max_steps", ctypes.c_int),
        ("torques", _P), ("targets", _P), ("pd_low", _P), ("pd_high", _P), ("kp", _P), ("kd", _P),
        ("reward_w", _P),
        ("hits", ctypes.c_int), ("contact_active", ctypes.c_int), ("elapsed", ctypes.c_int),
        ("terms", _P), ("flags", _P), ("rewards", _P), ("obs", _P), ("vectors", _P), ("sensors", _P),
    ]


def pointer(array: np.ndarray) -> int:
    """The data address of a C-contiguous numpy array (the caller keeps the array alive)."""
    if not array.flags.c_contiguous:
        raise ValueError("kernel buffers must be C-contiguous")
    return array.ctypes.data


def _cache_dir() -> Path:
    if os.environ.get("BOOSTER_CACHE"):
        return Path(os.environ["BOOSTER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "booster-soccer-rl"


def _mujoco_paths() -> tuple[Path, Path, str]:
    import mujoco

    root = Path(mujoco.__file__).parent
    libs = sorted(root.glob("libmujoco.so*")) + sorted(root.glob("libmujoco*.dylib"))
    if not libs or not (root / "include" / "mujoco" / "mujoco.h").is_file():
        raise FileNotFoundError("the mujoco wheel ships no headers or shared library here")
    return root / "include", libs[0], mujoco.__version__


def _build(target: Path, include: Path, library: Path) -> None:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise FileNotFoundError("no C compiler (cc, gcc or clang) on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        out = Path(tmp) / target.name
        command = [compiler, "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-std=c99", f"-I{include}",
                   str(SOURCE), "-o", str(out), str(library), f"-Wl,-rpath,{library.parent}", "-lm"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            first = (result.stderr.strip().splitlines() or ["(no output)"])[0]
            raise RuntimeError(f"compiling {SOURCE.name} failed: {first}")
        os.replace(out, target)


_KERNEL: ctypes.CDLL | None | bool = False
"""False: not tried yet; None: unavailable (the Python step is used); else the loaded library."""


def load_kernel() -> ctypes.CDLL | None:
    """The compiled kernel (built and cached on first use), or None (module docstring)."""
    global _KERNEL
    if os.environ.get("BOOSTER_FASTSIM", "").lower() == "python":
        return None
    if _KERNEL is not False:
        return _KERNEL
    try:
        include, library, version = _mujoco_paths()
        digest = hashlib.sha256(SOURCE.read_bytes() + version.encode() + sys.version.encode()).hexdigest()[:16]
        target = _cache_dir() / f"fastsim_{digest}_{sysconfig.get_platform()}.so"
        if not target.is_file():
            _build(target, include, library)
        lib = ctypes.CDLL(str(target))
        lib.fastsim_step.argtypes = [_P, _P, ctypes.POINTER(KernelContext), ctypes.c_int, ctypes.c_int]
        lib.fastsim_step.restype = ctypes.c_int
        _KERNEL = lib
    except (OSError, RuntimeError, FileNotFoundError) as exc:
        warnings.warn(f"fast sim: the C step is unavailable ({exc}); using the Python step (same results, slower)",
                      stacklevel=2)
        _KERNEL = None
    return _KERNEL
