"""Writing files: the one atomic writer, the one write probe and the save-dir lock.

* `atomic_write(path, write)`: write(file) into a temp file beside the target, fsync, rename it over the
  target. A run killed at any moment leaves the previous complete file or the new one, never half of one.
  The target must be a regular file or absent: a FIFO, a device or a directory is refused, never replaced
  (`--json /dev/stdout` would otherwise turn the terminal's link into a file); a symlink is followed, so the
  link stays and the file it names is replaced. Any OSError (no space left, I/O error, permission) becomes a
  one-line WriteError; the previous file is untouched and no temp file is left.
* `check_output_file` / `check_output_dir`: the same rules, tried before any work is done (a temp file is
  created in the folder and removed), so a bad output path fails in a second, not after hours of training.
* `SaveDirLock`: one run per save dir. The lock is an flock on `.lock` in the dir, released by the kernel
  when its holder dies, so a killed run's lock is taken over by the next one; a live holder's pid is named.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from rlcore.cliutil import UsageError

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock falls back to the pid written in the file
    fcntl = None

_UMASK = os.umask(0)
os.umask(_UMASK)
LOCK_NAME = ".lock"


class WriteError(UsageError):
    """A file could not be written (no space, permissions, not a regular file): one line, exit code 2."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def output_target(path: str | Path, what: str = "output") -> Path:
    """The file a write to `path` replaces: `path`, or what its symlink names; WriteError unless that is a regular
    file or absent."""
    text = str(path)
    if not text.strip():
        raise WriteError(f"{what}: needs a file path, got {text!r}")
    target = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise WriteError(f"{what}: cannot use {str(path)!r} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        raise WriteError(f"{what}: {str(path)!r} is {_kind(mode)}, not a regular file; give a file path")
    return target


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call write(file) on a temp file beside `path`, fsync, then rename it over `path` (module docstring)."""
    target = output_target(path, str(path))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        kept = "the previous file is unchanged" if target.exists() else "nothing was written"
        raise WriteError(f"cannot write {path}: {exc.strerror or exc} ({kept})") from None
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


def _probe(directory: Path, what: str, make: bool = True) -> None:
    try:
        if make:
            directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe.", suffix=".tmp"):
            pass
    except OSError as exc:
        raise WriteError(f"{what}: cannot write into {str(directory)!r} ({exc.strerror or exc})") from None


def check_output_file(path: str | Path, what: str, *, make_parent: bool = True) -> Path:
    """`path` as an output file: a regular file or absent, in a folder we can write (created when missing, unless
    `make_parent` is False: then a missing folder is an error)."""
    target = output_target(path, what)
    _probe(target.parent, what, make_parent)
    return Path(path)


def check_output_dir(path: str | Path, what: str) -> Path:
    """`path` as an output folder: non-empty, a directory or absent, writable (created when missing)."""
    text = str(path)
    if not text.strip():
        raise WriteError(f"{what}: needs a directory path, got {text!r}")
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise WriteError(f"{what}: {text!r} exists and is not a directory")
    _probe(directory, what)
    return directory


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class SaveDirLock:
    """Hold `directory/.lock` for one run (module docstring); a context manager, released on exit."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK_NAME
        self._fd: int | None = None
        self.taken_over: int | None = None
        """The pid of a dead run whose lock this one took over (None when the lock was free)."""

    def acquire(self) -> SaveDirLock:
        output_target(self.path, "--save-dir lock")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
        except OSError as exc:
            raise WriteError(f"--save-dir: cannot create {self.path} ({exc.strerror or exc})") from None
        previous = _read_pid(fd)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise UsageError(f"--save-dir {self.path.parent} is in use by another run (pid {previous}); "
                                 "wait for it, or give another --save-dir") from None
        elif previous is not None and previous != os.getpid() and _alive(previous):
            os.close(fd)
            raise UsageError(f"--save-dir {self.path.parent} is in use by another run (pid {previous}); "
                             "wait for it, or give another --save-dir")
        if previous is not None and previous != os.getpid():
            self.taken_over = previous
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)  # an empty lock file: nobody holds it
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> SaveDirLock:
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
