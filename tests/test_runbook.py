"""quick_start_examples.md in miniature: every command of its bash blocks runs, in order, in a fresh folder,
with only the size flags shrunk (MINIATURE), so the runbook cannot drift from the code.

The tools run in-process (their `main`), the few shell helpers (mkdir, printf) through bash; setup lines
(venv, pip) and the TensorBoard viewer are skipped. A command of any other kind fails the test: a new
step in the document needs a line here.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import evaluate
import train
from bc import build_dataset, record
from bc import train as bc_train
from rlcore.cliutil import run_cli
from submission import __main__ as submission_cli
from tests.controller_files import write_controller
from tests.mocap_files import clip_arrays, write_clip

DOC = Path(__file__).resolve().parents[1] / "quick_start_examples.md"
TOOLS: dict[str, Callable] = {
    "python train.py": train.main,
    "python evaluate.py": evaluate.main,
    "python -m bc.record": record.main,
    "python -m bc.train": bc_train.main,
    "python -m bc.build_dataset": build_dataset.main,
    "python -m submission": submission_cli.main,
}
SKIPPED = ("python3 -m venv", ". .venv/bin/activate", "pip install", "tensorboard", "huggingface-cli download")
SHELL = ("mkdir", "printf")
MINIATURE = {
    "python -m bc.record": {"--seeds": "0", "--max-episode-steps": "150"},
    "python -m bc.train": {"--epochs": "1"},
    "python train.py": {"--total-timesteps": "200", "--eval-freq": "100", "--eval-episodes": "1",
                        "--eval-seeds": "0", "--n-envs": "3", "--batch-size": "32", "--max-episode-steps": "100",
                        "--freeze-until-step": "100", "--actor-learning-starts": "10"},
    "python evaluate.py": {"--episodes": "1", "--eval-seeds": "0", "--max-episode-steps": "100"},
}
"""Per tool: flag -> tiny value, replacing the document's value or added when absent."""
ONLY_REPLACED = {"--freeze-until-step", "--actor-learning-starts"}
"""Flags shrunk only where the document uses them (they need other flags)."""
BY_ALGO = {"ppo": {"--n-steps": "32"}, "td3": {"--buffer-size": "4000", "--learning-starts": "50"},
           "sac": {"--buffer-size": "4000", "--learning-starts": "50"}}
"""train.py flags added for one algorithm family only."""


def hub_stand_ins(root: Path) -> None:
    """Small stand-ins where the document's `huggingface-cli download` lines put the hub's files."""
    models = root / "data" / "booster_soccer_models"
    for folder in ("config", "robot"):
        (models / folder).mkdir(parents=True)
    controller = write_controller(models / "robot", stem="lower_t1_control")
    controller.with_suffix(".yaml").rename(models / "config" / "lower_t1.yaml")  # the hub keeps them apart
    clips = root / "data" / "booster_dataset" / "soccer" / "booster_lower_t1"
    clips.mkdir(parents=True)
    write_clip(clips / "walking.npz", **clip_arrays(n=21, velocity=(0.5, 0.0, 0.0)))
    write_clip(clips / "goal_kick.npz", **clip_arrays())


def commands(text: str) -> list[str]:
    """The commands of the ```bash blocks, continuation lines joined and `&&` chains split, in order."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            out += [part.strip() for part in line.split("&&") if part.strip() and not part.strip().startswith("#")]
    return out


def miniature(tool: str, argv: list[str]) -> list[str]:
    """argv with the tool's size flags replaced by MINIATURE's (a resumed run gets a few more steps)."""
    argv = list(argv)
    overrides = {flag: value for flag, value in MINIATURE.get(tool, {}).items()
                 if flag not in ONLY_REPLACED or flag in argv}
    if tool == "python train.py":
        overrides.update(BY_ALGO[argv[argv.index("--algo") + 1] if "--algo" in argv else "td3"])
        if any(a.endswith("checkpoint.pt") for a in argv):
            overrides["--total-timesteps"] = "300"
    for flag, value in overrides.items():
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    return argv


def test_document_has_the_whole_workflow() -> None:
    steps = commands(DOC.read_text())
    for needle in ("bc.record", "bc.train --dataset", "--algo td3", "--algo sac", "--algo ppo", "--resume-model",
                   "--config", "evaluate.py --model", "python -m submission", "--action-mode command",
                   "bc.build_dataset", "--torchscript", "--policy striker", "--low-level-controller walk"):
        assert any(needle in step for step in steps), needle


@pytest.mark.slow
def test_runbook_in_miniature(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    hub_stand_ins(tmp_path)
    ran = []
    for step in commands(DOC.read_text()):
        if step.startswith(SKIPPED):
            continue
        if step.startswith(SHELL):
            subprocess.run(["bash", "-c", step], check=True, cwd=tmp_path)
            continue
        tool = next((t for t in TOOLS if step.startswith(t + " ")), None)
        assert tool is not None, f"quick_start_examples.md has a command this test does not know: {step}"
        argv = miniature(tool, shlex.split(step[len(tool):]))
        assert run_cli(TOOLS[tool], argv) == 0, step
        ran.append(tool)
    assert ran.count("python train.py") == 8 and "python -m submission" in ran
    for run in ("td3_ft", "sac_ft", "ppo_ft", "ktt_ft", "td3_yaml"):
        assert (tmp_path / "runs" / run / "final_model.zip").is_file(), run
    assert (tmp_path / "runs" / "cmd_ft" / "submission_final_torchscript" / "model.pt").is_file()
    assert (tmp_path / "runs" / "walk_ft" / "submission_final_torchscript" / "model.pt").is_file()
    assert (tmp_path / "runs" / "striker_submission" / "model.pt").is_file()
    assert (tmp_path / "runs" / "ktt_ft" / "best_model_ktt.zip").is_file()
    assert (tmp_path / "runs" / "td3_ft" / "submission_best" / "preprocessor.py").is_file()
    assert (tmp_path / "runs" / "td3_ft" / "best_eval.json").is_file()
