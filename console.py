"""Entry points of the console scripts `booster-train` and `booster-evaluate` (setup.cfg).

Installed, the repository root's command-line tools are the package `booster_cli` (booster_cli.train,
booster_cli.evaluate, this file as booster_cli.console); in a checkout they are the top-level modules of
`python train.py`. Each entry point runs the tool's `main` the way its `__main__` block does, through
`run_cli`, so bad input is one `error:` line and exit code 2 there too.
"""

from __future__ import annotations

import importlib

from rlcore.cliutil import run_cli


def _run(tool: str) -> int:
    module = importlib.import_module(f"{__package__}.{tool}" if __package__ else tool)
    return run_cli(module.main)


def train() -> int:
    """booster-train: the same as `python train.py`."""
    return _run("train")


def evaluate() -> int:
    """booster-evaluate: the same as `python evaluate.py`."""
    return _run("evaluate")
