"""Command-line plumbing shared by train.py, evaluate.py and the bc tools.

Bad input must end in ONE line on stderr and exit code 2, never a traceback. Every check raises
`UsageError`; `run_cli` turns it into that line. argparse's own errors go the same way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import torch


class UsageError(ValueError):
    """Bad user input (a flag, a file, a value): reported as one line, exit code 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a parse error raises UsageError instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run `main(argv)`; a UsageError becomes one `error: ...` line on stderr and exit code 2."""
    try:
        return main(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def parse_int_list(text: str, flag: str, *, minimum: int | None = 0) -> list[int]:
    """Parse '0,1,2' into ints; raise UsageError naming the flag on anything else."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise UsageError(f"{flag} needs at least one integer, got {text!r}")
    try:
        values = [int(t) for t in items]
    except ValueError:
        raise UsageError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if minimum is not None and any(v < minimum for v in values):
        raise UsageError(f"{flag} values must be >= {minimum}, got {text!r}")
    return values


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when available; an unknown or unavailable device is a UsageError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown --device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name} asked for CUDA, which is not available here")
    return device
