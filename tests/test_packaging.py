"""Packaging (setup.cfg): the command-line tools install inside `booster_cli`, never as top-level `train` /
`evaluate` modules, every package of the checkout is listed, and the console scripts run the tools."""

from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import console

ROOT = Path(__file__).resolve().parents[1]
CLI_FILES = {"train.py", "evaluate.py", "console.py"}
"""The repository root's .py files: setup.cfg maps the root onto `booster_cli`, so each one is installed."""


def _options() -> configparser.SectionProxy:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def _checkout_packages() -> set[str]:
    """Every directory with an __init__.py reachable through packages from the root (as find_packages walks)."""
    out = set()
    for top in sorted(ROOT.iterdir()):
        if not (top / "__init__.py").is_file():
            continue
        for dirpath, dirnames, _ in os.walk(top):
            dirnames[:] = [d for d in dirnames if (Path(dirpath) / d / "__init__.py").is_file()]
            out.add(Path(dirpath).relative_to(ROOT).as_posix().replace("/", "."))
    return out


def _console_scripts() -> dict[str, str]:
    scripts = {}
    for line in _lines(_options()["options.entry_points"]["console_scripts"]):
        name, target = (part.strip() for part in line.split("=", 1))
        scripts[name] = target
    return scripts


def test_no_top_level_cli_modules_and_every_package_is_listed() -> None:
    options = _options()["options"]
    assert "py_modules" not in options, "train / evaluate must not be installed as top-level modules"
    assert _lines(options["package_dir"]) == ["booster_cli = ."]
    packages = set(_lines(options["packages"]))
    missing = _checkout_packages() - packages
    assert not missing, f"add {sorted(missing)} to `packages` in setup.cfg, or the wheel leaves them out"
    assert packages - _checkout_packages() == {"booster_cli"}


def test_the_root_holds_only_the_command_line_tools() -> None:
    found = {p.name for p in ROOT.glob("*.py")}
    assert found == CLI_FILES, (f"every .py file at the root is installed as booster_cli.<name>; found "
                                f"{sorted(found)}: a new command-line tool goes into CLI_FILES (and console.py), "
                                "library code into a package")


def test_console_scripts_point_at_the_tools() -> None:
    assert _console_scripts() == {"booster-train": "booster_cli.console:train",
                                  "booster-evaluate": "booster_cli.console:evaluate"}


@pytest.mark.parametrize(("entry", "argv", "message"), [
    (console.train, ["--env-id", "Pendulum-v1", "--total-timesteps", "0"], "error: --total-timesteps must be > 0"),
    (console.evaluate, ["--policy", "zero", "--tasks", "nope"], "error: --tasks: unknown task 'nope'"),
])
def test_console_entry_points_answer_bad_input_like_the_scripts(entry, argv, message, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["booster-x", *argv])
    assert entry() == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message), err


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="building a wheel needs setuptools")
def test_the_wheel_holds_the_tools_inside_booster_cli(tmp_path) -> None:
    """Build the wheel from a copy of the sources (a build in place would leave build/ in the checkout)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md", *CLI_FILES):
        shutil.copy2(ROOT / name, src / name)
    for package in sorted({p.split(".")[0] for p in _checkout_packages()}):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(z.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    top_level_modules = {n for n in names if "/" not in n}
    assert not top_level_modules, top_level_modules
    assert {f"booster_cli/{name}" for name in CLI_FILES} <= names
    assert {"envs/fastsim_kernel.c", "rlcore/cpu_bf16_kernel.c", "rlcore/bf16_gemm.c"} <= names  # built on first use
    for name, target in _console_scripts().items():
        assert f"{name} = {target}" in entry_points
