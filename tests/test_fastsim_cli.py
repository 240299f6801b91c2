"""--sim on train.py, evaluate.py and bc.record: defaults, and bad input as one line with exit code 2."""

from __future__ import annotations

import pytest

import evaluate
import train
from bc import record
from rlcore.cliutil import run_cli
from workflow.presets import SOCCER_DEFAULTS


@pytest.mark.parametrize(("main", "argv", "message"), [
    (train.main, ["--sim", "turbo"], "argument --sim: invalid choice: 'turbo'"),
    (train.main, ["--env-id", "Pendulum-v1", "--sim", "fast"], "--sim and --env-workers apply to the soccer tasks"),
    (train.main, ["--env-id", "Pendulum-v1", "--env-workers", "2"], "--sim and --env-workers apply to the soccer"),
    (train.main, ["--env-workers", "0"], "--env-workers must be > 0"),
    (train.main, ["--n-envs", "2", "--env-workers", "3", "--tasks", "kick_to_target"], "--env-workers 3 shards 2"),
    (train.main, ["--vec-env", "async"], "the fast sim shards its envs with workers"),
    (evaluate.main, ["--policy", "zero", "--sim", "turbo"], "argument --sim: invalid choice: 'turbo'"),
    (evaluate.main, ["--model", "x.pt", "--env-id", "Pendulum-v1", "--sim", "fast"], "--sim applies to the soccer"),
    (record.main, ["--out", "x.npz", "--sim", "turbo"], "argument --sim: invalid choice: 'turbo'"),
])
def test_bad_sim_input_is_one_line_and_exit_2(main, argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [*argv, "--save-dir", str(tmp_path / "run")] if main is train.main else argv
    assert run_cli(main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_defaults_fast_for_training_and_recording_official_for_evaluate():
    assert SOCCER_DEFAULTS["sim"] == "fast"
    assert record.build_parser().parse_args(["--out", "x.npz"]).sim == "fast"
    assert evaluate.build_parser().parse_args(["--policy", "zero"]).sim is None  # resolved to official


def test_evaluate_scores_the_same_on_both_sims(capsys):
    """The stand controller, 2 short episodes per task: the fast sim reproduces the official table exactly."""
    tables = []
    for sim in ("official", "fast"):
        argv = ["--policy", "stand", "--episodes", "1", "--eval-seeds", "0,1", "--max-episode-steps", "300",
                "--sim", sim]
        assert run_cli(evaluate.main, argv) == 0
        out = capsys.readouterr().out
        tables.append(out[out.index("task"):] if "task" in out else out)
    assert tables[0] == tables[1]
