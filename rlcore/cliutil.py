"""Command-line plumbing shared by train.py, evaluate.py and the bc tools.

Bad input must end in ONE line on stderr and exit code 2, never a traceback. Every check raises
`UsageError`; `run_cli` turns it into that line. argparse's own errors go the same way, and so does an
OSError that escapes a tool (a write that failed: no space left, a vanished folder). Values are checked when
the command line is parsed (`seed`, `finite_float`, `parse_int_list` with its range, `parse_net_arch`), so no
run trains for hours and then dies on a flag at its final evaluation.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from rlcore.safepickle import read_bounded

SEED_MAX = 2**32 - 1
"""Largest seed (numpy's legacy seeding, which train.py uses, takes 0 .. 2**32 - 1)."""
MAX_CONFIG_BYTES = 2**20
"""Largest --config file read (a run's options are a few hundred bytes)."""


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
        print("error: " + " ".join(str(exc).split("\n")), file=sys.stderr)  # one line, whatever the message
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a write or read the tool did not expect to fail (no space left, I/O error)
        where = f": {exc.filename}" if exc.filename else ""
        reason = exc.strerror or " ".join(str(exc).split()) or exc.__class__.__name__
        print(f"error: {reason}{where}", file=sys.stderr)
        return 2


def seed_type(text: str) -> int:
    """argparse type of a seed: an integer in [0, 2**32 - 1]."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: need an integer in [0, {SEED_MAX}]") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"seed {value} is outside [0, {SEED_MAX}]")
    return value


def finite_float(text: str) -> float:
    """argparse type of a finite number (nan and inf are refused)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def parse_int_list(text: str, flag: str, *, minimum: int | None = 0, maximum: int | None = None,
                   distinct: bool = False) -> list[int]:
    """Parse '0,1,2' into ints; raise UsageError naming the flag on anything else (out of range, repeated)."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise UsageError(f"{flag} needs at least one integer, got {text!r}")
    try:
        values = [int(t) for t in items]
    except ValueError:
        raise UsageError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if minimum is not None and any(v < minimum for v in values):
        raise UsageError(f"{flag} values must be >= {minimum}, got {text!r}")
    if maximum is not None and any(v > maximum for v in values):
        raise UsageError(f"{flag} values must be <= {maximum}, got {text!r}")
    if distinct and len(set(values)) != len(values):
        raise UsageError(f"{flag} must be distinct, got {text!r}")
    return values


def parse_net_arch(text: str) -> tuple[int, ...]:
    """--net-arch of train.py and bc.train: '256,256,128' -> (256, 256, 128); anything else is a UsageError.

    Stricter than parse_int_list: an empty entry ('256,,128') is refused, not skipped, so a typo cannot drop a
    layer.
    """
    try:
        sizes = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise UsageError(f"--net-arch must be comma-separated positive integers, got {text!r}") from None
    if any(s <= 0 for s in sizes):
        raise UsageError(f"--net-arch must be comma-separated positive integers, got {text!r}")
    return sizes


def parse_seeds(text: str, flag: str) -> list[int]:
    """Comma-separated distinct seeds in [0, 2**32 - 1]."""
    return parse_int_list(text, flag, minimum=0, maximum=SEED_MAX, distinct=True)


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


def read_yaml_mapping(path: str | Path, flag: str) -> dict:
    """The mapping in the YAML file `path` (empty file: {}), read bounded and safely; UsageError naming `flag` and
    the file when it is unreadable, too large, not UTF-8, not YAML or not a mapping."""
    import yaml

    try:
        raw = read_bounded(path, MAX_CONFIG_BYTES)
    except ValueError as exc:
        raise UsageError(f"{flag} {exc}") from None
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{flag} {path}: not a UTF-8 text file") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise UsageError(f"{flag} {path}: not valid YAML ({exc.__class__.__name__})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{flag} {path}: expected a mapping of option names to values")
    return data


def parse_with_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
                      flag: str = "--config") -> argparse.Namespace:
    """Parse argv, taking defaults from the YAML file named by `flag` when given; flags on the command line win.

    The file maps option names (dashes or underscores, without the leading --) to values: scalars as on the
    command line, true/false for switches, lists for comma-separated options. An unknown key, a wrong type
    or an unreadable file is a UsageError naming the key and the file.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    path = _flag_value(argv, flag)
    if path is not None:
        data = read_yaml_mapping(path, flag)
        actions = {a.dest: a for a in parser._actions if a.option_strings}
        defaults = {}
        for key, value in data.items():
            dest = str(key).lstrip("-").replace("-", "_")
            if dest not in actions or dest in ("help", flag.lstrip("-").replace("-", "_")):
                raise UsageError(f"{flag} {path}: unknown option {key!r}")
            defaults[dest] = config_value(actions[dest], value, f"{flag} {path}: option {key!r}")
        parser.set_defaults(**defaults)
    return parser.parse_args(argv)


def _flag_value(argv: list[str], flag: str) -> str | None:
    for i, token in enumerate(argv):
        if token == flag:
            if i + 1 >= len(argv):
                raise UsageError(f"{flag} needs a file path")
            return argv[i + 1]
        if token.startswith(flag + "="):
            return token.split("=", 1)[1]
    return None


def config_value(action: argparse.Action, value, where: str):
    """A YAML value converted as argparse would convert the same text on the command line."""
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise UsageError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(value, (list, tuple)):
        if not all(isinstance(v, (str, int, float)) for v in value):
            raise UsageError(f"{where}: a list must hold plain values")
        value = ",".join(str(v) for v in value)
    elif not (value is None or isinstance(value, (str, int, float))):
        raise UsageError(f"{where}: expected a plain value, got a {type(value).__name__}")
    try:
        converted = action.type(value) if action.type is not None else (None if value is None else str(value))
    except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
        detail = f" ({exc})" if isinstance(exc, argparse.ArgumentTypeError) else ""
        raise UsageError(f"{where}: invalid value {str(value)[:80]!r}{detail}") from None
    if action.choices is not None and converted not in action.choices:
        raise UsageError(f"{where}: {converted!r} is not one of {', '.join(map(str, action.choices))}")
    return converted
