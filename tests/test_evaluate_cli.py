"""evaluate.py in-process: bad input is one line on stderr with exit code 2 and nothing run or written."""

import json

import pytest

import evaluate
from rlcore.cliutil import run_cli
from workflow.policies import scripted_policy


@pytest.fixture
def no_run(monkeypatch):
    """Fail the test if episodes would start."""

    def refuse(*args, **kwargs):
        raise AssertionError("episodes must not run on bad input")

    monkeypatch.setattr(evaluate, "evaluate", refuse)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tasks", "goalie"], "--tasks: unknown task 'goalie'"),
        (["--tasks", ""], "--tasks: no task names"),
        (["--eval-seeds", "0,x"], "--eval-seeds must be comma-separated integers"),
        (["--eval-seeds", "1.5"], "--eval-seeds must be comma-separated integers"),
        (["--eval-seeds", "-1"], "--eval-seeds values must be >= 0"),
        (["--eval-seeds", "2,2"], "--eval-seeds must be distinct"),
        (["--episodes", "0"], "--episodes must be in [1, 100000]"),
        (["--episodes", "100001"], "--episodes must be in [1, 100000]"),
        (["--episodes", "two"], "argument --episodes: invalid int value"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--ktt-steps-weight", "nan"], "argument --ktt-steps-weight: 'nan' is not a finite number"),
        (["--policy", "walk"], "argument --policy: invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, no_run, tmp_path):
    out = tmp_path / "out.json"
    argv = ["--policy", "zero", "--json", str(out), *argv]
    assert run_cli(evaluate.main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_unwritable_json_is_rejected_before_running(capsys, no_run, tmp_path):
    for target in (tmp_path / "missing" / "out.json", tmp_path):
        assert run_cli(evaluate.main, ["--policy", "zero", "--json", str(target)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --json:") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_zero_policy_end_to_end(capsys, tmp_path):
    out = tmp_path / "out.json"
    argv = ["--policy", "zero", "--tasks", "kick_to_target", "--episodes", "2", "--eval-seeds", "0",
            "--ktt-steps-weight", "-0.2", "--json", str(out)]
    assert evaluate.main(argv) == 0
    captured = capsys.readouterr()
    assert "kick_to_target 2/2" in captured.err  # progress
    assert "C_overall (sum over 1 tasks)" in captured.out and "C_mean" in captured.out
    doc = json.loads(out.read_text())
    entry = doc["tasks"]["kick_to_target"]
    assert [e["seed"] for e in entry["episodes"]] == [200_000, 200_001]
    assert entry["fallen_rate"] == 1.0 and entry["ep_len_mean"] == 278.0
    assert entry["comp_steps_mean"] == -0.2
    assert doc["C_overall"] == entry["comp_total_mean"] == doc["C_mean"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # the temp file was renamed away


def test_policy_selection():
    import numpy as np

    obs = np.zeros((3, 89), np.float32)
    for name in evaluate.POLICIES:
        loaded = scripted_policy(name)
        policy, settings = loaded.policy, loaded.settings
        actions = policy(obs)
        width = 3 if settings.get("action_mode") == "command" else 12  # the striker walks: (vx, vy, yaw) commands
        assert actions.shape == (3, width) and actions.dtype == np.float32
        assert np.all(np.abs(actions) <= 1.0)
    assert scripted_policy("striker").settings["command"].walk


@pytest.mark.slow
def test_video(tmp_path):
    argv = ["--policy", "zero", "--tasks", "kick_to_target", "--episodes", "1", "--eval-seeds", "0",
            "--video", str(tmp_path / "videos")]
    assert evaluate.main(argv) == 0
    gif = tmp_path / "videos" / "zero_ktt.gif"
    assert gif.stat().st_size > 10_000
