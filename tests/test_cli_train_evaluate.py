"""train.py -> checkpoint.pt -> evaluate.py, in-process, on a gymnasium task and on the soccer tasks."""

from __future__ import annotations

import json

import evaluate
import train
from rlcore.cliutil import run_cli


def test_generic_train_then_evaluate_json(tmp_path, capsys) -> None:
    run = tmp_path / "p"
    assert run_cli(train.main, ["--env-id", "Pendulum-v1", "--algo", "sac", "--total-timesteps", "300",
                                "--learning-starts", "100", "--eval-episodes", "1", "--save-dir", str(run)]) == 0
    out = tmp_path / "e.json"
    assert run_cli(evaluate.main, ["--model", str(run / "checkpoint.pt"), "--env-id", "Pendulum-v1", "--episodes",
                                   "3", "--eval-seeds", "0,1", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert set(doc) == {"env_id", "mean_return", "std_return", "episodes"}
    assert len(doc["episodes"]) == 6 and len({e["seed"] for e in doc["episodes"]}) == 6
    assert all(set(e) == {"seed", "return", "length"} and e["length"] == 200 for e in doc["episodes"])
    assert "mean return" in capsys.readouterr().out


def test_soccer_train_then_evaluate_same_policy(tmp_path, capsys) -> None:
    run = tmp_path / "s"
    argv = ["--algo", "td3", "--n-envs", "3", "--total-timesteps", "300", "--learning-starts", "150",
            "--net-arch", "32,32", "--eval-episodes", "1", "--eval-seeds", "0", "--save-dir", str(run)]
    assert run_cli(train.main, argv) == 0
    printed = capsys.readouterr().out
    assert "goalie_penalty_kick x1, obstacle_penalty_kick x1, kick_to_target x1" in printed
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    final = [m for m in metrics if "comp_eval/C_overall" in m][-1]
    assert {"comp_eval/goalie_penalty_kick", "comp_eval/obstacle_penalty_kick", "comp_eval/kick_to_target",
            "comp_eval/C_mean"} <= set(final)
    out = tmp_path / "e.json"
    assert run_cli(evaluate.main, ["--model", str(run / "checkpoint.pt"), "--episodes", "1", "--eval-seeds", "0",
                                   "--sim", "fast", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert abs(doc["C_overall"] - final["comp_eval/C_overall"]) < 1e-9  # the run's own eval (fast sim), reproduced
    assert run_cli(evaluate.main, ["--model", str(run / "checkpoint.pt"), "--episodes", "1", "--eval-seeds", "0",
                                   "--json", str(out)]) == 0
    # the official env: equal within the fast sim's parity bound (its C step rounds a few terms differently)
    assert abs(json.loads(out.read_text())["C_overall"] - final["comp_eval/C_overall"]) < 1e-5
    best = json.loads((run / "best_model_competition.meta.json").read_text())
    assert best["evaluation"]["comp_eval/C_overall"] == final["comp_eval/C_overall"]  # one eval: it is the best
    assert (run / "submission_best" / "preprocessor.py").is_file() and (run / "final_model.zip").is_file()


def test_soccer_bad_task_names_write_nothing(tmp_path, capsys) -> None:
    for argv, message in ((["--tasks", "penalty"], "unknown task"),
                          (["--task-weights", "goalie_penalty_kick=0"], ""),
                          (["--task-weights", "nope=1"], "unknown task")):
        assert run_cli(train.main, [*argv, "--save-dir", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()
