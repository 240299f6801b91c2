"""The dependency rules of docs/design.md, checked on every module's imports (top-level and inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "rlcore": set(),
    "envs": set(),
    "scoring": {"envs", "rlcore"},
    "skills": {"envs", "scoring"},
    "bc": {"envs", "rlcore", "skills"},
    "submission": {"envs", "rlcore", "scoring", "skills"},
    "workflow": {"envs", "rlcore", "scoring", "skills", "bc", "submission"},
    "sweep": {"envs", "rlcore", "scoring", "workflow"},
}
"""Package -> the project packages it may import (scoring: rlcore/seeds.py only, the one evaluation-seed scheme)."""
COMMAND_LINES = {"bc/record.py": {"workflow"}, "skills/tune_walk.py": {"sweep"},
                 "submission/__main__.py": {"workflow"}}
"""Command-line modules inside a package, and what they may import beyond their package's rule."""


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & (set(ALLOWED) | {"train", "evaluate"})


def test_every_package_imports_only_what_its_layer_may() -> None:
    broken = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            extra = _imported_packages(path) - {package} - allowed - COMMAND_LINES.get(relative, set())
            if extra:
                broken.append(f"{relative} imports {', '.join(sorted(extra))}")
    assert not broken, broken


def test_scoring_takes_only_the_seed_scheme_from_rlcore() -> None:
    for path in sorted((ROOT / "scoring").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert {m for m in modules if m.startswith("rlcore")} <= {"rlcore.seeds"}, path


def test_the_rule_table_covers_every_package() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "booster_cli"}
    assert packages == set(ALLOWED)


def test_the_checker_sees_imports_inside_functions(tmp_path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from workflow.training import train\n    import envs.tasks\n")
    assert _imported_packages(module) == {"workflow", "envs"}
