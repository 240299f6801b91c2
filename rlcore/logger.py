"""Run logging: TensorBoard scalars, a metrics.jsonl line per record, and the console progress line.

The hot loop never calls this: the runner converts accumulated device tensors to floats once per log
interval and hands plain numbers over.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rlcore.fileio import WriteError, output_target


class RunLogger:
    """Writes scalars to TensorBoard (when a directory is given) and to metrics.jsonl."""

    def __init__(self, log_dir: Path | None, tensorboard: bool = True, verbose: bool = True) -> None:
        self.log_dir = log_dir
        self.verbose = verbose
        self._writer = None
        self._jsonl = None
        if log_dir is not None:
            self._path = path = output_target(log_dir / "metrics.jsonl", "metrics.jsonl")  # not a FIFO or device
            try:
                log_dir.mkdir(parents=True, exist_ok=True)
                self._jsonl = open(path, "a", encoding="utf-8")
                if path.stat().st_size and not _ends_with_newline(path):
                    self._jsonl.write("\n")  # a killed run's unfinished line stays apart from the next record
            except OSError as exc:
                raise WriteError(f"cannot append to {path}: {exc.strerror or exc}") from None
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(log_dir))
        self._last_line_len = 0

    def record(self, values: dict[str, float], timestep: int) -> None:
        """Log scalars at a timestep."""
        clean = {k: float(v) for k, v in values.items()}
        if self._writer is not None:
            for key, value in clean.items():
                self._writer.add_scalar(key, value, timestep)
        if self._jsonl is not None:
            try:
                self._jsonl.write(json.dumps({"timestep": timestep, "time": time.time(), **clean}) + "\n")
                self._jsonl.flush()
            except OSError as exc:
                raise WriteError(f"cannot append to {self._path}: {exc.strerror or exc}") from None

    def progress(self, line: str) -> None:
        """One progress line: rewritten in place on a terminal, a new line otherwise."""
        if not self.verbose:
            return
        if sys.stdout.isatty():
            pad = max(0, self._last_line_len - len(line))
            sys.stdout.write("\r" + line + " " * pad)
            self._last_line_len = len(line)
        else:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def message(self, text: str) -> None:
        """A standalone message (eval results, freeze events), on its own line."""
        if not self.verbose:
            return
        if sys.stdout.isatty() and self._last_line_len:
            sys.stdout.write("\n")
            self._last_line_len = 0
        print(text, flush=True)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
        if self._jsonl is not None:
            self._jsonl.close()
        if self.verbose and sys.stdout.isatty() and self._last_line_len:
            sys.stdout.write("\n")


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"
